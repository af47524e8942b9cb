/*
 * HOT PATH (elmon_hist_record only): the lag histogram.
 *
 * Contract: recording makes no allocation, takes no lock, does no stdio and
 * no system call.  One thread (the loop thread that owns the histogram)
 * records; any thread may read at any time.  Every counter is a naturally
 * aligned 64-bit word written with a relaxed atomic store, so a reader never
 * sees a torn value, only a histogram that may be one sample ahead in one
 * counter compared with another.
 *
 * Buckets are log-linear over nanoseconds: values below 16 get a bucket each,
 * then every power of two is split into 16 equal sub-buckets, so a bucket's
 * width is at most 1/16 of its lower bound (quantiles within 6.25%).  976
 * buckets cover the whole uint64_t range.
 */
#ifndef ELMON_HIST_H
#define ELMON_HIST_H

#include <stdint.h>
#include <stddef.h>

#define ELMON_HIST_SUB_BITS 4
#define ELMON_HIST_SUB (1u << ELMON_HIST_SUB_BITS)
#define ELMON_HIST_BUCKETS ((64 - ELMON_HIST_SUB_BITS + 1) * ELMON_HIST_SUB)

struct elmon_hist {
    uint64_t n;          /* samples */
    uint64_t sum_ns;     /* wraps after 584 years of lag */
    uint64_t max_ns;
    uint64_t counts[ELMON_HIST_BUCKETS];
};

static inline unsigned elmon_hist_index(uint64_t v)
{
    if (v < ELMON_HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);           /* e >= 4 */
    unsigned m = (unsigned)(v >> (e - ELMON_HIST_SUB_BITS)) & (ELMON_HIST_SUB - 1);
    return (e - ELMON_HIST_SUB_BITS + 1) * ELMON_HIST_SUB + m;
}

#define ELMON_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define ELMON_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

/* Single writer: plain read, atomic store. */
static inline void elmon_hist_record(struct elmon_hist *h, uint64_t v_ns)
{
    unsigned i = elmon_hist_index(v_ns);
    ELMON_STORE(&h->counts[i], h->counts[i] + 1);
    ELMON_STORE(&h->n, h->n + 1);
    ELMON_STORE(&h->sum_ns, h->sum_ns + v_ns);
    if (v_ns > h->max_ns)
        ELMON_STORE(&h->max_ns, v_ns);
}

/* Cold functions (hist.c). */
uint64_t elmon_hist_bucket_lo(unsigned i);
uint64_t elmon_hist_bucket_hi(unsigned i);   /* inclusive upper bound */
void elmon_hist_snapshot(const struct elmon_hist *src, struct elmon_hist *dst);
void elmon_hist_merge(struct elmon_hist *dst, const struct elmon_hist *src);
/* q in [0,1]; 0 for an empty histogram; never above max_ns. */
uint64_t elmon_hist_quantile(const struct elmon_hist *h, double q);

#endif
