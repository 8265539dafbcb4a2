#!/usr/bin/env python3
# Crash test: a mixed load (visits, invite claims, draws) from several
# client threads while FastCGI workers and the writer (the process that
# serves the writes and commits them in groups) are killed with SIGKILL at
# random (LD_CRASH_SECONDS, 20 by default). Afterwards every answer the
# clients saw as 2xx is in the ledger, the invariants (docs/architecture.md)
# hold, every win has its one reward.issue event, the database is sound
# (SQLite's integrity check; on PostgreSQL amcheck, the sequences, no
# transaction left open), the supervisor replaced every dead worker
# promptly, and the service answers. The dispatcher runs over and over
# meanwhile and is killed at random too; afterwards every event reaches the
# receiver (a stand-in for the reward service).
import os, random, signal, subprocess, threading, time
from harness import BACKEND, BUILD, Stack, ok, is_, diag, done, promo, skip
from dispatchlib import FAST, Receiver, dispatch_until_done

SECONDS = float(os.environ.get("LD_CRASH_SECONDS", "20"))
WORKERS, THREADS, CAP, STOCK = 4, 6, 3, 40
P = "t-crash"
recv = Receiver("ok")
s = Stack(workers=WORKERS, extra_config={
    "reward_url": recv.url + "/reward", "notify_url": recv.url + "/notify", "dispatch": FAST},
          promos=[promo(
    P, invites={"max_credited_per_inviter": CAP, "invitee_new_within_hours": 24},
    prizes=[{"id": "coffee", "name": "coffee", "daily_stock": STOCK, "probability": 0.4},
            {"id": "cake", "name": "cake", "daily_stock": 5, "probability": 0.1}])])
recv.verify_with(os.path.join(s.dir, "signing.secret"))
supervisor = int(open(os.path.join(s.dir, "fcgi.pid")).read())


def children():
    """The supervisor's live children: {pid: name}."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            fields = st[st.rindex(")") + 2:].split()
            if int(fields[1]) == supervisor and fields[0] != "Z":
                kids[int(d)] = st[st.index("(") + 1:st.rindex(")")]
    return kids


def workers():
    return [p for p, name in children().items() if name not in ("ld-checkpoint", "ld-writer")]


def writers():
    return [p for p, name in children().items() if name == "ld-writer"]


POOL = WORKERS  # on the read socket; the writer serves the write socket itself
is_(len(workers()), POOL, "the supervisor runs %d workers" % POOL)
is_(len(writers()), 1, "and one writer")
inviters = s.tokens(*["inviter%d" % i for i in range(8)])
codes = {}
for i, t in enumerate(inviters):
    codes[s.api("GET", P, "invite", token=t).json["code"]] = "inviter%d" % i

stop = threading.Event()
lock = threading.Lock()
answers = {"visit": [], "claim": [], "draw": []}  # 2xx answers to check
counts = {"2xx": 0, "4xx": 0, "5xx": 0, "dropped": 0, "not_json": 0}


def call(method, ep, body, tok):
    try:
        r = s.api(method, P, ep, body, token=tok)
    except OSError:
        with lock:
            counts["dropped"] += 1
        return None
    with lock:
        counts["%dxx" % (r.status // 100) if r.status // 100 in (2, 4, 5) else "5xx"] += 1
        if not r.json or (r.status >= 400 and not r.json.get("error")):
            counts["not_json"] += 1
    return r


def client(t):
    rnd = random.Random(t)
    n = 0
    while not stop.is_set():
        n += 1
        uid = "c%d-%d" % (t, n)
        tok = s.token(uid)
        r = call("POST", "visit", None, tok)
        if r and r.status == 200:
            with lock:
                answers["visit"].append(uid)
        if rnd.random() < 0.6:
            code = rnd.choice(list(codes))
            r = call("POST", "invite/claim", {"code": code}, tok)
            if r and r.status == 200:
                with lock:
                    answers["claim"].append((uid, codes[code]))
        for k in range(3):
            rid = "rq-%d-%d-%d" % (t, n, k)
            for _ in range(3):  # a lost answer is retried with the same id
                r = call("POST", "draws", {"request_id": rid}, tok)
                if r is not None and r.status < 500:
                    break
            if r and r.status == 200:
                prize = r.json["draw"]["prize"]
                with lock:
                    answers["draw"].append((uid, rid, r.json["draw"]["id"],
                                            prize and prize["id"]))


dispatcher_kills = [0]


def dispatcher():
    """Runs luckydice-dispatch again and again, killing it now and then."""
    rnd = random.Random(2)
    while not stop.is_set():
        p = subprocess.Popen([os.path.join(BUILD, "luckydice-dispatch"), "--quiet"], env=s.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.02, 0.5))
        if p.poll() is None:
            p.kill()
            dispatcher_kills[0] += 1
        p.wait()


threads = [threading.Thread(target=client, args=(t,)) for t in range(THREADS)]
threads.append(threading.Thread(target=dispatcher))
for th in threads:
    th.start()
kills, writer_kills, replace_ms = 0, 0, []
rnd = random.Random(1)
t_end = time.monotonic() + SECONDS
while time.monotonic() < t_end:
    time.sleep(rnd.uniform(0.05, 0.4))
    # one kill in four is the writer's, in the middle of its group commits
    kind, want = (writers, 1) if rnd.random() < 0.25 else (workers, POOL)
    kids = kind()
    if not kids:
        continue
    victim = rnd.choice(kids)
    os.kill(victim, signal.SIGKILL)
    kills += 1
    writer_kills += kind is writers
    t0 = time.monotonic()
    while time.monotonic() - t0 < 5:
        kids = kind()
        if victim not in kids and len(kids) == want:
            break
        time.sleep(0.005)
    replace_ms.append((time.monotonic() - t0) * 1000)
stop.set()
for th in threads:
    th.join()

diag("%d kills in %.0f s; answers: %r; 2xx checked: %d visits, %d claims, %d draws"
     % (kills, SECONDS, counts, len(answers["visit"]), len(answers["claim"]), len(answers["draw"])))
diag("worker replaced within %.0f ms at most, %.1f ms median"
     % (max(replace_ms or [0]), sorted(replace_ms or [0])[len(replace_ms) // 2]))
ok(kills >= SECONDS, "workers and the writer were killed %d times" % kills)
ok(writer_kills >= SECONDS / 10, "the writer was killed %d times" % writer_kills)
ok(replace_ms and max(replace_ms) < 1000, "the supervisor replaced each dead process within 1 s")
ok(counts["2xx"] > 100, "the load went on through the kills (%d answers 2xx)" % counts["2xx"])
is_(counts["not_json"], 0, "every answer, also from a killed worker, was JSON")

# Every 2xx the clients saw is in the ledger.
visits = set(r[0] for r in s.query("SELECT uid FROM grants WHERE promo=? AND reason='visit'", P))
is_([u for u in answers["visit"] if u not in visits], [], "every visit answered 200 has its visit grant")
invites = dict(s.query("SELECT invitee, inviter FROM invites WHERE promo=?", P))
is_([c for c in answers["claim"] if invites.get(c[0]) != c[1]], [],
    "every claim answered 200 has its invites row with the right inviter")
draws = {(u, q): (i, z) for u, q, i, z in
         s.query("SELECT uid, request_id, id, prize FROM draws WHERE promo=?", P)}
is_([d for d in answers["draw"] if draws.get((d[0], d[1])) != (d[2], d[3])], [],
    "every draw answered 200 is in the ledger with the same id and prize")


def none(sql, desc):
    rows = s.query(sql, *([P] * sql.count("?")))
    is_(rows[:5], [], desc)


none("SELECT uid FROM grants WHERE promo=? AND reason='visit' GROUP BY uid HAVING count(*) > 1",
     "invariant 1: one visit grant per user")
none("SELECT uid FROM grants WHERE promo=? AND reason='invitee' GROUP BY uid HAVING count(*) > 1",
     "invariant 2: one invitee credit per invitee")
none("SELECT ref FROM grants WHERE promo=? AND reason='inviter' GROUP BY ref HAVING count(*) > 1",
     "invariant 2: one inviter grant per invitee")
none("SELECT uid FROM grants WHERE promo=? AND reason='inviter' GROUP BY uid HAVING count(*) > %d" % CAP,
     "invariant 2: no inviter has more grants than the cap")
none("SELECT invitee FROM invites WHERE promo=? AND invitee = inviter", "invariant 2: no self-invite")
none("SELECT i.invitee FROM invites i WHERE i.promo=? AND NOT EXISTS (SELECT 1 FROM grants g"
     " WHERE g.promo=i.promo AND g.uid=i.invitee AND g.reason='invitee')",
     "invariant 2: every invites row has its invitee grant")
none("SELECT i.invitee FROM invites i WHERE i.promo=? AND i.inviter_granted <> (SELECT count(*)"
     " FROM grants g WHERE g.promo=i.promo AND g.ref=i.invitee AND g.reason='inviter')",
     "invariant 2: inviter_granted matches the inviter grants")
none("SELECT b.uid FROM balances b WHERE b.promo=? AND b.invites_credited <> (SELECT count(*)"
     " FROM invites i WHERE i.promo=b.promo AND i.inviter=b.uid AND i.inviter_granted=1)",
     "invariant 2: each inviter's counter equals their invites that granted")
none("SELECT uid FROM balances b WHERE promo=? AND (spent < 0 OR granted < spent OR granted <>"
     " (SELECT coalesce(sum(amount), 0) FROM grants g WHERE g.promo=b.promo AND g.uid=b.uid))",
     "invariant 3: granted = sum of grants >= spent >= 0")
none("SELECT uid FROM balances b WHERE promo=? AND spent <> (SELECT count(*) FROM draws d"
     " WHERE d.promo=b.promo AND d.uid=b.uid)", "invariant 3: draws = dice spent, per user")
none("SELECT day, prize, count(*) FROM draws WHERE promo=? AND prize IS NOT NULL GROUP BY day, prize"
     " HAVING count(*) > CASE prize WHEN 'coffee' THEN %d ELSE 5 END" % STOCK,
     "invariant 4: wins per day and prize within the stock")
none("SELECT s.day, s.prize FROM stock s WHERE s.promo=? AND s.taken <> (SELECT count(*) FROM draws d"
     " WHERE d.promo=s.promo AND d.day=s.day AND d.prize=s.prize)", "invariant 4: stock taken = wins")
none("SELECT d.id FROM draws d WHERE d.promo=? AND d.prize IS NOT NULL AND (SELECT count(*) FROM outbox o"
     " WHERE o.kind='reward.issue' AND o.draw_id = d.id) <> 1",
     "every win has exactly one reward.issue event")
none("SELECT o.key FROM outbox o WHERE o.promo=? AND o.kind='reward.issue' AND NOT EXISTS (SELECT 1"
     " FROM draws d WHERE o.draw_id = d.id AND d.prize IS NOT NULL)",
     "no reward.issue without a win")
if BACKEND == "sqlite":
    is_(s.scalar("PRAGMA integrity_check"), "ok", "the database passes its integrity check")
else:
    # PostgreSQL: no killed process left a transaction open on the server;
    # every id sequence is past its table's ids (no id is handed out
    # twice); the B-tree indexes (the unique ones are the last line against
    # a duplicate grant) hold every row of their tables (amcheck).
    is_(s.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                 " AND state LIKE 'idle in transaction%'"), 0,
        "no transaction was left open by a killed process")
    behind = [t for t in ("grants", "draws", "outbox", "claim_refusals")
              if s.scalar("SELECT coalesce(max(id), 0) > coalesce(pg_sequence_last_value("
                          "pg_get_serial_sequence(?, 'id')), 0) FROM %s" % t, t)]
    is_(behind, [], "every id sequence is past its table's ids")
    try:
        s.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        has_amcheck = True
    except RuntimeError as e:
        has_amcheck = False
        skip("the B-tree indexes pass amcheck", "no amcheck extension here: %s" % str(e)[-120:])
    if has_amcheck:
        n = s.scalar("SELECT count(bt_index_check(c.oid, true)) FROM pg_index i"
                     " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
                     " JOIN pg_namespace ns ON ns.oid = c.relnamespace"
                     " WHERE a.amname = 'btree' AND ns.nspname = 'public'")
        nu = s.scalar("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                      " JOIN pg_namespace ns ON ns.oid = c.relnamespace"
                      " WHERE i.indisunique AND ns.nspname = 'public'")
        ok(n and nu and n >= nu, "the %d B-tree indexes (%d unique) hold every row of their"
           " tables and are well formed (amcheck bt_index_check)" % (n or 0, nu or 0))

diag("dispatcher killed %d times" % dispatcher_kills[0])
ok(dispatcher_kills[0] > 0, "the dispatcher was killed mid-run %d times" % dispatcher_kills[0])
dispatch_until_done(s, limit=60)
is_(s.scalar("SELECT count(*) FROM outbox WHERE state <> 'delivered'"), 0,
    "after the kills a dispatcher run delivers every event")
seen = set(recv.keys())
is_(seen ^ set(k for (k,) in s.query("SELECT key FROM outbox")), set(),
    "the receiver saw exactly the outbox's events (%d), each key at least once" % len(seen))
is_([q["verified"] for q in recv.requests() if q["verified"] is not True], [],
    "every request it got was signed, within the tolerance")

is_(len(workers()), POOL, "all %d workers are running after the kills" % POOL)
is_(len(writers()), 1, "and the writer")
is_(s.request("GET", "/healthz").status, 200, "the service answers healthz")
r = s.api("POST", P, "visit", token=s.token("after-the-storm"))
is_((r.status, r.json and r.json.get("granted")), (200, True), "and grants a fresh visit")
done()
