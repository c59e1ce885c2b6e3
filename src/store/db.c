/* SQLite connection set-up and schema migrations. */
#include "store/internal.h"

#include "core/err.h"
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Numbered migration scripts: migrations[i] brings the schema from version i to i + 1. Append
 * only; never edit a script once released, because databases in the field already ran it. */
static const char *const migrations[] = {
    /* v1: initial schema */
    "CREATE TABLE terminals("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  lat REAL,"
    "  lon REAL,"
    "  nominal_hz INTEGER NOT NULL DEFAULT 50,"
    "  vt_ratio REAL NOT NULL DEFAULT 1,"
    "  ct_ratio REAL NOT NULL DEFAULT 1,"
    "  secret BLOB NOT NULL,"
    "  created_ns INTEGER NOT NULL,"
    "  durable_seq INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE sessions("
    "  id INTEGER PRIMARY KEY,"
    "  session_id INTEGER NOT NULL UNIQUE,"
    "  terminal_id TEXT NOT NULL,"
    "  remote TEXT,"
    "  opened_ns INTEGER,"
    "  closed_ns INTEGER,"
    "  close_reason TEXT,"
    "  frames INTEGER,"
    "  bytes INTEGER,"
    "  blocks INTEGER);"
    "CREATE INDEX sessions_terminal ON sessions(terminal_id, opened_ns);"
    "CREATE TABLE blocks("
    "  id INTEGER PRIMARY KEY,"
    "  terminal_id TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  kind INTEGER NOT NULL," /* 0 waveform, 1 event */
    "  t0_ns INTEGER,"
    "  sample_rate INTEGER,"
    "  channel_mask INTEGER,"
    "  nchannels INTEGER,"
    "  sample_fmt INTEGER,"
    "  time_quality INTEGER,"
    "  nsamples INTEGER,"
    "  data BLOB,"
    "  received_ns INTEGER NOT NULL,"
    "  UNIQUE(terminal_id, seq));"
    "CREATE TABLE events("
    "  id INTEGER PRIMARY KEY,"
    "  terminal_id TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  trigger INTEGER,"
    "  trigger_ns INTEGER,"
    "  pretrigger INTEGER,"
    "  value_permille INTEGER,"
    "  channel INTEGER,"
    "  UNIQUE(terminal_id, seq));"
    "CREATE TABLE status("
    "  id INTEGER PRIMARY KEY,"
    "  terminal_id TEXT NOT NULL,"
    "  time_ns INTEGER,"
    "  received_ns INTEGER NOT NULL,"
    "  rsrp_dbm INTEGER,"
    "  rssi_dbm INTEGER,"
    "  csq INTEGER,"
    "  supply_mv INTEGER,"
    "  temp_c10 INTEGER,"
    "  uptime_s INTEGER,"
    "  gps_fix INTEGER,"
    "  gps_sats INTEGER,"
    "  time_quality INTEGER,"
    "  buffer_permille INTEGER,"
    "  buffered_blocks INTEGER);"
    "CREATE INDEX status_terminal_time ON status(terminal_id, time_ns);"
    /* AUTOINCREMENT: ids are never reused, terminals deduplicate commands by id */
    "CREATE TABLE commands("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  terminal_id TEXT NOT NULL,"
    "  verb INTEGER NOT NULL,"
    "  args BLOB,"
    "  state INTEGER NOT NULL DEFAULT 0,"
    "  created_ns INTEGER NOT NULL,"
    "  updated_ns INTEGER NOT NULL,"
    "  expires_ns INTEGER NOT NULL,"
    "  result_status INTEGER NOT NULL DEFAULT -1,"
    "  result BLOB);"
    "CREATE INDEX commands_terminal_state ON commands(terminal_id, state);"
    "CREATE INDEX commands_state_expiry ON commands(state, expires_ns);",

    /* 2: a counter that changes whenever a terminal is removed or its secret replaced, so a
     * running server (another process) notices cheaply and ends sessions whose credentials
     * were revoked. Triggers keep it right whoever edits the table. */
    "CREATE TABLE credentials_version(id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  version INTEGER NOT NULL);"
    "INSERT INTO credentials_version VALUES(1, 0);"
    "CREATE TRIGGER terminals_deleted AFTER DELETE ON terminals BEGIN"
    "  UPDATE credentials_version SET version = version + 1 WHERE id = 1; END;"
    "CREATE TRIGGER terminals_secret AFTER UPDATE OF secret ON terminals BEGIN"
    "  UPDATE credentials_version SET version = version + 1 WHERE id = 1; END;",

    /* 3: analysis results. Voltage events (IEC 61000-4-30 dips, swells, interruptions) and
     * aggregated measurements (3 s, 10 s frequency, 10 min, 2 h) as JSON documents; the
     * historian will refine this storage. UNIQUE keys make a repeated result a no-op. The
     * declared input voltage Udin of a terminal (secondary RMS, phase-to-neutral; NULL = the
     * sliding reference voltage is used for event thresholds). */
    "ALTER TABLE terminals ADD COLUMN declared_v REAL;"
    "CREATE TABLE pq_events("
    "  id INTEGER PRIMARY KEY,"
    "  terminal_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  start_ns INTEGER NOT NULL,"
    "  duration_ns INTEGER NOT NULL,"
    "  extreme REAL,"
    "  extreme_pct REAL,"
    "  reference REAL,"
    "  channels INTEGER,"
    "  worst_channel INTEGER,"
    "  flags INTEGER NOT NULL DEFAULT 0,"
    "  detected_ns INTEGER NOT NULL,"
    "  UNIQUE(terminal_id, kind, start_ns));"
    "CREATE INDEX pq_events_time ON pq_events(start_ns);"
    "CREATE TABLE measurements("
    "  id INTEGER PRIMARY KEY,"
    "  terminal_id TEXT NOT NULL,"
    "  interval TEXT NOT NULL,"
    "  t_start_ns INTEGER NOT NULL,"
    "  t_end_ns INTEGER NOT NULL,"
    "  flags INTEGER NOT NULL DEFAULT 0,"
    "  count INTEGER NOT NULL DEFAULT 0,"
    "  data TEXT NOT NULL,"
    "  UNIQUE(terminal_id, interval, t_end_ns));",

    /* 4: terminal secrets sealed at rest under a master key kept outside the database (keys.c).
     * The script records which key; store__migrate_seal (run in the same transaction) seals
     * every plaintext secret in place, so a database is never half plaintext, half sealed. */
    "CREATE TABLE master_key(id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  key_id BLOB NOT NULL,"
    "  changed_ns INTEGER NOT NULL);",

    /* 5: an event's channels by name, recorded when it is detected: the names of the channels
     * that crossed (comma list in channel order, "Ua,Ub") and of the worst one, as `gridsense
     * analyze` prints them. A terminal's channel layout can change later, so the mask and index
     * alone cannot be named afterwards. NULL in rows stored before this migration (the API then
     * derives "chN" names from the mask, docs/api.md). */
    "ALTER TABLE pq_events ADD COLUMN channel_names TEXT;"
    "ALTER TABLE pq_events ADD COLUMN worst_channel_name TEXT;",

    /* 6: people and scripts that use the HTTP API (users.c). A user's password is kept only as
     * an argon2id string (libsodium crypto_pwhash_str); login sessions and API tokens only as
     * the BLAKE2b-256 hash of their random value, so a copy of the database lets no one log in.
     * The audit trail records every state-changing request, in the transaction of the change
     * itself where there is one. */
    "CREATE TABLE users("
    "  name TEXT PRIMARY KEY,"
    "  role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),"
    "  pwhash TEXT NOT NULL,"
    "  created_ns INTEGER NOT NULL,"
    "  updated_ns INTEGER NOT NULL);"
    "CREATE TABLE user_sessions("
    "  hash BLOB PRIMARY KEY,"
    "  user TEXT NOT NULL,"
    "  created_ns INTEGER NOT NULL,"
    "  last_used_ns INTEGER NOT NULL,"
    "  expires_ns INTEGER NOT NULL,"
    "  remote TEXT);"
    "CREATE INDEX user_sessions_user ON user_sessions(user);"
    "CREATE TABLE api_tokens("
    "  id TEXT PRIMARY KEY,"
    "  hash BLOB NOT NULL UNIQUE,"
    "  user TEXT NOT NULL,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  created_ns INTEGER NOT NULL,"
    "  expires_ns INTEGER NOT NULL DEFAULT 0,"
    "  last_used_ns INTEGER NOT NULL DEFAULT 0,"
    "  revoked_ns INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX api_tokens_user ON api_tokens(user);"
    "CREATE TABLE audit("
    "  id INTEGER PRIMARY KEY,"
    "  time_ns INTEGER NOT NULL,"
    "  user TEXT,"
    "  remote TEXT,"
    "  action TEXT NOT NULL,"
    "  target TEXT,"
    "  outcome TEXT NOT NULL,"
    "  detail TEXT);"
    "CREATE INDEX audit_time ON audit(time_ns);",

    /* 7: each terminal's channel layout (HELLO CHANNEL entries: index, kind, phase, unit,
     * scale) kept with the blocks it recorded, so stored samples (raw counts) can be turned
     * into volts and amps later, whatever the terminal announces at a later login. One row per
     * change of layout: it applies to the terminal's blocks with seq >= first_seq up to the
     * next row (a terminal's stored seqs only grow). Text "index,kind,phase,unit,scale;..."
     * (blocks_read.c encodes and parses it). Blocks stored before this migration have none. */
    "CREATE TABLE block_layouts("
    "  terminal_id TEXT NOT NULL,"
    "  first_seq INTEGER NOT NULL,"
    "  channels TEXT NOT NULL,"
    "  PRIMARY KEY(terminal_id, first_seq)) WITHOUT ROWID;",

    /* 8: an operator acknowledges an event (REST POST /events/{id}/ack, admin_write.c): who and
     * when; NULL = not acknowledged. */
    "ALTER TABLE pq_events ADD COLUMN acked_by TEXT;"
    "ALTER TABLE pq_events ADD COLUMN acked_ns INTEGER;",

    /* 9: the analysis backlog
     * (backlog.c). One row per terminal and analysis unit (the UTC 2-h interval starting at
     * unit_start_ns) holding blocks that were stored but not analysed, written by the store
     * writer in the transaction of each such block and removed by the rebuild that analysed
     * them. Blocks stored before this migration count as analysed. */
    "CREATE TABLE ana_pending("
    "  terminal_id TEXT NOT NULL,"
    "  unit_start_ns INTEGER NOT NULL,"
    "  first_seq INTEGER NOT NULL,"
    "  last_seq INTEGER NOT NULL,"
    "  blocks INTEGER NOT NULL DEFAULT 0,"
    "  captures INTEGER NOT NULL DEFAULT 0,"
    "  signal_ns INTEGER NOT NULL DEFAULT 0,"
    "  restarts INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(terminal_id, unit_start_ns)) WITHOUT ROWID;",
    /* 10 (retention.c): where the raw-waveform sweep has got to (the rowid of the
     * last block it examined: blocks kept for an event window stay behind it and are not
     * examined again at every pass or restart), and the indexes the sweep's event-window check
     * needs: a terminal's events by start time, and the longest event (max(duration_ns) by
     * index, which bounds how far back an event covering a block may have started). */
    "CREATE TABLE retention_state(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX pq_events_terminal_start ON pq_events(terminal_id, start_ns);"
    "CREATE INDEX pq_events_duration ON pq_events(duration_ns);",
    /* 11: waveform blocks stored compressed (issue 10): `codec` says what `data` holds, 0 the
     * raw interleaved samples (every row stored before this migration), 1 wcodec segments
     * concatenated (src/wcodec/wcodec.h; as received on the wire, or encoded by the writer).
     * store_blocks_read decodes, so readers see raw samples whatever is stored. */
    "ALTER TABLE blocks ADD COLUMN codec INTEGER NOT NULL DEFAULT 0;",
    /* 9 (historian slot 10, issue 10 "pyr"): the waveform summary pyramid (pyramid.c): per
     * terminal, level (0..5: buckets of 1 s, 10 s, 1 min, 10 min, 1 h, 1 day) and bucket start
     * (UTC ns, a multiple of the width), the first sample time and the end (last + one period)
     * of the samples in it, the seqs of the first and last block, the last block's rate, the
     * worst time quality, the channels, the sample sets, and per channel the min, max (raw
     * counts), sum of squares and count (stats BLOB, format in pyramid.c). Written by the writer
     * in the transaction of each new WAVEFORM block. measurement_trend: the scalar quantities of
     * the 10min / 2h aggregates as columns (trend.c), kept by triggers on measurements and
     * filled here from the rows already stored. */
    "CREATE TABLE wave_pyramid(  terminal_id TEXT NOT NULL,  level INTEGER NOT NULL, "
    " bucket_ns INTEGER NOT NULL,  t_first_ns INTEGER NOT NULL,  t_end_ns INTEGER NOT NULL, "
    " seq_first INTEGER NOT NULL,  seq_last INTEGER NOT NULL,  sample_rate INTEGER NOT NULL, "
    " time_quality INTEGER NOT NULL,  channel_mask INTEGER NOT NULL,  n INTEGER NOT NULL, "
    " stats BLOB NOT NULL,  PRIMARY KEY(terminal_id, level, bucket_ns)) WITHOUT ROWID;"
    "CREATE TABLE measurement_trend(terminal_id TEXT NOT NULL, interval TEXT NOT NULL,"
    " t_end_ns INTEGER NOT NULL, freq REAL, u0_pct REAL, u2_pct REAL, i0_pct REAL, i2_pct"
    " REAL, p REAL, q REAL, s_eff REAL, ua_rms REAL, ub_rms REAL, uc_rms REAL, ia_rms REAL,"
    " ib_rms REAL, ic_rms REAL, ua_thd REAL, ub_thd REAL, uc_thd REAL, PRIMARY"
    " KEY(terminal_id, interval, t_end_ns)) WITHOUT ROWID;"
    /* (the channels' names are read once per row, positions 0..15, then each quantity by its
     * position: json_each per channel was twice as slow; SQLite caches the parsed document
     * across the json_extract calls of one statement) */
    "CREATE TRIGGER measurements_trend_insert AFTER INSERT ON measurements WHEN new.interval"
    " IN ('10min', '2h') AND json_valid(new.data) BEGIN INSERT OR REPLACE INTO"
    " measurement_trend(terminal_id, interval, t_end_ns, freq, u0_pct, u2_pct, i0_pct,"
    " i2_pct, p, q, s_eff, ua_rms, ub_rms, uc_rms, ia_rms, ib_rms, ic_rms, ua_thd, ub_thd,"
    " uc_thd) SELECT new.terminal_id, new.interval, new.t_end_ns, json_extract(new.data,"
    " '$.freq.mean'), json_extract(new.data, '$.u0_pct'), json_extract(new.data, '$.u2_pct'),"
    " json_extract(new.data, '$.i0_pct'), json_extract(new.data, '$.i2_pct'),"
    " json_extract(new.data, '$.p'), json_extract(new.data, '$.q'), json_extract(new.data,"
    " '$.s_eff'), json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Ua' THEN 0 WHEN n1"
    " = 'Ua' THEN 1 WHEN n2 = 'Ua' THEN 2 WHEN n3 = 'Ua' THEN 3 WHEN n4 = 'Ua' THEN 4 WHEN n5"
    " = 'Ua' THEN 5 WHEN n6 = 'Ua' THEN 6 WHEN n7 = 'Ua' THEN 7 WHEN n8 = 'Ua' THEN 8 WHEN n9"
    " = 'Ua' THEN 9 WHEN n10 = 'Ua' THEN 10 WHEN n11 = 'Ua' THEN 11 WHEN n12 = 'Ua' THEN 12"
    " WHEN n13 = 'Ua' THEN 13 WHEN n14 = 'Ua' THEN 14 WHEN n15 = 'Ua' THEN 15 END) ||"
    " '].rms'), json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Ub' THEN 0 WHEN n1 ="
    " 'Ub' THEN 1 WHEN n2 = 'Ub' THEN 2 WHEN n3 = 'Ub' THEN 3 WHEN n4 = 'Ub' THEN 4 WHEN n5 ="
    " 'Ub' THEN 5 WHEN n6 = 'Ub' THEN 6 WHEN n7 = 'Ub' THEN 7 WHEN n8 = 'Ub' THEN 8 WHEN n9 ="
    " 'Ub' THEN 9 WHEN n10 = 'Ub' THEN 10 WHEN n11 = 'Ub' THEN 11 WHEN n12 = 'Ub' THEN 12"
    " WHEN n13 = 'Ub' THEN 13 WHEN n14 = 'Ub' THEN 14 WHEN n15 = 'Ub' THEN 15 END) ||"
    " '].rms'), json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Uc' THEN 0 WHEN n1 ="
    " 'Uc' THEN 1 WHEN n2 = 'Uc' THEN 2 WHEN n3 = 'Uc' THEN 3 WHEN n4 = 'Uc' THEN 4 WHEN n5 ="
    " 'Uc' THEN 5 WHEN n6 = 'Uc' THEN 6 WHEN n7 = 'Uc' THEN 7 WHEN n8 = 'Uc' THEN 8 WHEN n9 ="
    " 'Uc' THEN 9 WHEN n10 = 'Uc' THEN 10 WHEN n11 = 'Uc' THEN 11 WHEN n12 = 'Uc' THEN 12"
    " WHEN n13 = 'Uc' THEN 13 WHEN n14 = 'Uc' THEN 14 WHEN n15 = 'Uc' THEN 15 END) ||"
    " '].rms'), json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Ia' THEN 0 WHEN n1 ="
    " 'Ia' THEN 1 WHEN n2 = 'Ia' THEN 2 WHEN n3 = 'Ia' THEN 3 WHEN n4 = 'Ia' THEN 4 WHEN n5 ="
    " 'Ia' THEN 5 WHEN n6 = 'Ia' THEN 6 WHEN n7 = 'Ia' THEN 7 WHEN n8 = 'Ia' THEN 8 WHEN n9 ="
    " 'Ia' THEN 9 WHEN n10 = 'Ia' THEN 10 WHEN n11 = 'Ia' THEN 11 WHEN n12 = 'Ia' THEN 12"
    " WHEN n13 = 'Ia' THEN 13 WHEN n14 = 'Ia' THEN 14 WHEN n15 = 'Ia' THEN 15 END) ||"
    " '].rms'), json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Ib' THEN 0 WHEN n1 ="
    " 'Ib' THEN 1 WHEN n2 = 'Ib' THEN 2 WHEN n3 = 'Ib' THEN 3 WHEN n4 = 'Ib' THEN 4 WHEN n5 ="
    " 'Ib' THEN 5 WHEN n6 = 'Ib' THEN 6 WHEN n7 = 'Ib' THEN 7 WHEN n8 = 'Ib' THEN 8 WHEN n9 ="
    " 'Ib' THEN 9 WHEN n10 = 'Ib' THEN 10 WHEN n11 = 'Ib' THEN 11 WHEN n12 = 'Ib' THEN 12"
    " WHEN n13 = 'Ib' THEN 13 WHEN n14 = 'Ib' THEN 14 WHEN n15 = 'Ib' THEN 15 END) ||"
    " '].rms'), json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Ic' THEN 0 WHEN n1 ="
    " 'Ic' THEN 1 WHEN n2 = 'Ic' THEN 2 WHEN n3 = 'Ic' THEN 3 WHEN n4 = 'Ic' THEN 4 WHEN n5 ="
    " 'Ic' THEN 5 WHEN n6 = 'Ic' THEN 6 WHEN n7 = 'Ic' THEN 7 WHEN n8 = 'Ic' THEN 8 WHEN n9 ="
    " 'Ic' THEN 9 WHEN n10 = 'Ic' THEN 10 WHEN n11 = 'Ic' THEN 11 WHEN n12 = 'Ic' THEN 12"
    " WHEN n13 = 'Ic' THEN 13 WHEN n14 = 'Ic' THEN 14 WHEN n15 = 'Ic' THEN 15 END) ||"
    " '].rms'), json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Ua' THEN 0 WHEN n1 ="
    " 'Ua' THEN 1 WHEN n2 = 'Ua' THEN 2 WHEN n3 = 'Ua' THEN 3 WHEN n4 = 'Ua' THEN 4 WHEN n5 ="
    " 'Ua' THEN 5 WHEN n6 = 'Ua' THEN 6 WHEN n7 = 'Ua' THEN 7 WHEN n8 = 'Ua' THEN 8 WHEN n9 ="
    " 'Ua' THEN 9 WHEN n10 = 'Ua' THEN 10 WHEN n11 = 'Ua' THEN 11 WHEN n12 = 'Ua' THEN 12"
    " WHEN n13 = 'Ua' THEN 13 WHEN n14 = 'Ua' THEN 14 WHEN n15 = 'Ua' THEN 15 END) ||"
    " '].thd_pct'), json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Ub' THEN 0 WHEN"
    " n1 = 'Ub' THEN 1 WHEN n2 = 'Ub' THEN 2 WHEN n3 = 'Ub' THEN 3 WHEN n4 = 'Ub' THEN 4 WHEN"
    " n5 = 'Ub' THEN 5 WHEN n6 = 'Ub' THEN 6 WHEN n7 = 'Ub' THEN 7 WHEN n8 = 'Ub' THEN 8 WHEN"
    " n9 = 'Ub' THEN 9 WHEN n10 = 'Ub' THEN 10 WHEN n11 = 'Ub' THEN 11 WHEN n12 = 'Ub' THEN"
    " 12 WHEN n13 = 'Ub' THEN 13 WHEN n14 = 'Ub' THEN 14 WHEN n15 = 'Ub' THEN 15 END) ||"
    " '].thd_pct'), json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Uc' THEN 0 WHEN"
    " n1 = 'Uc' THEN 1 WHEN n2 = 'Uc' THEN 2 WHEN n3 = 'Uc' THEN 3 WHEN n4 = 'Uc' THEN 4 WHEN"
    " n5 = 'Uc' THEN 5 WHEN n6 = 'Uc' THEN 6 WHEN n7 = 'Uc' THEN 7 WHEN n8 = 'Uc' THEN 8 WHEN"
    " n9 = 'Uc' THEN 9 WHEN n10 = 'Uc' THEN 10 WHEN n11 = 'Uc' THEN 11 WHEN n12 = 'Uc' THEN"
    " 12 WHEN n13 = 'Uc' THEN 13 WHEN n14 = 'Uc' THEN 14 WHEN n15 = 'Uc' THEN 15 END) ||"
    " '].thd_pct') FROM (SELECT json_extract(new.data, '$.channels[0].name') AS n0,"
    " json_extract(new.data, '$.channels[1].name') AS n1, json_extract(new.data,"
    " '$.channels[2].name') AS n2, json_extract(new.data, '$.channels[3].name') AS n3,"
    " json_extract(new.data, '$.channels[4].name') AS n4, json_extract(new.data,"
    " '$.channels[5].name') AS n5, json_extract(new.data, '$.channels[6].name') AS n6,"
    " json_extract(new.data, '$.channels[7].name') AS n7, json_extract(new.data,"
    " '$.channels[8].name') AS n8, json_extract(new.data, '$.channels[9].name') AS n9,"
    " json_extract(new.data, '$.channels[10].name') AS n10, json_extract(new.data,"
    " '$.channels[11].name') AS n11, json_extract(new.data, '$.channels[12].name') AS n12,"
    " json_extract(new.data, '$.channels[13].name') AS n13, json_extract(new.data,"
    " '$.channels[14].name') AS n14, json_extract(new.data, '$.channels[15].name') AS n15);"
    " END;"
    "CREATE TRIGGER measurements_trend_update AFTER UPDATE ON measurements WHEN new.interval"
    " IN ('10min', '2h') BEGIN DELETE FROM measurement_trend WHERE terminal_id ="
    " old.terminal_id AND interval = old.interval AND t_end_ns = old.t_end_ns; INSERT OR"
    " REPLACE INTO measurement_trend(terminal_id, interval, t_end_ns, freq, u0_pct, u2_pct,"
    " i0_pct, i2_pct, p, q, s_eff, ua_rms, ub_rms, uc_rms, ia_rms, ib_rms, ic_rms, ua_thd,"
    " ub_thd, uc_thd) SELECT new.terminal_id, new.interval, new.t_end_ns,"
    " json_extract(new.data, '$.freq.mean'), json_extract(new.data, '$.u0_pct'),"
    " json_extract(new.data, '$.u2_pct'), json_extract(new.data, '$.i0_pct'),"
    " json_extract(new.data, '$.i2_pct'), json_extract(new.data, '$.p'),"
    " json_extract(new.data, '$.q'), json_extract(new.data, '$.s_eff'),"
    " json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Ua' THEN 0 WHEN n1 = 'Ua' THEN"
    " 1 WHEN n2 = 'Ua' THEN 2 WHEN n3 = 'Ua' THEN 3 WHEN n4 = 'Ua' THEN 4 WHEN n5 = 'Ua' THEN"
    " 5 WHEN n6 = 'Ua' THEN 6 WHEN n7 = 'Ua' THEN 7 WHEN n8 = 'Ua' THEN 8 WHEN n9 = 'Ua' THEN"
    " 9 WHEN n10 = 'Ua' THEN 10 WHEN n11 = 'Ua' THEN 11 WHEN n12 = 'Ua' THEN 12 WHEN n13 ="
    " 'Ua' THEN 13 WHEN n14 = 'Ua' THEN 14 WHEN n15 = 'Ua' THEN 15 END) || '].rms'),"
    " json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Ub' THEN 0 WHEN n1 = 'Ub' THEN"
    " 1 WHEN n2 = 'Ub' THEN 2 WHEN n3 = 'Ub' THEN 3 WHEN n4 = 'Ub' THEN 4 WHEN n5 = 'Ub' THEN"
    " 5 WHEN n6 = 'Ub' THEN 6 WHEN n7 = 'Ub' THEN 7 WHEN n8 = 'Ub' THEN 8 WHEN n9 = 'Ub' THEN"
    " 9 WHEN n10 = 'Ub' THEN 10 WHEN n11 = 'Ub' THEN 11 WHEN n12 = 'Ub' THEN 12 WHEN n13 ="
    " 'Ub' THEN 13 WHEN n14 = 'Ub' THEN 14 WHEN n15 = 'Ub' THEN 15 END) || '].rms'),"
    " json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Uc' THEN 0 WHEN n1 = 'Uc' THEN"
    " 1 WHEN n2 = 'Uc' THEN 2 WHEN n3 = 'Uc' THEN 3 WHEN n4 = 'Uc' THEN 4 WHEN n5 = 'Uc' THEN"
    " 5 WHEN n6 = 'Uc' THEN 6 WHEN n7 = 'Uc' THEN 7 WHEN n8 = 'Uc' THEN 8 WHEN n9 = 'Uc' THEN"
    " 9 WHEN n10 = 'Uc' THEN 10 WHEN n11 = 'Uc' THEN 11 WHEN n12 = 'Uc' THEN 12 WHEN n13 ="
    " 'Uc' THEN 13 WHEN n14 = 'Uc' THEN 14 WHEN n15 = 'Uc' THEN 15 END) || '].rms'),"
    " json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Ia' THEN 0 WHEN n1 = 'Ia' THEN"
    " 1 WHEN n2 = 'Ia' THEN 2 WHEN n3 = 'Ia' THEN 3 WHEN n4 = 'Ia' THEN 4 WHEN n5 = 'Ia' THEN"
    " 5 WHEN n6 = 'Ia' THEN 6 WHEN n7 = 'Ia' THEN 7 WHEN n8 = 'Ia' THEN 8 WHEN n9 = 'Ia' THEN"
    " 9 WHEN n10 = 'Ia' THEN 10 WHEN n11 = 'Ia' THEN 11 WHEN n12 = 'Ia' THEN 12 WHEN n13 ="
    " 'Ia' THEN 13 WHEN n14 = 'Ia' THEN 14 WHEN n15 = 'Ia' THEN 15 END) || '].rms'),"
    " json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Ib' THEN 0 WHEN n1 = 'Ib' THEN"
    " 1 WHEN n2 = 'Ib' THEN 2 WHEN n3 = 'Ib' THEN 3 WHEN n4 = 'Ib' THEN 4 WHEN n5 = 'Ib' THEN"
    " 5 WHEN n6 = 'Ib' THEN 6 WHEN n7 = 'Ib' THEN 7 WHEN n8 = 'Ib' THEN 8 WHEN n9 = 'Ib' THEN"
    " 9 WHEN n10 = 'Ib' THEN 10 WHEN n11 = 'Ib' THEN 11 WHEN n12 = 'Ib' THEN 12 WHEN n13 ="
    " 'Ib' THEN 13 WHEN n14 = 'Ib' THEN 14 WHEN n15 = 'Ib' THEN 15 END) || '].rms'),"
    " json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Ic' THEN 0 WHEN n1 = 'Ic' THEN"
    " 1 WHEN n2 = 'Ic' THEN 2 WHEN n3 = 'Ic' THEN 3 WHEN n4 = 'Ic' THEN 4 WHEN n5 = 'Ic' THEN"
    " 5 WHEN n6 = 'Ic' THEN 6 WHEN n7 = 'Ic' THEN 7 WHEN n8 = 'Ic' THEN 8 WHEN n9 = 'Ic' THEN"
    " 9 WHEN n10 = 'Ic' THEN 10 WHEN n11 = 'Ic' THEN 11 WHEN n12 = 'Ic' THEN 12 WHEN n13 ="
    " 'Ic' THEN 13 WHEN n14 = 'Ic' THEN 14 WHEN n15 = 'Ic' THEN 15 END) || '].rms'),"
    " json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Ua' THEN 0 WHEN n1 = 'Ua' THEN"
    " 1 WHEN n2 = 'Ua' THEN 2 WHEN n3 = 'Ua' THEN 3 WHEN n4 = 'Ua' THEN 4 WHEN n5 = 'Ua' THEN"
    " 5 WHEN n6 = 'Ua' THEN 6 WHEN n7 = 'Ua' THEN 7 WHEN n8 = 'Ua' THEN 8 WHEN n9 = 'Ua' THEN"
    " 9 WHEN n10 = 'Ua' THEN 10 WHEN n11 = 'Ua' THEN 11 WHEN n12 = 'Ua' THEN 12 WHEN n13 ="
    " 'Ua' THEN 13 WHEN n14 = 'Ua' THEN 14 WHEN n15 = 'Ua' THEN 15 END) || '].thd_pct'),"
    " json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Ub' THEN 0 WHEN n1 = 'Ub' THEN"
    " 1 WHEN n2 = 'Ub' THEN 2 WHEN n3 = 'Ub' THEN 3 WHEN n4 = 'Ub' THEN 4 WHEN n5 = 'Ub' THEN"
    " 5 WHEN n6 = 'Ub' THEN 6 WHEN n7 = 'Ub' THEN 7 WHEN n8 = 'Ub' THEN 8 WHEN n9 = 'Ub' THEN"
    " 9 WHEN n10 = 'Ub' THEN 10 WHEN n11 = 'Ub' THEN 11 WHEN n12 = 'Ub' THEN 12 WHEN n13 ="
    " 'Ub' THEN 13 WHEN n14 = 'Ub' THEN 14 WHEN n15 = 'Ub' THEN 15 END) || '].thd_pct'),"
    " json_extract(new.data, '$.channels[' || (CASE WHEN n0 = 'Uc' THEN 0 WHEN n1 = 'Uc' THEN"
    " 1 WHEN n2 = 'Uc' THEN 2 WHEN n3 = 'Uc' THEN 3 WHEN n4 = 'Uc' THEN 4 WHEN n5 = 'Uc' THEN"
    " 5 WHEN n6 = 'Uc' THEN 6 WHEN n7 = 'Uc' THEN 7 WHEN n8 = 'Uc' THEN 8 WHEN n9 = 'Uc' THEN"
    " 9 WHEN n10 = 'Uc' THEN 10 WHEN n11 = 'Uc' THEN 11 WHEN n12 = 'Uc' THEN 12 WHEN n13 ="
    " 'Uc' THEN 13 WHEN n14 = 'Uc' THEN 14 WHEN n15 = 'Uc' THEN 15 END) || '].thd_pct') FROM"
    " (SELECT json_extract(new.data, '$.channels[0].name') AS n0, json_extract(new.data,"
    " '$.channels[1].name') AS n1, json_extract(new.data, '$.channels[2].name') AS n2,"
    " json_extract(new.data, '$.channels[3].name') AS n3, json_extract(new.data,"
    " '$.channels[4].name') AS n4, json_extract(new.data, '$.channels[5].name') AS n5,"
    " json_extract(new.data, '$.channels[6].name') AS n6, json_extract(new.data,"
    " '$.channels[7].name') AS n7, json_extract(new.data, '$.channels[8].name') AS n8,"
    " json_extract(new.data, '$.channels[9].name') AS n9, json_extract(new.data,"
    " '$.channels[10].name') AS n10, json_extract(new.data, '$.channels[11].name') AS n11,"
    " json_extract(new.data, '$.channels[12].name') AS n12, json_extract(new.data,"
    " '$.channels[13].name') AS n13, json_extract(new.data, '$.channels[14].name') AS n14,"
    " json_extract(new.data, '$.channels[15].name') AS n15) WHERE json_valid(new.data); END;"
    "CREATE TRIGGER measurements_trend_delete AFTER DELETE ON measurements WHEN old.interval"
    " IN ('10min', '2h') BEGIN DELETE FROM measurement_trend WHERE terminal_id ="
    " old.terminal_id AND interval = old.interval AND t_end_ns = old.t_end_ns; END;"
    "INSERT OR REPLACE INTO measurement_trend(terminal_id, interval, t_end_ns, freq, u0_pct,"
    " u2_pct, i0_pct, i2_pct, p, q, s_eff, ua_rms, ub_rms, uc_rms, ia_rms, ib_rms, ic_rms,"
    " ua_thd, ub_thd, uc_thd) SELECT m.terminal_id, m.interval, m.t_end_ns,"
    " json_extract(m.data, '$.freq.mean'), json_extract(m.data, '$.u0_pct'),"
    " json_extract(m.data, '$.u2_pct'), json_extract(m.data, '$.i0_pct'),"
    " json_extract(m.data, '$.i2_pct'), json_extract(m.data, '$.p'), json_extract(m.data,"
    " '$.q'), json_extract(m.data, '$.s_eff'), (SELECT json_extract(value, '$.rms') FROM"
    " json_each(m.data, '$.channels') WHERE json_extract(value, '$.name') = 'Ua'), (SELECT"
    " json_extract(value, '$.rms') FROM json_each(m.data, '$.channels') WHERE"
    " json_extract(value, '$.name') = 'Ub'), (SELECT json_extract(value, '$.rms') FROM"
    " json_each(m.data, '$.channels') WHERE json_extract(value, '$.name') = 'Uc'), (SELECT"
    " json_extract(value, '$.rms') FROM json_each(m.data, '$.channels') WHERE"
    " json_extract(value, '$.name') = 'Ia'), (SELECT json_extract(value, '$.rms') FROM"
    " json_each(m.data, '$.channels') WHERE json_extract(value, '$.name') = 'Ib'), (SELECT"
    " json_extract(value, '$.rms') FROM json_each(m.data, '$.channels') WHERE"
    " json_extract(value, '$.name') = 'Ic'), (SELECT json_extract(value, '$.thd_pct') FROM"
    " json_each(m.data, '$.channels') WHERE json_extract(value, '$.name') = 'Ua'), (SELECT"
    " json_extract(value, '$.thd_pct') FROM json_each(m.data, '$.channels') WHERE"
    " json_extract(value, '$.name') = 'Ub'), (SELECT json_extract(value, '$.thd_pct') FROM"
    " json_each(m.data, '$.channels') WHERE json_extract(value, '$.name') = 'Uc') FROM"
    " measurements m WHERE m.interval IN ('10min', '2h') AND json_valid(m.data);",
    /* 13: PostgreSQL stores blocks.data without trying to compress it (already wcodec); nothing
     * changes on SQLite, the number keeps both dialects' migrations in step (pg_schema.c). */
    "SELECT 1;",
};

/* The migration whose script is followed by sealing the secrets (store__migrate_seal). */
#define MIGRATION_SEAL 4

#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

void store__seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

_Thread_local int store__quiet_full;

int store__db_fail(sqlx_t *db, const char *what)
{
    /* A database away (PostgreSQL restarting, a failover) fails every call until it is back:
     * a few lines a minute say so, not one per call. */
    if (sqlx_errcode(db) == GS_ECLOSED)
        log_limited(LOG_ERROR, "store: database connection", "%s: %s", what, sqlx_errmsg(db));
    else if (store__quiet_full && store__db_is_full(db))
        log_debug(STORE_LOG_WHO, "%s: %s", what, sqlx_errmsg(db)); /* the alarm reports it */
    else
        log_error(STORE_LOG_WHO, "%s: %s", what, sqlx_errmsg(db));
    return GS_EDB;
}

int store__prepare(sqlx_t *db, const char *sql, sqlx_stmt_t **out)
{
    *out = NULL;
    int rc = sqlx_prepare(db, sql, out);
    if (rc < 0) {
        log_error(STORE_LOG_WHO, "prepare: %s (in: %.160s)", sqlx_errmsg(db), sql);
        return rc == GS_ECLOSED || rc == GS_EBUSY ? rc : GS_EDB;
    }
    return 0;
}

int store__query_i64(sqlx_t *db, const char *sql, const char *text1, int64_t int1, int64_t def,
                     int64_t *out, int *found)
{
    sqlx_stmt_t *st = NULL;
    int rc = store__prepare(db, sql, &st);
    if (found)
        *found = 0;
    if (rc < 0)
        return rc;
    if (text1)
        sqlx_bind_text(st, 1, text1, -1);
    else if (sqlx_bind_parameter_count(st) >= 1)
        sqlx_bind_int64(st, 1, int1);
    int src = sqlx_step(st);
    *out = def;
    if (src == SQLX_ROW && sqlx_column_type(st, 0) != SQLX_NULL) {
        *out = sqlx_column_int64(st, 0);
        if (found)
            *found = 1;
    } else if (src != SQLX_ROW && src != SQLX_DONE) {
        rc = store__db_fail(db, "query");
    }
    sqlx_finalize(st);
    return rc;
}

int store__table_exists(sqlx_t *db, const char *name)
{
    sqlx_stmt_t *st = NULL;
    /* PostgreSQL: a table of the connection's first search_path schema (where the migrations
     * create them, pg.h). */
    int rc = store__prepare(db,
                            sqlx_backend(db) == SQLX_POSTGRESQL
                                ? "SELECT count(*) FROM pg_tables WHERE schemaname = "
                                  "current_schema() AND tablename = ?1"
                                : "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                  "name = ?1",
                            &st);
    if (rc < 0)
        return rc;
    sqlx_bind_text(st, 1, name, -1);
    if (sqlx_step(st) == SQLX_ROW)
        rc = (int)sqlx_column_int64(st, 0) > 0;
    else
        rc = store__db_fail(db, "look up a table");
    sqlx_finalize(st);
    return rc;
}

int store__db_open(const char *path, int sync_full, int busy_timeout_ms, sqlite3 **out, char *err,
                   size_t errlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char why[160] = "";
    *out = NULL;

    if (!sqlite3_threadsafe()) {
        snprintf(why, sizeof why, "SQLite was built without thread support");
        goto fail;
    }
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    /* Private before anything is written: SQLite creates a new database 0644 less the umask
     * (SQLITE_DEFAULT_FILE_PERMISSIONS) and gives -wal and -shm the database file's mode when it
     * creates them (os_unix.c findCreateFileMode, unixOpenSharedMemory), which happens only at
     * the first statement below. By path, never through a file descriptor of our own: closing
     * one would drop every POSIX lock this process holds on the database (fcntl(2)), including
     * those of the other connections, and let another process checkpoint and delete the WAL
     * under them. */
    struct stat sb;
    if (stat(path, &sb) == 0 && (sb.st_mode & 077) && chmod(path, sb.st_mode & 07700) != 0) {
        snprintf(why, sizeof why, "cannot make it private: %s", strerror(errno));
        goto fail;
    }
    sqlite3_busy_timeout(db, busy_timeout_ms);

    /* Large pages for a new database: a 100 ms waveform block (~5 KB) then sits inside one page
     * instead of an overflow chain, which nearly doubled insert throughput in a measurement
     * (bench notes in docs/benchmarks.md). Ignored by SQLite for an existing database. */
    if (sqlite3_exec(db, "PRAGMA page_size=32768", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;

    /* The first statement that reads is where a non-database file is detected ("file is not a
     * database"). */
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_step(st) != SQLITE_ROW)
        goto fail;
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || strcmp(mode, "wal") != 0) {
        snprintf(why, sizeof why, "cannot enable WAL journal mode (got %s)", mode ? mode : "?");
        goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;

    const char *sync = sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
    if (sqlite3_exec(db, sync, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA foreign_keys=OFF", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;

    *out = db;
    return 0;

fail:
    store__seterr(err, errlen, "cannot open %s: %s", path,
                  why[0] ? why : (db ? sqlite3_errmsg(db) : "out of memory"));
    log_error(STORE_LOG_WHO, "cannot open %s: %s", path,
              why[0] ? why : (db ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return GS_EDB;
}

/* Reads the current schema version (0 for an empty database) into *version. */
static int read_version(sqlx_t *db, int *version)
{
    sqlx_stmt_t *st = NULL;
    *version = 0;
    int rc = store__table_exists(db, "schema_version");
    if (rc <= 0)
        return rc;

    rc = store__prepare(db, "SELECT coalesce(max(version), 0) FROM schema_version", &st);
    if (rc < 0)
        goto fail;
    if (sqlx_step(st) != SQLX_ROW) {
        rc = store__db_fail(db, "read schema version");
        goto fail;
    }
    *version = (int)sqlx_column_int64(st, 0);
    rc = 0;
fail:
    sqlx_finalize(st);
    return rc;
}

/* Applies migration number `to` (1-based) unless another connection already did. Runs in one
 * BEGIN IMMEDIATE transaction: taking the write lock first and re-reading the version inside it
 * makes concurrent openers wait for each other instead of applying the script twice. */
static int apply_one(sqlx_t *db, int to, const store_key_t *key, char *err, size_t errlen)
{
    int in_tx = 0, rc, version = 0, sealed = 0;
    char sql[96], why[400] = "";

    if (sqlx_begin(db) != 0)
        goto fail;
    in_tx = 1;
    if (sqlx_exec(db, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)") != 0)
        goto fail;
    rc = read_version(db, &version);
    if (rc < 0)
        goto fail;
    if (version < to) {
        if (sqlx_exec(db, migrations[to - 1]) != 0)
            goto fail;
        if (to == MIGRATION_SEAL) {
            sealed = store__migrate_seal(db, key, why, sizeof why);
            if (sealed < 0)
                goto fail;
        }
        snprintf(sql, sizeof sql, "INSERT INTO schema_version(version) VALUES(%d)", to);
        if (sqlx_exec(db, sql) != 0)
            goto fail;
        log_info(STORE_LOG_WHO, "applied schema migration %d", to);
    }
    if (sqlx_commit(db) != 0)
        goto fail;
    if (sealed > 0)
        store__checkpoint_truncate(sqlx_sqlite_handle(db));
    return 0;

fail:
    if (!why[0])
        snprintf(why, sizeof why, "%s", sqlx_errmsg(db));
    store__seterr(err, errlen, "schema migration %d failed: %s", to, why);
    log_error(STORE_LOG_WHO, "schema migration %d failed: %s", to, why);
    if (in_tx)
        sqlx_rollback(db);
    return GS_EDB;
}

int store__schema_check(sqlx_t *db, const char *path, int *version, char *err, size_t errlen)
{
    int v = 0;
    int rc = read_version(db, &v);
    if (rc < 0) {
        store__seterr(err, errlen, "cannot read schema version of %s: %s", path, sqlx_errmsg(db));
        return rc;
    }
    if (v != NMIGRATIONS) {
        store__seterr(err, errlen,
                      "%s has schema version %d, this program needs %d: a reader does not "
                      "migrate; open it once for writing first (the server does at start)",
                      path, v, NMIGRATIONS);
        return GS_ESTATE;
    }
    *version = v;
    return 0;
}

int store__migrate(sqlx_t *db, const char *path, const store_key_t *key, int *version, char *err,
                   size_t errlen)
{
    int v = 0;
    int rc = read_version(db, &v);
    if (rc < 0) {
        store__seterr(err, errlen, "cannot read schema version of %s: %s", path, sqlx_errmsg(db));
        goto fail;
    }
    if (v > NMIGRATIONS) {
        store__seterr(err, errlen, "%s has schema version %d, newer than this program's %d", path,
                      v, NMIGRATIONS);
        log_error(STORE_LOG_WHO, "%s has schema version %d, newer than this program's %d", path, v,
                  NMIGRATIONS);
        rc = GS_EDB;
        goto fail;
    }
    /* The common case (already current) takes no write lock. */
    for (int to = v + 1; to <= NMIGRATIONS; to++) {
        rc = apply_one(db, to, key, err, errlen);
        if (rc < 0)
            goto fail;
    }
    *version = NMIGRATIONS;
    return 0;
fail:
    return rc;
}

int store__schema_latest(void)
{
    return NMIGRATIONS;
}
