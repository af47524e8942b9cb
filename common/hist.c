/*
 * The cold half of the lag histogram: bounds, snapshots, merging and
 * quantiles.  Any thread; never the hot path.
 */
#include <string.h>
#include "hist.h"

uint64_t elmon_hist_bucket_lo(unsigned i)
{
    if (i < ELMON_HIST_SUB)
        return i;
    unsigned e = i / ELMON_HIST_SUB + ELMON_HIST_SUB_BITS - 1;
    uint64_t m = i % ELMON_HIST_SUB;
    return (ELMON_HIST_SUB + m) << (e - ELMON_HIST_SUB_BITS);
}

uint64_t elmon_hist_bucket_hi(unsigned i)
{
    if (i + 1 >= ELMON_HIST_BUCKETS)
        return UINT64_MAX;
    return elmon_hist_bucket_lo(i + 1) - 1;
}

const uint64_t elmon_lag_bounds_ns[ELMON_LAG_BOUNDS] = {
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000u, 5000000000u, 10000000000u,
};

void elmon_hist_explicit(const struct elmon_hist *h, uint64_t (*lo)(unsigned), uint64_t (*hi)(unsigned),
                         uint64_t counts[ELMON_LAG_BOUNDS + 1])
{
    memset(counts, 0, sizeof(uint64_t) * (ELMON_LAG_BOUNDS + 1));
    unsigned j = 0;
    for (unsigned i = 0; i < ELMON_HIST_BUCKETS; i++) {
        uint64_t c = ELMON_LOAD(&h->counts[i]);
        if (!c)
            continue;
        uint64_t l = lo(i), mid = l + (hi(i) - l) / 2;
        while (j < ELMON_LAG_BOUNDS && mid > elmon_lag_bounds_ns[j])
            j++;
        counts[j] += c;
    }
}

void elmon_hist_snapshot(const struct elmon_hist *src, struct elmon_hist *dst)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < ELMON_HIST_BUCKETS; i++) {
        dst->counts[i] = ELMON_LOAD(&src->counts[i]);
        n += dst->counts[i];
    }
    /* The writer may have moved on between loads; the bucket counts are the
     * truth the quantiles use, so n is their sum. */
    dst->n = n;
    dst->sum_ns = ELMON_LOAD(&src->sum_ns);
    dst->max_ns = ELMON_LOAD(&src->max_ns);
}

void elmon_hist_merge(struct elmon_hist *dst, const struct elmon_hist *src)
{
    for (unsigned i = 0; i < ELMON_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->n += src->n;
    dst->sum_ns += src->sum_ns;
    if (src->max_ns > dst->max_ns)
        dst->max_ns = src->max_ns;
}

uint64_t elmon_hist_quantile(const struct elmon_hist *h, double q)
{
    if (h->n == 0)
        return 0;
    if (q <= 0)
        q = 0;
    if (q >= 1)
        return h->max_ns;
    /* The rank of the sample we want, 1-based, as in a sorted array. */
    uint64_t rank = (uint64_t)(q * (double)h->n);
    if ((double)rank < q * (double)h->n || rank == 0)
        rank++;
    uint64_t seen = 0;
    for (unsigned i = 0; i < ELMON_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t lo = elmon_hist_bucket_lo(i), hi = elmon_hist_bucket_hi(i);
            uint64_t mid = lo + (hi - lo) / 2;
            return mid > h->max_ns ? h->max_ns : mid;
        }
    }
    return h->max_ns;
}
