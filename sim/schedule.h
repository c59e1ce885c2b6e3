/* gridsense-sim: scheduled disturbances from the command line (--schedule).
 *
 * Grammar of one specification (no spaces):
 *
 *   KIND@T[+DUR][:LEVEL][/TERMS][,phases=P]
 *
 *   KIND   dip | swell | interruption
 *   T      start in seconds on the sample timeline (t = 0 at the simulator start), 0..1000000,
 *          digits with an optional fraction ("10", "5.5")
 *   DUR    duration in milliseconds, 1..3600000 (default 100)
 *   LEVEL  percent of nominal: the residual voltage of a dip (0 <= L < 100, default 50) or an
 *          interruption (0 <= L < 5, default 0; IEC 61000-4-30 5.5), the peak of a swell
 *          (100 < L <= 150, default 120; 150 % of the nominal peak is the ADC full scale)
 *   TERMS  N or N-M: 1-based terminal indices in secrets-file order, N <= M (default all)
 *   P      affected phases, 1 to 3 distinct letters of A, B, C (default ABC); an interruption
 *          always affects all three
 *
 * Pure functions: no I/O, no allocation, no global state.
 */
#ifndef GS_SIM_SCHEDULE_H
#define GS_SIM_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "signal.h"

#define SCHED_MAX          (SIG_MAX_DIST - 1) /* keeps one slot for a random disturbance */
#define SCHED_MAX_T_S      1000000.0
#define SCHED_MAX_DUR_MS   3600000.0
#define SCHED_MAX_TERMINAL 1000000u /* parse bound; sched_check() bounds by the real count */

/* One parsed --schedule option. */
typedef struct {
    const char *spec; /* the option text it was parsed from (borrowed), for messages */
    uint8_t kind;     /* sig_kind_t */
    uint8_t phases;   /* bit 0 = A, 1 = B, 2 = C */
    double start_s;   /* T */
    double dur_ms;    /* DUR */
    double level_pct; /* LEVEL */
    uint32_t first;   /* TERMS, 1-based and inclusive; 0 = every terminal */
    uint32_t last;    /* 0 when first is 0 */
} sched_t;

/* Parses one specification (grammar above) into *out; out->spec borrows spec. Returns 0, or
 * GS_EINVAL with a one-line reason (without the spec itself) in err. */
int sched_parse(const char *spec, sched_t *out, char *err, size_t errcap);

/* Returns 1 if sc applies to the terminal at 0-based index `index`, else 0. */
int sched_selects(const sched_t *sc, uint32_t index);

/* Converts sc into a disturbance on a timeline of `rate` sample sets per second: start at
 * round(T x rate), length round(DUR x rate / 1000) but at least one sample set, magnitude
 * LEVEL / 100. sc must come from sched_parse() and rate be 100..100000. */
void sched_dist(const sched_t *sc, uint32_t rate, sig_dist_t *d);

/* Checks n parsed specifications together for `nterms` simulated terminals at `rate`: every
 * TERMS range must lie within 1..nterms and no two disturbances may overlap in time on a
 * terminal they share (the signal generator honours only the earliest of overlapping ones).
 * Returns 0, or GS_EINVAL with a one-line reason naming the specifications in err. */
int sched_check(const sched_t *a, size_t n, uint32_t rate, uint32_t nterms, char *err,
                size_t errcap);

#endif
