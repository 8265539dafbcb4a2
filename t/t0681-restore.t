#!/usr/bin/env python3
# The restore drill: wins -> backup -> more wins, all delivered -> restore
# -> new wins -> dispatch. The restored ledger issues draw ids again that
# were issued (and delivered) after the backup, yet every Idempotency-Key
# the receiver saw names one event only, the new wins' keys were never
# seen before, the events the backup held undelivered are delivered, the
# balances the API shows are the ledger's (Redis still held the lost
# future's, under the old ledger id), and cache verify is clean. A
# restore refuses while the service has the database open. On PostgreSQL
# the drill is docs/backup.md's: pg_dump, pg_restore --clean with the
# service stopped, then luckydicectl ledger renew-id and init.
import collections, gc, json, os, subprocess
from harness import BACKEND, Stack, ok, is_, done, diag, promo, skip
from dispatchlib import Receiver, FAST, make_wins, dispatch_until_done

P = "t-restore"
rv = Receiver()
s = Stack(balance_read="cache", promos=[promo(P, prizes=[
    {"id": "gift", "name": "기프티콘", "daily_stock": 1000, "probability": 1}])],
          extra_config={"reward_url": rv.url + "/reward", "notify_url": rv.url + "/notify",
                        "dispatch": FAST})
rv.verify_with(os.path.join(s.dir, "signing.secret"))


def balances():
    return dict(s.query("SELECT uid, granted - spent FROM balances WHERE promo=?", P))


def api_balance(uid):
    r = s.api("GET", P, "balance", token=s.token(uid))
    return r.json["balance"] if r.status == 200 else r


# 1. Wins, delivered. 2. Wins not delivered yet when the backup is taken.
make_wins(s, P, ["a0", "a1", "a2"])
dispatch_until_done(s)
is_(s.scalar("SELECT count(*) FROM outbox WHERE state <> 'delivered'"), 0, "the first wins are delivered")
make_wins(s, P, ["b0", "b1"])
old_id = s.ledger_id()
if BACKEND == "sqlite":
    backup = os.path.join(s.dir, "before.db")
    r = s.ctl("backup", backup)
    ok("integrity ok" in r.stdout and "ledger id %s" % old_id in r.stdout,
       "the backup is taken and checked") or diag(r.stdout)
else:
    db = json.load(open(s.config))["db"]
    backup = os.path.join(s.dir, "before.dump")
    r = subprocess.run(["pg_dump", "--format=custom", "--file=" + backup, db],
                       capture_output=True, text=True, timeout=120)
    ok(r.returncode == 0 and os.path.getsize(backup) > 0, "pg_dump takes the backup") \
        or diag(r.stderr)
at_backup = balances()
last_draw = s.scalar("SELECT max(id) FROM draws")
undelivered = {k for (k,) in s.query("SELECT key FROM outbox WHERE state='pending'")}
is_(len(undelivered), 4, "the backup holds b0's and b1's 4 events undelivered")

# 3. After the backup: more wins (c*), a0 given a die and rolling again, all
# delivered; the cache holds these balances (balance_read: cache).
make_wins(s, P, ["c0", "c1", "c2"])
s.ctl("grant", P, "a0", 2, "--reason", "drill", "--ticket", "T-DRILL-1")
r = s.api("POST", P, "draws", {"request_id": "req-a0-after"}, token=s.token("a0"))
is_(r.status, 200, "a0 rolls again after the backup")
is_(api_balance("a0"), 1, "a0 holds 1 die in the ledger that will be lost")
dispatch_until_done(s)
lost = s.query("SELECT id FROM draws WHERE id > ? ORDER BY id", last_draw)
lost_keys = {k for (k,) in s.query("SELECT key FROM outbox o JOIN draws d ON o.draw_id = d.id"
                                   " WHERE d.id > ?", last_draw)}
is_(s.scalar("SELECT count(*) FROM outbox WHERE state <> 'delivered'"), 0,
    "everything up to now is delivered")
before_restore = len(rv.requests())

# 4. The restore refuses while the service runs, then works with it stopped.
if BACKEND == "sqlite":
    r = s.ctl("restore", backup, check=False)
    ok(r.returncode == 2 and "in use" in r.stderr,
       "restore refuses while the service has the database open") or diag(r.stderr)
    is_(s.ledger_id(), old_id, "and changes nothing")
    s.stop_fcgi()
    gc.collect()  # the harness's read-only connections are closed when collected
    r = s.ctl("restore", backup, check=False)
    is_(r.returncode, 0, "restore with the service stopped") or diag(r.stderr)
    diag(r.stdout)
    ok("4 events wait for the dispatcher" in r.stdout, "restore says what waits for the dispatcher")
else:
    r = s.ctl("restore", backup, check=False)
    ok(r.returncode == 2 and "pg_restore" in r.stderr and "ledger renew-id" in r.stderr,
       "restore on PostgreSQL exits 2, naming pg_restore and ledger renew-id") or diag(r.stderr)
    is_(s.ledger_id(), old_id, "and changes nothing")
    s.stop_fcgi()
    r = subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--dbname=" + db,
                        backup], capture_output=True, text=True, timeout=120)
    is_(r.returncode, 0, "pg_restore --clean with the service stopped") or diag(r.stderr)
    r = s.ctl("ledger", "renew-id", check=False)
    ok(r.returncode == 0 and "was %s" % old_id in r.stdout, "ledger renew-id") or diag(r.stderr)
    s.ctl("init")
    is_(s.scalar("SELECT count(*) FROM outbox WHERE state = 'pending'"), 4,
        "4 events wait for the dispatcher")
new_id = s.ledger_id()
ok(new_id and new_id != old_id, "the restored ledger has a new id (%s, was %s)" % (new_id, old_id))
is_(balances(), at_backup, "the ledger is the backup's")
if BACKEND == "sqlite":
    kept = [f for f in os.listdir(s.dir) if f.startswith("luckydice.db.before-restore-")]
    is_(len(kept), 1, "the replaced database is kept beside it")
else:
    skip("the replaced database is kept beside it", "SQLite's file only")
is_(s.scalar("SELECT count(*) FROM outbox WHERE state='pending' AND lease_until <> 0"), 0,
    "no lease of the backup's time is left")
s.start_fcgi()

# 5. Redis still holds a0's balance from the lost future, under the old id.
ok(s.redis_cli("GET", "ld:b:%s:%s:a0" % (old_id, P)) != "", "Redis still has the lost future's a0")
is_(api_balance("a0"), at_backup["a0"], "the API shows a0's balance of the restored ledger, not the cached future")

# 6. New wins reuse the lost draw ids; then every event is dispatched.
make_wins(s, P, ["d0", "d1", "d2"])
new_draws = s.query("SELECT id FROM draws WHERE id > ? ORDER BY id", last_draw)
ok(set(new_draws) & set(lost), "the new wins reuse draw ids issued before the restore (%s)"
   % [i for (i,) in new_draws])
dispatch_until_done(s)
is_(s.scalar("SELECT count(*) FROM outbox WHERE state <> 'delivered'"), 0,
    "every event of the restored ledger is delivered")

reqs = rv.requests()
by_key = collections.defaultdict(set)
for q in reqs:
    by_key[q["headers"].get("idempotency-key")].add(q["body"])
is_([k for k, bodies in by_key.items() if len(bodies) > 1], [],
    "every Idempotency-Key the receiver saw names one event (one body)")
after = reqs[before_restore:]
new_keys = {q["headers"].get("idempotency-key") for q in after} - undelivered
before_keys = {q["headers"].get("idempotency-key") for q in reqs[:before_restore]}
is_(len(new_keys), 6, "the new wins sent 6 events")
is_(new_keys & before_keys, set(), "none of their keys was ever seen before the restore")
ok(all(new_id in k for k in new_keys), "each carries the new ledger id")
ok(lost_keys <= before_keys, "the lost wins' keys were delivered before the restore")
is_({q["headers"].get("idempotency-key") for q in after} & undelivered, undelivered,
    "the events the backup held undelivered were delivered after the restore")
dups = [q["headers"].get("idempotency-key") for q in after if q.get("duplicate") is True]
ok(set(dups) <= undelivered, "the only keys the receiver had processed already are those"
   " (delivered before the restore too, the same events: deduplicated)")

# 7. The balances, the cache, the support view and the export agree.
led = balances()
bad = {u: (api_balance(u), b) for u, b in led.items() if api_balance(u) != b}
is_(bad, {}, "every balance the API shows equals the ledger")
r = s.ctl("cache", "verify", P, check=False)
is_(r.returncode, 0, "cache verify is clean") or diag(r.stdout)
hist = json.loads(s.ctl("user", "show", P, "d0", "--json").stdout)
is_(sorted((e["kind"], e["state"]) for e in hist["events"]),
    [("notify.win", "delivered"), ("reward.issue", "delivered")], "user show finds d0's events by their draw")
hist = json.loads(s.ctl("user", "show", P, "b0", "--json").stdout)
is_(len(hist["events"]), 2, "and b0's, made before the restore")
csv = s.ctl("export", "winners", P).stdout.splitlines()
ok(len(csv) == 1 + len(s.query("SELECT id FROM draws WHERE prize IS NOT NULL")) and
   all(line.endswith(",delivered") for line in csv[1:]),
   "the export's delivery column says delivered for every win") or diag("\n".join(csv))
done()
