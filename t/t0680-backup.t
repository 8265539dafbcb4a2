#!/usr/bin/env python3
# backup while the service writes at full speed: the copy is one file,
# whole (integrity_check), at the ledger's schema version, with the rows
# the ledger had at one instant (the counts the check compared), while no
# write failed; --dir --keep rotates; an existing file is never
# overwritten. On PostgreSQL, backup says to use the server's tools.
import json, os, sqlite3, threading, time
from concurrent.futures import ThreadPoolExecutor
from harness import BACKEND, Stack, ok, is_, done, diag, promo, skip

P = "t-backup"
s = Stack(workers=2, promos=[promo(P, prizes=[
    {"id": "gift", "name": "기프티콘", "daily_stock": 100000, "probability": 0.5}])])
if BACKEND == "pg":
    # A ledger on PostgreSQL is backed up with the server's tools: backup
    # says which, and makes nothing.
    s.edit_config(db=json.load(open(s.config))["db"] + "&password=s3cret-pw")
    r = s.ctl("backup", os.path.join(s.dir, "b1.db"), check=False)
    ok(r.returncode == 2 and "pg_dump" in r.stderr and "pg_basebackup" in r.stderr and
       "ledger renew-id" in r.stderr, "on PostgreSQL backup exits 2 naming pg_dump,"
       " pg_basebackup and ledger renew-id") or diag(r.stderr)
    ok("s3cret-pw" not in r.stdout + r.stderr, "without showing the connection string's password")
    ok(not os.path.exists(os.path.join(s.dir, "b1.db")), "and makes no file")
    r = s.ctl("ledger", "show", check=False)
    ok(r.returncode == 0 and "postgresql" in r.stdout and "s3cret-pw" not in r.stdout,
       "ledger show names the engine, not the password") or diag(r.stdout + r.stderr)
    skip("the backup file under load, its checks, --dir --keep", "SQLite's backup file only")
    done()
N = 3000  # more than the writers reach: new users until the end
uids = ["u%04d" % i for i in range(N)]
toks = dict(zip(uids, s.tokens(*uids)))
stop = threading.Event()
statuses = []


def writer(k):
    i = 0
    while not stop.is_set():
        u = uids[(k * N // 8 + i) % N]
        t = toks[u]
        statuses.append(s.api("POST", P, "visit", token=t).status)
        statuses.append(s.api("POST", P, "draws", {"request_id": "req-%s-%06d" % (u, i)},
                              token=t).status)
        i += 1


tables = ("promotions", "promotion_history", "ledger_meta", "balances", "grants", "invite_codes",
          "invites", "claim_refusals", "draws", "stock", "outbox")
path = os.path.join(s.dir, "b1.db")
with ThreadPoolExecutor(8) as ex:
    futs = [ex.submit(writer, k) for k in range(8)]
    time.sleep(1.5)
    during = len(statuses)
    r = s.ctl("backup", path, "--json", check=False)
    time.sleep(1.0)
    stop.set()
    for f in futs:
        f.result()
is_(r.returncode, 0, "backup under load exits 0") or diag(r.stderr)
rep = json.loads(r.stdout)
diag("backup: %s bytes, copy %.3f s, check %.3f s; %d requests during the run"
     % (rep["bytes"], rep["copy_seconds"], rep["check_seconds"], len(statuses)))
ok(len(statuses) > during + 20, "the writes went on during the backup (%d before, %d in all)"
   % (during, len(statuses)))
bad = sorted({x for x in statuses if x not in (200, 409)})
is_(bad, [], "no write failed meanwhile (only 200 and 409 no_tickets)")
ok(not os.path.exists(path + "-wal") and not os.path.exists(path + "-shm"), "the backup is one file")
with sqlite3.connect("file:%s?mode=ro" % path, uri=True) as c:
    is_(c.execute("PRAGMA integrity_check").fetchone()[0], "ok", "its integrity check passes")
    is_(c.execute("PRAGMA journal_mode").fetchone()[0], "delete", "in rollback-journal mode")
    is_(c.execute("PRAGMA user_version").fetchone()[0], s.scalar("PRAGMA user_version"),
        "at the ledger's schema version")
    got = {t: c.execute("SELECT count(*) FROM %s" % t).fetchone()[0] for t in tables}
    is_(got, rep["rows"], "with the rows it reports for every table")
    ok(got["draws"] > 0 and got["outbox"] > 0, "some draws and events (%d, %d) were copied"
       % (got["draws"], got["outbox"]))
    # One instant: every draw's events are there, and the balances add up.
    is_(c.execute("SELECT count(*) FROM draws d WHERE prize IS NOT NULL AND (SELECT count(*)"
                  " FROM outbox o WHERE o.draw_id = d.id) <> 2").fetchone()[0], 0,
        "every win in the copy has its two events")
    is_(c.execute("SELECT count(*) FROM balances b WHERE spent <> (SELECT count(*) FROM draws d"
                  " WHERE d.promo = b.promo AND d.uid = b.uid)").fetchone()[0], 0,
        "every balance's spent dice are its draws")
live = {t: s.scalar("SELECT count(*) FROM %s" % t) for t in tables}
ok(all(got[t] <= live[t] for t in tables) and got["grants"] < live["grants"],
   "the ledger went on past the copy's instant")
ok("integrity ok" in s.ctl("backup", os.path.join(s.dir, "b2.db")).stdout,
   "the text output says what it checked")

r = s.ctl("backup", path, check=False)
ok(r.returncode == 2 and "exists" in r.stderr, "an existing file is never overwritten")
r = s.ctl("backup", check=False)
is_(r.returncode, 2, "neither FILE nor --dir: a usage error")
bdir = os.path.join(s.dir, "backups")
os.mkdir(bdir)
for i in range(3):
    s.ctl("backup", "--dir", bdir, "--keep", "2")
    time.sleep(1.1)  # the names are by the second
is_(len(os.listdir(bdir)), 2, "--dir --keep 2 keeps the 2 newest of 3")
ok(all(n.startswith("luckydice-") and n.endswith("Z.db") for n in os.listdir(bdir)),
   "named by their UTC time")
r = s.ctl("backup", os.path.join(s.dir, "b3.db"), "--method", "vacuum", "--json")
is_(json.loads(r.stdout)["method"], "vacuum", "--method vacuum makes a checked copy too")
done()
