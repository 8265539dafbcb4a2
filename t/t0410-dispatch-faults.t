#!/usr/bin/env python3
# How luckydice-dispatch answers each way a service fails: 400 -> dead
# (listed, retried by the operator), 429 + Retry-After, a hang past the
# timeout, a dropped connection, succeed-then-drop, a refused connection,
# max_attempts -> dead; a revoked event is never sent.
import json, os, time
from harness import ok, is_, done, diag
from dispatchlib import Receiver, stack_for, make_wins, dispatch, dispatch_until_done

P = "t-fault"
rv = Receiver()
s = stack_for(rv, P, dispatch={"max_attempts": 3})


def state(key):
    return s.query("SELECT state, attempts, last_status, last_error, next_at FROM outbox"
                   " WHERE key = ?", key)[0]


def key(n, what="reward"):
    return s.event_key(P, n, what)


# 400: dead at once, with the status and the answer kept.
make_wins(s, P, ["a1", "a2"])
rv.mode("fail400")
r = dispatch(s)
is_(r.returncode, 1, "a run with refused events exits 1")
ok("dead 4," in r.stdout, "the summary counts 4 dead") or diag(r.stdout)
st = state(key(1))
is_(st[:3], ("dead", 1, 400), "a 400 makes the event dead after one attempt")
ok("bad_coupon" in st[3] and st[3].startswith("HTTP 400: "), "the answer is kept as the reason")
r = s.ctl("outbox", "list", "--dead")
lines = r.stdout.splitlines()
is_(len(lines), 5, "outbox list --dead shows a header and the 4 dead events")
ok(all("dead" in l and "HTTP 400" in l and "bad_coupon" in l for l in lines[1:]),
   "each with its status and reason") or diag(r.stdout)
ok("a1" in r.stdout and P in r.stdout and "reward.issue" in r.stdout and "notify.win" in r.stdout,
   "naming user, promotion and event kind")
is_(len(s.ctl("outbox", "list").stdout.splitlines()), 5, "outbox list (open rows) shows them too")
r = s.ctl("outbox", "list", "--dead", "--limit", "2")
is_([l.split()[0] for l in r.stdout.splitlines()[1:]], [l.split()[0] for l in lines[1:3]],
    "--limit 2 shows the first two, in id order")
ok("there are more" in r.stderr, "and says there are more") or diag(r.stderr)
r = s.ctl("outbox", "list", "--dead", "--limit", "4")
ok(len(r.stdout.splitlines()) == 5 and "4 events" in r.stderr and "more" not in r.stderr,
   "a limit of exactly as many says no more") or diag(r.stderr)
is_(len(s.ctl("outbox", "list", "--limit", "0").stdout.splitlines()), 5, "--limit 0 lists all")
r = s.ctl("outbox", "list", "--limit", "-1", check=False)
ok(r.returncode != 0 and "--limit" in r.stderr, "a bad --limit is refused, naming it") or diag(r.stderr)

rv.mode("ok")
n0 = len(rv.requests())
r = dispatch(s)
is_((r.returncode, len(rv.requests())), (0, n0), "dead events are not sent again by themselves")
dead_id = s.scalar("SELECT id FROM outbox WHERE key = ?", key(1))
r = s.ctl("outbox", "retry", dead_id)
is_(r.stdout.strip(), "1 event pending again", "outbox retry ID puts it back")
r = dispatch(s)
ok(r.returncode == 0 and "delivered 1," in r.stdout, "the next run delivers it") or diag(r.stdout)
is_(state(key(1))[0], "delivered", "it is delivered")
is_(rv.keys({"ok"}), [key(1)], "the receiver got it with its key")
r = s.ctl("outbox", "retry", "--all-dead")
is_(r.stdout.strip(), "3 events pending again", "outbox retry --all-dead puts back the rest")
dispatch(s)
is_(s.scalar("SELECT count(*) FROM outbox WHERE state <> 'delivered'"), 0, "all are delivered")
r = s.ctl("outbox", "retry", dead_id, check=False)
ok(r.returncode == 1 and "not dead" in r.stderr, "retrying a delivered event exits 1, says why")
r = s.ctl("outbox", "retry", 99999, check=False)
ok(r.returncode == 2 and "no outbox event 99999" in r.stderr, "retrying an unknown id exits 2")
r = s.ctl("outbox", "retry", "x1", check=False)
is_(r.returncode, 2, "a malformed id exits 2")

# 429 with a Retry-After longer than the backoff cap: honoured.
make_wins(s, P, ["b1"])
rv.mode("429", retry_after=4)
t0 = time.time()
r = dispatch(s)
is_(r.returncode, 1, "a 429 run exits 1")
st = state(key(3))
is_(st[:3], ("pending", 1, 429), "a 429 is retried")
ok(st[4] >= t0 * 1000 + 4000, "next try is at least Retry-After (4 s) away, past the 2 s cap") \
    or diag("next_at - t0 = %d ms" % (st[4] - t0 * 1000))
rv.mode("ok")
r = dispatch(s)
is_(len(rv.keys({"ok"})), 4, "a run before Retry-After has passed sends nothing")
time.sleep(max(0, st[4] / 1000 - time.time()) + 0.1)
r = dispatch(s)
ok(r.returncode == 0 and "delivered 2," in r.stdout, "after Retry-After both are delivered") \
    or diag(r.stdout)

# A hang past the timeout: retried with the same key, and the run does not wait.
make_wins(s, P, ["c1"])
rv.mode("hang", delay=3)
t0 = time.time()
r = dispatch(s)
took = time.time() - t0
ok(r.returncode == 1 and "retried 2," in r.stdout, "a hang is retried") or diag(r.stdout)
ok(took < 2.5, "the run gave up after the 500 ms timeout (%.2f s)" % took)
ok("timed out" in state(key(4))[3].lower(), "the timeout is the recorded reason") \
    or diag(state(key(4)))

# A connection dropped mid-answer, then succeed-then-drop: both retried.
rv.mode("drop")
time.sleep(2.1)
r = dispatch(s)
ok(r.returncode == 1 and "retried 2," in r.stdout, "a connection dropped mid-answer is retried") \
    or diag(r.stdout + r.stderr)
rv.mode("okdrop")
time.sleep(2.1)
r = dispatch(s)
ok(r.returncode == 1 and "dead 2," in r.stdout,
   "succeed-then-drop on the last allowed attempt (3): dead") or diag(r.stdout)
is_(state(key(4))[:2], ("dead", 3), "max_attempts reached: dead with 3 attempts")
ok(state(key(4))[3].startswith("gave up after 3 attempts: "), "the reason says it gave up")
seen = [k for k in rv.keys() if k == key(4)]
is_(len(seen), 3, "the receiver saw the same key on each of the 3 attempts")
rv.mode("ok")
s.ctl("outbox", "retry", "--all-dead")
dispatch(s)
is_(state(key(4))[0], "delivered", "retried by the operator, it is delivered")

# A refused connection is retried.
make_wins(s, P, ["d1"])
cfg = json.load(open(s.config))
cfg["reward_url"] = "http://127.0.0.1:9/reward"
alt = os.path.join(s.dir, "refused.json")
json.dump(cfg, open(alt, "w"))
r = dispatch(s, env=dict(s.env, LUCKYDICE_CONFIG=alt))
ok(r.returncode == 1 and state(key(5))[:2] == ("pending", 1), "a refused connection is retried") \
    or diag(r.stdout + repr(state(key(5))))
ok(state(key(5))[3] is not None and state(key(5))[2] is None, "with the reason and no status")
dispatch_until_done(s)
is_(state(key(5))[0], "delivered", "and delivered once the service is reachable")

# A revoked event (support tooling) is never sent.
make_wins(s, P, ["e1"])
s.execute("UPDATE outbox SET state = 'revoked' WHERE key = ?", key(6))
dispatch(s)
ok(key(6) not in rv.keys(), "a revoked event is never sent")
is_(state(key(6))[:2], ("revoked", 0), "and stays revoked")
is_(state(key(6, "notify"))[0], "delivered", "its sibling notification is delivered")
done()
