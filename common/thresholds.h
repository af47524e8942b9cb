/*
 * The thresholds and windows every binary judges a loop by, named once:
 * the defaults of ELMON_BLOCK_MS and ELMON_CRITICAL_MS, and the status
 * scale of the seed (healthy < 10 ms <= ok < 50 ms <= degraded < 500 ms <=
 * critical), applied to the largest lag of the last ELMON_STATUS_WINDOW_S
 * seconds.
 */
#ifndef ELMON_THRESHOLDS_H
#define ELMON_THRESHOLDS_H

#define ELMON_DEFAULT_BLOCK_MS 50
#define ELMON_DEFAULT_CRITICAL_MS 500

#define ELMON_STATUS_OK_NS 10000000ull        /* below: healthy */
#define ELMON_STATUS_DEGRADED_NS 50000000ull  /* below: ok */
#define ELMON_STATUS_CRITICAL_NS 500000000ull /* below: degraded; from here: critical */
#define ELMON_STATUS_WINDOW_S 10

#endif
