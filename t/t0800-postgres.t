#!/usr/bin/env python3
# PostgreSQL only (LD_TEST_DB=pg): what a server database adds to the
# ways the ledger can fail, and races that go through many connections.
# - The server restarted under load: while it is down the writes answer
#   503 with Retry-After; nothing acknowledged is lost; the service
#   recovers by itself, without restarting luckydice.
# - The writer's connection killed in the middle of a transaction: that
#   request answers 503, later ones succeed, nothing is half-written.
# - A lock held past busy_timeout_ms (the statement timeout): 503 with
#   Retry-After, nothing half-written, and the same request succeeds
#   once the lock is gone.
# - Two dispatchers at once on one ledger: every event delivered, each
#   key answered 200 once.
# - Races, through the writer and through write workers (each with a
#   connection of its own): 50 parallel first visits of one user give one
#   grant; one draw request_id sent 20 times at once gives one draw and
#   spends one dice; parallel claims of one inviter's code stop at the
#   inviter's cap exactly.
import concurrent.futures, os, re, subprocess, threading, time
from collections import Counter
from harness import BACKEND, BUILD, SRC, Stack, ok, is_, diag, done, promo, pg_cluster
from dispatchlib import FAST, Receiver, make_wins

if BACKEND != "pg":
    print("1..0 # SKIP PostgreSQL only (LD_TEST_DB=pg)")
    raise SystemExit(0)

P = "t-pg"
PRIZES = [{"id": "gift", "name": "gift", "daily_stock": 100000, "probability": 0.05}]
CAP = 5


def parallel(n, call):
    """call(i) for i in 0..n-1, all started together: their results."""
    start = threading.Barrier(n)

    def run(i):
        start.wait()
        return call(i)
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        return list(ex.map(run, range(n)))


def invariants(s, desc):
    """Nothing half-written: each balance is the sum of its grants and
    spent is its count of draws; every win has its reward event."""
    bad = s.query("SELECT uid FROM balances b WHERE promo=? AND (granted <> (SELECT"
                  " coalesce(sum(amount), 0) FROM grants g WHERE g.promo=b.promo AND g.uid=b.uid)"
                  " OR spent <> (SELECT count(*) FROM draws d WHERE d.promo=b.promo AND"
                  " d.uid=b.uid))", P)
    bad += s.query("SELECT CAST(d.id AS TEXT) FROM draws d WHERE d.promo=? AND d.prize IS NOT NULL"
                   " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.draw_id = d.id"
                   " AND o.kind = 'reward.issue')", P)
    is_(bad[:5], [], desc)


def busy_answer(r):
    return (r.status == 503 and r.headers.get("Retry-After") == "1" and r.json is not None
            and r.json.get("error") == "unavailable")


def children(s):
    sup = open(os.path.join(s.dir, "fcgi.pid")).read().strip()
    return sorted(subprocess.run(["pgrep", "-P", sup], capture_output=True,
                                 text=True).stdout.split())


# ---- races, through the writer and through write workers ---------------

def races(s, how):
    # 50 first visits of one user at once: one grant.
    tok = s.token("racer")
    rs = parallel(50, lambda i: s.api("POST", P, "visit", token=tok))
    is_(Counter(r.status for r in rs), Counter({200: 50}), "%s: 50 parallel first visits answer 200" % how)
    is_(sum(1 for r in rs if r.json["granted"]), 1, "%s: exactly one says granted" % how)
    is_(s.query("SELECT count(*), sum(amount) FROM grants WHERE promo=? AND uid='racer'", P),
        [(1, 1)], "%s: one visit grant in the ledger" % how)

    # One draw request_id 20 times at once: one draw, one dice spent.
    s.ctl("grant", P, "racer", 2, "--reason", "race test", "--ticket", "RACE-" + how.replace(" ", "-"))
    rs = parallel(20, lambda i: s.api("POST", P, "draws", {"request_id": "same-request-1"}, token=tok))
    is_(Counter(r.status for r in rs), Counter({200: 20}), "%s: 20 parallel draws of one request_id answer 200" % how) \
        or diag([r for r in rs if r.status != 200][:3])
    ids = {r.json["draw"]["id"] for r in rs if r.status == 200}
    is_(len(ids), 1, "%s: all with the same draw" % how)
    is_(s.query("SELECT count(*) FROM draws WHERE promo=? AND uid='racer'", P), [(1,)],
        "%s: one draw in the ledger" % how)
    is_(s.query("SELECT granted, spent FROM balances WHERE promo=? AND uid='racer'", P), [(3, 1)],
        "%s: one dice spent of 3" % how)

    # Claims of one inviter's code at once: the cap holds exactly.
    inviter = "inviter-" + how.replace(" ", "-")
    code = s.api("GET", P, "invite", token=s.token(inviter)).json["code"]
    toks = s.tokens(*["inv-%s-%02d" % (how.replace(" ", "-"), i) for i in range(20)])
    rs = parallel(20, lambda i: s.api("POST", P, "invite/claim", {"code": code}, token=toks[i]))
    is_(Counter(r.status for r in rs), Counter({200: 20}), "%s: 20 parallel claims answer 200" % how) \
        or diag([r for r in rs if r.status != 200][:3])
    is_(s.query("SELECT count(*) FROM grants WHERE promo=? AND uid=? AND reason='inviter'", P, inviter),
        [(CAP,)], "%s: the inviter got exactly the cap (%d) of grants" % (how, CAP))
    is_(s.query("SELECT granted, invites_credited FROM balances WHERE promo=? AND uid=?", P, inviter),
        [(CAP, CAP)], "%s: and a balance and counter of %d" % (how, CAP))
    is_(s.query("SELECT count(*), sum(inviter_granted) FROM invites WHERE promo=? AND inviter=?",
                P, inviter), [(20, CAP)], "%s: every invitee is credited, %d of them for the inviter" % (how, CAP))
    # The same invitee claiming twice at once: credited once.
    dup = s.token("dup-" + how.replace(" ", "-"))
    code2 = s.api("GET", P, "invite", token=s.token(inviter + "-2")).json["code"]
    rs = parallel(10, lambda i: s.api("POST", P, "invite/claim", {"code": code2}, token=dup))
    is_(sorted(Counter(r.status for r in rs).items()), [(200, 1), (409, 9)],
        "%s: one invitee's 10 parallel claims: one credit, 9 already_credited" % how) \
        or diag([r for r in rs if r.status not in (200, 409)][:3])
    invariants(s, "%s: every balance is its grants and draws" % how)


definition = promo(P, prizes=PRIZES,
                   invites={"max_credited_per_inviter": CAP, "invitee_new_within_hours": 24})
ww = Stack(workers=2, promos=[definition], extra_config={"write_workers": 4})
races(ww, "write workers")
ww.stop()

# ---- the server restarted, a connection killed, a statement timeout ----
# A cluster of this test's own: the others share theirs.
cluster = pg_cluster()
rv = Receiver("slow", delay=0.05)
W = "t-pg-win"  # every draw wins: events for the dispatchers
s = Stack(workers=2, pg_host=cluster, promos=[definition, promo(W, prizes=[
    {"id": "gift", "name": "gift", "daily_stock": 1000, "probability": 1}])],
          extra_config={"reward_url": rv.url + "/reward", "notify_url": rv.url + "/notify",
                        "dispatch": FAST, "busy_timeout_ms": 1000})
races(s, "the writer")

sup_children = children(s)
stop = threading.Event()
log = []  # (kind, uid, request_id, status, answer)
lock = threading.Lock()


THREADS, USERS = 3, 600
load_toks = s.tokens(*["load-%d-%d" % (t, i) for t in range(THREADS) for i in range(USERS)])


def client(t):
    for i in range(USERS):
        if stop.is_set():
            break
        uid, tok = "load-%d-%d" % (t, i), load_toks[t * USERS + i]
        for kind, ep, body in (("visit", "visit", None),
                               ("draw", "draws", {"request_id": "load-req-%d-%d" % (t, i)})):
            try:
                r = s.api("POST", P, ep, body, token=tok)
                entry = (kind, uid, body and body["request_id"], r.status, r)
            except OSError as e:
                entry = (kind, uid, body and body["request_id"], 0, e)
            with lock:
                log.append(entry)
            if entry[3] != 200:
                time.sleep(0.05)  # as a client would, briefly


threads = [threading.Thread(target=client, args=(t,)) for t in range(THREADS)]
for th in threads:
    th.start()
time.sleep(1.5)
r = subprocess.run([os.path.join(SRC, "script", "pgcluster"), "stop", cluster],
                   capture_output=True, text=True, timeout=60)
ok(r.returncode == 0, "the server stops (fast: in-flight transactions are cut)") or diag(r.stderr)
down_at = len(log)
time.sleep(2.0)
with lock:
    during = [e for e in log[down_at:]]
r = subprocess.run([os.path.join(SRC, "script", "pgcluster"), "start", cluster],
                   capture_output=True, text=True, timeout=120)
ok(r.returncode == 0, "and starts again") or diag(r.stderr)
up = time.monotonic()
recovered = None
while time.monotonic() - up < 20:
    with lock:
        tail = log[-6:]
    if len(tail) == 6 and all(e[3] == 200 for e in tail):
        recovered = time.monotonic() - up
        break
    time.sleep(0.1)
time.sleep(1.0)
stop.set()
for th in threads:
    th.join()

statuses = Counter(e[3] for e in log)
diag("%d writes; statuses %s; %d while the server was down" % (len(log), dict(statuses), len(during)))
# (a 200 in that window was answered before the server went away)
n503 = sum(1 for e in during if e[3] == 503)
ok(n503 > 0 and all(busy_answer(e[4]) for e in during if e[3] != 200),
   "while the server was down the writes answered 503 with Retry-After and JSON (%d)" % n503) \
    or diag([e[4] for e in during if not busy_answer(e[4])][:3])
visit_ok = {e[1] for e in log if e[0] == "visit" and e[3] == 200}
is_([e[4] for e in log if e[3] not in (200, 503) and not
     (e[0] == "draw" and e[3] == 409 and e[1] not in visit_ok)][:3], [],
    "no answer but 200 and 503 (and a draw's 409 after its visit's 503): no 500, none dropped")
ok(recovered is not None, "the service recovered by itself (%.1f s after the server was back)"
   % (recovered or -1))
is_(children(s), sup_children, "without restarting luckydice (the same processes)")
acked_visits = {e[1] for e in log if e[0] == "visit" and e[3] == 200}
acked_draws = {(e[1], e[2], e[4].json["draw"]["id"]) for e in log if e[0] == "draw" and e[3] == 200}
in_ledger_visits = {u for (u,) in s.query("SELECT uid FROM grants WHERE promo=? AND reason='visit'", P)}
in_ledger_draws = set(map(tuple, s.query("SELECT uid, request_id, id FROM draws WHERE promo=?", P)))
is_(sorted(acked_visits - in_ledger_visits), [], "every visit answered 200 is in the ledger (%d)" % len(acked_visits))
is_(sorted(acked_draws - in_ledger_draws), [], "every draw answered 200 is in the ledger (%d)" % len(acked_draws))
# A write answered 503 may or may not have committed (the answer was
# lost with the server): sent again, it counts once.
again = [e for e in log if e[3] != 200]
toks = dict(zip([e[1] for e in again], s.tokens(*[e[1] for e in again]))) if again else {}
rs = [s.api("POST", P, "visit" if e[0] == "visit" else "draws",
            None if e[0] == "visit" else {"request_id": e[2]}, token=toks[e[1]]) for e in again]
ok(all(r.status in (200, 409) for r in rs), "the %d writes answered 503, sent again, answer" % len(rs))
invariants(s, "nothing half-written: every balance is its grants and draws")

# The writer's connection killed in the middle of a transaction: its
# draw waits on a row another connection holds; then its backend is
# terminated.
victim = s.token("victim")
s.api("POST", P, "visit", token=victim)
before = s.dump()
answers = {}
with s.pg_holding("SELECT * FROM balances WHERE promo = '%s' AND uid = 'victim' FOR UPDATE" % P):
    th = threading.Thread(target=lambda: answers.update(
        draw=s.api("POST", P, "draws", {"request_id": "killed-1"}, token=victim)))
    th.start()
    pid = None
    for _ in range(100):
        pid = s.scalar("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                       " AND application_name = 'luckydice' AND wait_event_type = 'Lock'")
        if pid:
            break
        time.sleep(0.02)
    ok(pid, "the writer's backend waits on the row, in a transaction")
    killed = s.scalar("SELECT pg_terminate_backend(?)", pid) if pid else False
    th.join(30)
ok(killed, "pg_terminate_backend(%s)" % pid)
ok(busy_answer(answers.get("draw")), "that draw answers 503 with Retry-After") or diag(answers)
is_(s.dump(), before, "nothing of it was written")
r = s.api("POST", P, "draws", {"request_id": "killed-1"}, token=victim)
is_((r.status, r.json and r.json["balance"]), (200, 0), "the same draw sent again succeeds")
r = s.api("POST", P, "visit", token=s.token("after-kill"))
is_((r.status, r.json), (200, {"granted": True, "balance": 1}), "and so do later writes")

# A lock held past busy_timeout_ms: the statement timeout cancels the
# waiting statement; others go on.
slow = s.token("slow")
s.api("POST", P, "visit", token=slow)
before = s.dump()
with s.pg_holding("SELECT * FROM balances WHERE promo = '%s' AND uid = 'slow' FOR UPDATE" % P):
    t0 = time.monotonic()
    r = s.api("POST", P, "draws", {"request_id": "timed-out-1"}, token=slow)
    took = time.monotonic() - t0
    other = s.api("POST", P, "visit", token=s.token("not-held"))
    ok(busy_answer(r), "a draw behind a lock held past busy_timeout_ms answers 503 with Retry-After") \
        or diag(repr(r))
    ok(0.9 <= took < 5, "after the statement timeout (1 s), not a hang (%.1f s)" % took)
    is_(other.status, 200, "a write that needs no held row goes on meanwhile")
is_([l for l in s.dump().splitlines() if "not-held" not in l], before.splitlines(),
    "nothing of the timed-out draw was written")
r = s.api("POST", P, "draws", {"request_id": "timed-out-1"}, token=slow)
is_((r.status, r.json and r.json["balance"]), (200, 0), "once the lock is gone the same draw succeeds")
log_text = open(os.path.join(s.dir, "log", "fcgi.log"), errors="replace").read()
ok("statement timeout" in log_text, "the log says the statement timed out")
ok(not re.search(r"password|postgresql:", log_text), "and never shows the connection string")

# Two dispatchers at once on one ledger: each event delivered, each key
# answered 200 once.
make_wins(s, W, ["w%02d" % i for i in range(40)])
pending = {k for (k,) in s.query("SELECT key FROM outbox WHERE state = 'pending'")}
n0 = len(rv.requests())
procs = [subprocess.Popen([os.path.join(BUILD, "luckydice-dispatch"), "--batch", "8"], env=s.env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
         for _ in range(2)]
outs = [p.communicate(timeout=120) for p in procs]
is_([p.returncode for p in procs], [0, 0], "two dispatchers at once both exit 0") or diag(outs)
shares = [int(m.group(1)) if m else -1 for m in
          (re.match(r"dispatch: delivered (\d+),", o) for o, _ in outs)]
ok(all(n > 0 for n in shares), "both delivered (%d + %d)" % tuple(shares))
is_(s.scalar("SELECT count(*) FROM outbox WHERE state <> 'delivered'"), 0, "every event is delivered")
got = Counter(q["headers"]["idempotency-key"] for q in rv.requests()[n0:])
ok(pending <= set(got), "the receiver got all %d events that were pending" % len(pending))
is_(sorted(k for k, n in got.items() if n != 1), [], "each key exactly once")
done()
