/* JSON forms of reporting-rate synchrophasors (dsp_pmu_report_t), shared by the server (latest
 * values, the `phasor` rows of the measurements table, the live-feed hook) and `gridsense
 * analyze --what phasors`; docs/api.md ("Reporting-rate synchrophasors") describes them.
 * Magnitudes in channel units (RMS), angles in degrees relative to the UTC-synchronised nominal
 * cosine (C37.118.1 4.2). */
#ifndef GS_ANA_PHASOR_JSON_H
#define GS_ANA_PHASOR_JSON_H

#include "ana/json.h"
#include "core/util.h"
#include "dsp/dsp.h"

/* One report as an object: {"t","t_ns","index","rate","freq","rocof","flags","v1","i1",
 * "phasors":{"Ua":{"mag","deg","freq","rocof"},...}}. */
void ana_json_pmu_report(buf_t *b, const dsp_pmu_report_t *r, const json_names_t *n);

/* Compact row form for storage, one row per UTC second: the column header ... */
void ana_json_pmu_columns(buf_t *b, const dsp_pmu_report_t *r, const json_names_t *n);
/* ... and one report as an array in that column order:
 * [index, flags, freq, rocof, (V1 mag, deg), (I1 mag, deg), (mag, deg) per channel]. */
void ana_json_pmu_row(buf_t *b, const dsp_pmu_report_t *r);

/* The "flags" member of a report ("restart", "time_unsync", "freq_held"). */
void ana_json_pmu_flags(buf_t *b, uint32_t flags);

#endif
