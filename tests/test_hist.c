/*
 * The lag histogram: bucket bounds, quantiles against a sorted reference,
 * merging, and the edges of the uint64_t range.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "hist.h"
#include "support.h"

static struct elmon_hist h, h2;

static void setup(void)
{
    memset(&h, 0, sizeof h);
    memset(&h2, 0, sizeof h2);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The reference: the sample of rank ceil(q*n) in sorted order. */
static uint64_t ref_quantile(uint64_t *sorted, size_t n, double q)
{
    size_t rank = (size_t)(q * (double)n);
    if ((double)rank < q * (double)n || rank == 0)
        rank++;
    return sorted[rank - 1];
}

START_TEST(bounds_are_contiguous)
{
    for (unsigned i = 0; i + 1 < ELMON_HIST_BUCKETS; i++) {
        ck_assert_uint_eq(elmon_hist_bucket_hi(i) + 1, elmon_hist_bucket_lo(i + 1));
        ck_assert_uint_eq(elmon_hist_index(elmon_hist_bucket_lo(i)), i);
        ck_assert_uint_eq(elmon_hist_index(elmon_hist_bucket_hi(i)), i);
    }
    ck_assert_uint_eq(elmon_hist_index(0), 0);
    ck_assert_uint_eq(elmon_hist_index(UINT64_MAX), ELMON_HIST_BUCKETS - 1);
    ck_assert_uint_eq(elmon_hist_bucket_hi(ELMON_HIST_BUCKETS - 1), UINT64_MAX);
}
END_TEST

START_TEST(bucket_width_within_one_sixteenth)
{
    for (unsigned i = ELMON_HIST_SUB; i < ELMON_HIST_BUCKETS - 1; i++) {
        uint64_t lo = elmon_hist_bucket_lo(i), hi = elmon_hist_bucket_hi(i);
        ck_assert_msg((hi - lo + 1) * 16 <= lo, "bucket %u [%lu,%lu] too wide", i, lo, hi);
    }
}
END_TEST

START_TEST(quantiles_match_sorted_reference)
{
    /* Log-uniform lags from 1 us to 10 s, like a real loop's mixture. */
    enum { N = 20000 };
    static uint64_t v[N];
    srand(42 + (unsigned)_i);
    for (int i = 0; i < N; i++) {
        double e = 3.0 + 7.0 * rand() / (double)RAND_MAX;
        uint64_t x = 1;
        for (double k = 0; k < e; k += 0.01)
            x = (uint64_t)((double)x * 1.0232929922807541); /* 10^(0.01) */
        v[i] = x + (uint64_t)(rand() % 7);
        elmon_hist_record(&h, v[i]);
    }
    qsort(v, N, sizeof v[0], cmp_u64);
    const double qs[] = {0.01, 0.1, 0.5, 0.9, 0.99, 0.999};
    for (unsigned k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        uint64_t ref = ref_quantile(v, N, qs[k]);
        uint64_t got = elmon_hist_quantile(&h, qs[k]);
        double err = got > ref ? (double)(got - ref) / (double)ref : (double)(ref - got) / (double)ref;
        ck_assert_msg(err <= 1.0 / 16, "q%.3f: got %lu, reference %lu (err %.4f)", qs[k], got, ref, err);
    }
    ck_assert_uint_eq(elmon_hist_quantile(&h, 1.0), v[N - 1]);
    ck_assert_uint_eq(h.max_ns, v[N - 1]);
    ck_assert_uint_eq(h.n, N);
}
END_TEST

START_TEST(empty_and_single)
{
    ck_assert_uint_eq(elmon_hist_quantile(&h, 0.5), 0);
    elmon_hist_record(&h, 123456789);
    ck_assert_uint_le(elmon_hist_quantile(&h, 0.5), 123456789);
    ck_assert_uint_ge(elmon_hist_quantile(&h, 0.5), 123456789 - 123456789 / 16);
    ck_assert_uint_eq(elmon_hist_quantile(&h, 0.0), elmon_hist_quantile(&h, 0.5));
}
END_TEST

START_TEST(extremes)
{
    elmon_hist_record(&h, 0);
    elmon_hist_record(&h, UINT64_MAX);
    ck_assert_uint_eq(h.counts[0], 1);
    ck_assert_uint_eq(h.counts[ELMON_HIST_BUCKETS - 1], 1);
    ck_assert_uint_eq(elmon_hist_quantile(&h, 0.5), 0);
    ck_assert_uint_eq(elmon_hist_quantile(&h, 1.0), UINT64_MAX);
}
END_TEST

START_TEST(merge_equals_recording_both)
{
    struct elmon_hist *all = calloc(1, sizeof *all);
    for (uint64_t i = 1; i < 5000; i++) {
        uint64_t x = i * 7919 % 1000003;
        if (i % 3)
            elmon_hist_record(&h, x);
        else
            elmon_hist_record(&h2, x * 1000);
        elmon_hist_record(all, i % 3 ? x : x * 1000);
    }
    elmon_hist_merge(&h, &h2);
    ck_assert_uint_eq(h.n, all->n);
    ck_assert_uint_eq(h.sum_ns, all->sum_ns);
    ck_assert_uint_eq(h.max_ns, all->max_ns);
    ck_assert_int_eq(memcmp(h.counts, all->counts, sizeof h.counts), 0);
    free(all);
}
END_TEST

START_TEST(snapshot_sums_counts)
{
    for (int i = 0; i < 100; i++)
        elmon_hist_record(&h, (uint64_t)i * 1000000);
    elmon_hist_snapshot(&h, &h2);
    ck_assert_uint_eq(h2.n, 100);
    ck_assert_uint_eq(h2.max_ns, 99000000);
    ck_assert_int_eq(memcmp(h.counts, h2.counts, sizeof h.counts), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hist");
    TCase *tc = tcase_create("hist");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, bounds_are_contiguous);
    tcase_add_test(tc, bucket_width_within_one_sixteenth);
    tcase_add_loop_test(tc, quantiles_match_sorted_reference, 0, 3);
    tcase_add_test(tc, empty_and_single);
    tcase_add_test(tc, extremes);
    tcase_add_test(tc, merge_equals_recording_both);
    tcase_add_test(tc, snapshot_sums_counts);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
