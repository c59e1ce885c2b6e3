"""Secrets at rest (issue 7 section 3) with the real binaries: private file modes whatever the
umask, a database from the previous release (plaintext secrets) sealed at first start with its
terminals still logging in, a copied database without its key file useless, the CLI refusing a
bad key file, and `gridsense key rotate` while the server runs with terminals online."""
import os
import secrets as pysecrets
import shutil
import sqlite3
import stat

from gslib import *

# The schema of the release before secrets at rest (src/store/db.c migrations 1-3, verbatim).
OLD_MIGRATIONS = [
    """
CREATE TABLE terminals(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL DEFAULT '',
  lat REAL,
  lon REAL,
  nominal_hz INTEGER NOT NULL DEFAULT 50,
  vt_ratio REAL NOT NULL DEFAULT 1,
  ct_ratio REAL NOT NULL DEFAULT 1,
  secret BLOB NOT NULL,
  created_ns INTEGER NOT NULL,
  durable_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE sessions(
  id INTEGER PRIMARY KEY,
  session_id INTEGER NOT NULL UNIQUE,
  terminal_id TEXT NOT NULL,
  remote TEXT,
  opened_ns INTEGER,
  closed_ns INTEGER,
  close_reason TEXT,
  frames INTEGER,
  bytes INTEGER,
  blocks INTEGER);
CREATE INDEX sessions_terminal ON sessions(terminal_id, opened_ns);
CREATE TABLE blocks(
  id INTEGER PRIMARY KEY,
  terminal_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  t0_ns INTEGER,
  sample_rate INTEGER,
  channel_mask INTEGER,
  nchannels INTEGER,
  sample_fmt INTEGER,
  time_quality INTEGER,
  nsamples INTEGER,
  data BLOB,
  received_ns INTEGER NOT NULL,
  UNIQUE(terminal_id, seq));
CREATE TABLE events(
  id INTEGER PRIMARY KEY,
  terminal_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  trigger INTEGER,
  trigger_ns INTEGER,
  pretrigger INTEGER,
  value_permille INTEGER,
  channel INTEGER,
  UNIQUE(terminal_id, seq));
CREATE TABLE status(
  id INTEGER PRIMARY KEY,
  terminal_id TEXT NOT NULL,
  time_ns INTEGER,
  received_ns INTEGER NOT NULL,
  rsrp_dbm INTEGER,
  rssi_dbm INTEGER,
  csq INTEGER,
  supply_mv INTEGER,
  temp_c10 INTEGER,
  uptime_s INTEGER,
  gps_fix INTEGER,
  gps_sats INTEGER,
  time_quality INTEGER,
  buffer_permille INTEGER,
  buffered_blocks INTEGER);
CREATE INDEX status_terminal_time ON status(terminal_id, time_ns);
CREATE TABLE commands(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  terminal_id TEXT NOT NULL,
  verb INTEGER NOT NULL,
  args BLOB,
  state INTEGER NOT NULL DEFAULT 0,
  created_ns INTEGER NOT NULL,
  updated_ns INTEGER NOT NULL,
  expires_ns INTEGER NOT NULL,
  result_status INTEGER NOT NULL DEFAULT -1,
  result BLOB);
CREATE INDEX commands_terminal_state ON commands(terminal_id, state);
CREATE INDEX commands_state_expiry ON commands(state, expires_ns);
""",
    """
CREATE TABLE credentials_version(id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL);
INSERT INTO credentials_version VALUES(1, 0);
CREATE TRIGGER terminals_deleted AFTER DELETE ON terminals BEGIN  UPDATE credentials_version SET version = version + 1 WHERE id = 1;
 END;
CREATE TRIGGER terminals_secret AFTER UPDATE OF secret ON terminals BEGIN  UPDATE credentials_version SET version = version + 1 WHERE id = 1;
 END;
""",
    """
ALTER TABLE terminals ADD COLUMN declared_v REAL;
CREATE TABLE pq_events(
  id INTEGER PRIMARY KEY,
  terminal_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  start_ns INTEGER NOT NULL,
  duration_ns INTEGER NOT NULL,
  extreme REAL,
  extreme_pct REAL,
  reference REAL,
  channels INTEGER,
  worst_channel INTEGER,
  flags INTEGER NOT NULL DEFAULT 0,
  detected_ns INTEGER NOT NULL,
  UNIQUE(terminal_id, kind, start_ns));
CREATE INDEX pq_events_time ON pq_events(start_ns);
CREATE TABLE measurements(
  id INTEGER PRIMARY KEY,
  terminal_id TEXT NOT NULL,
  interval TEXT NOT NULL,
  t_start_ns INTEGER NOT NULL,
  t_end_ns INTEGER NOT NULL,
  flags INTEGER NOT NULL DEFAULT 0,
  count INTEGER NOT NULL DEFAULT 0,
  data TEXT NOT NULL,
  UNIQUE(terminal_id, interval, t_end_ns));
""",
]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def sim_logs_in(srv, secrets_file, what):
    rc, s, err = sim(srv.tport, secrets_file, 1, 3, ["--seed", "3"], timeout=120)
    check(rc == 0 and s is not None and s["auth_rejected"] == 0 and s["blocks_acked"] > 0
          and s["blocks_acked"] == s["blocks_generated"],
          "%s: gridsense-sim logs in and its blocks are acknowledged (%s)"
          % (what, s if s is None else {k: s[k] for k in ("auth_rejected", "blocks_acked")}))


def make_old_db(data, terminals):
    """A data directory as the previous release left it: 0755, database 0644, plaintext secrets,
    no key file."""
    os.makedirs(data, mode=0o755, exist_ok=True)
    os.chmod(data, 0o755)
    path = os.path.join(data, "gridsense.db")
    c = sqlite3.connect(path)
    c.execute("PRAGMA page_size=32768")
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE schema_version(version INTEGER NOT NULL)")
    for i, sql in enumerate(OLD_MIGRATIONS):
        c.executescript(sql)
        c.execute("INSERT INTO schema_version(version) VALUES(?)", (i + 1,))
    for tid, secret in terminals.items():
        c.execute("INSERT INTO terminals(id, name, secret, created_ns) VALUES(?, ?, ?, ?)",
                  (tid, "old " + tid, secret, time.time_ns()))
    c.commit()
    c.close()
    os.chmod(path, 0o644)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.chmod(path + suffix, 0o644)
    sf = os.path.join(data, "..", os.path.basename(data) + "-secrets.txt")
    with open(sf, "w") as f:
        for tid, secret in terminals.items():
            f.write("%s %s\n" % (tid, secret.hex()))
    return sf


def file_has(path, needle):
    try:
        return needle in open(path, "rb").read()
    except OSError:
        return False


def check_modes(data, names, what):
    check(mode(data) == 0o700, "%s: data dir is 0700 (%o)" % (what, mode(data)))
    for n in names:
        p = os.path.join(data, n)
        check(os.path.exists(p) and mode(p) == 0o600,
              "%s: %s is 0600 (%s)" % (what, n, oct(mode(p)) if os.path.exists(p) else "absent"))


def test_modes_and_copy(top):
    os.umask(0o022)
    data = os.path.join(top, "fresh")
    secrets_file = os.path.join(top, "fresh-secrets.txt")
    provision(data, 2, "M", secrets_file)
    check_modes(data, ["gridsense.db", "master.key"], "after terminal add with umask 022")
    check(os.path.getsize(os.path.join(data, "master.key")) == 32, "master.key holds 32 bytes")
    srv = Server(data).start()
    try:
        sim_logs_in(srv, secrets_file, "fresh data dir")
        check_modes(data, ["gridsense.db", "gridsense.db-wal", "gridsense.db-shm", "master.key",
                           "ports.json"], "server running with umask 022")
    finally:
        check(srv.stop() == 0, "server exits 0")
    if os.path.exists(os.path.join(data, "fftw-wisdom")):
        check_modes(data, ["fftw-wisdom"], "FFTW wisdom saved at stop")

    # Whoever copies the database alone has no secret: not in the file, and the server
    # refuses to start on it, naming the missing key file.
    sec = read_secrets(secrets_file)
    dbfile = os.path.join(data, "gridsense.db")
    for tid, s in sec.items():
        check(not file_has(dbfile, s), "%s's secret is not in gridsense.db" % tid)
    stolen = os.path.join(top, "stolen")
    os.makedirs(stolen)
    shutil.copy(dbfile, stolen)
    p = run([GRIDSENSE, "serve", "--data", stolen, "--terminals", "127.0.0.1:0", "--http",
             "127.0.0.1:0"], check_rc=False, timeout=60)
    key = os.path.join(stolen, "master.key")
    check(p.returncode == 1 and key in p.stderr and "is missing" in p.stderr,
          "server refuses a copied database without its key, naming %s" % key)
    check(not os.path.exists(key), "and creates no new key for it")
    with open(key, "wb") as f:
        f.write(pysecrets.token_bytes(32))
    os.chmod(key, 0o600)
    p = run([GRIDSENSE, "serve", "--data", stolen, "--terminals", "127.0.0.1:0", "--http",
             "127.0.0.1:0"], check_rc=False, timeout=60)
    check(p.returncode == 1 and "is not the key of" in p.stderr,
          "server refuses a copied database with another key")
    # The CLI refuses a bad key file clearly too.
    os.chmod(key, 0o644)
    p = run([GRIDSENSE, "terminal", "list", "--data", stolen], check_rc=False)
    check(p.returncode == 1 and "mode 0644" in p.stderr and key in p.stderr,
          "CLI refuses a key file readable by others")
    with open(key, "wb") as f:
        f.write(b"\x01" * 16)
    os.chmod(key, 0o600)
    p = run([GRIDSENSE, "terminal", "rotate-secret", "M0001", "--data", stolen], check_rc=False)
    check(p.returncode == 1 and "has 16 bytes" in p.stderr and p.stdout == "",
          "CLI refuses a key file of the wrong size (and prints no secret)")
    # With the real key (given by path in the config) the copy works.
    keycopy = os.path.join(top, "backup.key")
    shutil.copy(os.path.join(data, "master.key"), keycopy)
    os.chmod(keycopy, 0o400)
    os.unlink(key)
    cfg = os.path.join(top, "stolen.ini")
    with open(cfg, "w") as f:
        f.write("[security]\nmaster_key_file = %s\n" % keycopy)
    srv2 = Server(stolen, ["--config", cfg]).start()
    try:
        sim_logs_in(srv2, secrets_file, "copied database with its key file")
    finally:
        check(srv2.stop() == 0, "server exits 0")


def test_migration(top):
    os.umask(0o022)
    data = os.path.join(top, "old")
    terminals = {"OLD-1": pysecrets.token_bytes(32), "OLD-2": pysecrets.token_bytes(32)}
    sf = make_old_db(data, terminals)
    srv = Server(data).start()
    try:
        sim_logs_in(srv, sf, "database of the previous release")
        log = srv.log()
        check("made private" in log, "server logs that it made the data dir private")
        check("sealed the secrets of 2 terminals" in log, "server logs the migration")
        check(not any(s.hex() in log for s in terminals.values()), "no secret in the log")
    finally:
        check(srv.stop() == 0, "server exits 0")
    check_modes(data, ["gridsense.db", "master.key"], "old data dir after first start")
    c = db(data)
    rows = c.execute("SELECT id, length(secret) FROM terminals ORDER BY id").fetchall()
    ver = c.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    c.close()
    check(rows == [("OLD-1", 89), ("OLD-2", 89)] and ver >= 4,
          "secrets sealed in place (89 bytes each), schema version %d" % ver)
    for tid, s in terminals.items():
        for suffix in ("", "-wal"):
            check(not file_has(os.path.join(data, "gridsense.db" + suffix), s),
                  "%s's plaintext secret is gone from gridsense.db%s" % (tid, suffix))


def test_rotate_while_running(top):
    data = os.path.join(top, "rot")
    secrets_file = os.path.join(top, "rot-secrets.txt")
    sec = read_secrets(provision(data, 2, "R", secrets_file))
    old_key = open(os.path.join(data, "master.key"), "rb").read()
    srv = Server(data).start()
    try:
        c = RawClient(srv.tport)
        t, p = c.login("R0001", sec["R0001"])
        check(t == WELCOME, "R0001 online before the rotation")
        p = run([GRIDSENSE, "key", "rotate", "--data", data])
        check("master key rotated" in p.stdout, "gridsense key rotate while the server runs")
        new_key = open(os.path.join(data, "master.key"), "rb").read()
        check(len(new_key) == 32 and new_key != old_key, "master.key replaced by a new key")
        check(not os.path.exists(os.path.join(data, "master.key.old"))
              and not os.path.exists(os.path.join(data, "master.key.new")),
              "no .old/.new key file left after the rotation")
        check(mode(os.path.join(data, "master.key")) == 0o600, "new key file is 0600")
        # The server notices (credentials_version) and re-reads the sealed secrets with the
        # new key: the secret is unchanged, so the online session stays up.
        wait_for(lambda: "master key changed (rotation)" in srv.log(), 30,
                 "the server to load the new key")
        check(not c.closed(timeout=3), "the online session is not ended by the rotation")
        c2 = RawClient(srv.tport)
        t, p = c2.login("R0002", sec["R0002"])
        check(t == WELCOME, "a terminal logs in after the rotation (raw client)")
        c2.close()
        c.close()
        sim_logs_in(srv, secrets_file, "after the key rotation")
        check(old_key.hex() not in srv.log() and new_key.hex() not in srv.log(),
              "no key in the server log")
    finally:
        check(srv.stop() == 0, "server exits 0")
    srv = Server(data).start()
    try:
        sim_logs_in(srv, secrets_file, "server restarted on the rotated key")
    finally:
        check(srv.stop() == 0, "server exits 0")


def test_lost_key(top):
    data = os.path.join(top, "lost")
    sec = read_secrets(provision(data, 2, "L", os.path.join(top, "lost-secrets.txt")))
    key = os.path.join(data, "master.key")
    os.unlink(key)
    p = run([GRIDSENSE, "terminal", "list", "--data", data], check_rc=False)
    check(p.returncode == 1 and "is missing" in p.stderr and "key reset" in p.stderr,
          "CLI refuses a missing key file and names the way out")
    p = run([GRIDSENSE, "key", "reset", "--data", data], check_rc=False)
    check(p.returncode == 2 and "--discard-secrets" in p.stderr,
          "key reset needs --discard-secrets")
    p = run([GRIDSENSE, "key", "reset", "--discard-secrets", "--data", data])
    check("rotate-secret" in p.stdout and mode(key) == 0o600, "key reset makes a new 0600 key")
    p = run([GRIDSENSE, "key", "reset", "--discard-secrets", "--data", data], check_rc=False)
    check(p.returncode == 1 and "refused" in p.stderr, "a second key reset is refused (key present)")
    p = run([GRIDSENSE, "key", "show", "--data", data])
    check("key id " in p.stdout and key in p.stdout, "key show prints the key file and its id")
    srv = Server(data).start()
    try:
        c = RawClient(srv.tport)
        t, p = c.login("L0001", sec["L0001"])
        check(t == REJECT and reject_reason(p) == "BAD_AUTH",
              "the old secret no longer logs in after a key reset: REJECT BAD_AUTH (%r)" % (t,))
        c.close()
        st, j = srv.json("/api/v1/terminals/L0001")
        check(st == 200 and j.get("id") == "L0001",
              "the API still shows a terminal without a usable secret")
        out = run([GRIDSENSE, "terminal", "rotate-secret", "L0001", "--data", data]).stdout
        c = RawClient(srv.tport)
        t, _ = c.login("L0001", bytes.fromhex(out.split()[1]))
        check(t == WELCOME, "after rotate-secret the terminal logs in with its new secret")
        c.close()
    finally:
        check(srv.stop() == 0, "server exits 0")


def main():
    with TempDir() as top:
        test_modes_and_copy(top)
        test_migration(top)
        test_rotate_while_running(top)
        test_lost_key(top)


if __name__ == "__main__":
    main()
