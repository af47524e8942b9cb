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
/* The export's explicit bucket bounds in ns (OTLP's explicit histogram,
 * Prometheus's le): one table for the exporter and the live stats file,
 * so that `elmon serve` and an OTLP receiver see the same buckets. */
#define ELMON_LAG_BOUNDS 16
extern const uint64_t elmon_lag_bounds_ns[ELMON_LAG_BOUNDS];
/* Each bucket of h goes whole to the bound bucket holding its midpoint;
 * counts[ELMON_LAG_BOUNDS] is above the last bound.  Per bucket, not
 * cumulative.  lo/hi give the geometry (elmon_hist_bucket_lo/hi, or the
 * core's through the export table). */
void elmon_hist_explicit(const struct elmon_hist *h, uint64_t (*lo)(unsigned), uint64_t (*hi)(unsigned),
                         uint64_t counts[ELMON_LAG_BOUNDS + 1]);
/* q in [0,1]; 0 for an empty histogram; never above max_ns. */
uint64_t elmon_hist_quantile(const struct elmon_hist *h, double q);

#endif
