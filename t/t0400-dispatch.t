#!/usr/bin/env python3
# luckydice-dispatch delivers every won prize and notification to a real
# HTTP receiver: signed, with a stable Idempotency-Key, through a phase of
# 500s; --dry-run changes nothing; an overlapping run exits 0 at once (on
# PostgreSQL, where runs may overlap, it skips the rows another holds,
# and two runs at once deliver each event once). The
# signature covers the time, the key and the body, so a captured request
# replayed under a new key or late is refused by a receiver checking as
# docs/examples/verify-signature.py does; the dispatcher signs only with a
# secret of its own, and sends over plain http only to loopback.
import fcntl, hashlib, hmac, json, os, re, shutil, subprocess, sys, time
from harness import BACKEND, BUILD, ok, is_, done, diag, SRC
from dispatchlib import (Receiver, stack_for, make_wins, dispatch, dispatch_until_done,
                         signing_key, signed_ok, example)

P = "t-disp"
rv = Receiver()
s = stack_for(rv, P)
uids = ["u%02d" % i for i in range(12)]
toks = make_wins(s, P, uids)
# Two invites credited: a notify.invite to the inviter each time.
code = s.api("GET", P, "invite", token=toks[0]).json["code"]
for u in ("new1", "new2"):
    r = s.api("POST", P, "invite/claim", {"code": code}, token=s.token(u))
    is_(r.status, 200, "invitee %s is credited" % u)

rows = s.query("SELECT key, kind, payload FROM outbox ORDER BY id")
kinds = sorted(k for _, k, _ in rows)
is_(kinds.count("reward.issue"), 12, "12 wins wrote 12 reward.issue events")
is_(kinds.count("notify.win"), 12, "and 12 notify.win events")
is_(kinds.count("notify.invite"), 2, "2 invite credits wrote 2 notify.invite events")
keys = {k for k, _, _ in rows}
payload = {k: p for k, _, p in rows}

# --dry-run lists what it would send and changes nothing.
before = s.dump(("outbox",))
r = dispatch(s, "--dry-run")
is_(r.returncode, 0, "--dry-run exits 0")
is_(sum(1 for l in r.stdout.splitlines() if l.startswith("would send ")), 26,
    "--dry-run lists the 26 due events")
is_(s.dump(("outbox",)), before, "--dry-run changes no outbox row")
is_(rv.requests(), [], "--dry-run sends nothing")

if BACKEND == "sqlite":
    # An overlapping run (the lock is held) exits 0 at once and sends nothing.
    lock = open(os.path.join(s.dir, "luckydice.db.dispatch.lock"), "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    t0 = time.time()
    r = dispatch(s)
    is_((r.returncode, r.stdout.strip()), (0, "dispatch: another dispatcher is running"),
        "a run while another holds the lock says so and exits 0")
    ok(time.time() - t0 < 2, "it exits at once")
    is_(rv.requests(), [], "it sends nothing")
    lock.close()
else:
    # On PostgreSQL runs overlap (dispatchers on many hosts), with no lock:
    # a run skips the rows another is claiming. Another connection holds
    # every row (FOR UPDATE): the run takes none, without waiting.
    with s.pg_holding("SELECT id FROM outbox FOR UPDATE"):
        t0 = time.time()
        r = dispatch(s)
        took = time.time() - t0
    ok(r.returncode == 0 and r.stdout.startswith("dispatch: delivered 0, retried 0, dead 0,"),
       "a run while another connection holds every row claims none and exits 0") or diag(r.stdout)
    ok(took < 2, "it does not wait for them (%.1f s)" % took)
    is_(rv.requests(), [], "it sends nothing")
    is_(s.scalar("SELECT count(*) FROM outbox WHERE attempts > 0 OR lease_until > 0"), 0,
        "and leases nothing")

# A phase of 500s: every event is retried, none is lost.
rv.mode("fail500")
t0 = time.time()
r = dispatch(s)
is_(r.returncode, 1, "a run where the service answers 500 exits 1")
ok(r.stdout.startswith("dispatch: delivered 0, retried 26, dead 0, still due "),
   "its summary counts 26 retried") or diag(r.stdout)
st = s.query("SELECT state, attempts, last_status, last_error, next_at FROM outbox")
ok(all(x[:3] == ("pending", 1, 500) for x in st), "all rows stay pending with attempt 1 and status 500")
ok(all(x[3].startswith("HTTP 500: ") for x in st), "the 500 is kept in last_error")
ok(all(t0 * 1000 - 1000 <= x[4] <= time.time() * 1000 + 2000 for x in st),
   "next tries are within the backoff cap (2 s)")

rv.mode("ok")
if BACKEND == "pg":
    # Two runs at once once the backoff is over: each event goes once.
    time.sleep(max(0, max(x[4] for x in st) / 1000 - time.time()) + 0.1)
    procs = [subprocess.Popen([os.path.join(BUILD, "luckydice-dispatch"), "--batch", "4"], env=s.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [pr.communicate(timeout=60)[0] for pr in procs]
    is_([pr.returncode for pr in procs], [0, 0], "two runs at once both exit 0")
    got = [int(re.match(r"dispatch: delivered (\d+),", o).group(1)) for o in outs]
    is_(sum(got), 26, "and deliver the 26 events between them (%d + %d)" % tuple(got))
r = dispatch_until_done(s)
is_(r.returncode, 0, "once the service is back a run exits 0")
ok(r.stdout.startswith("dispatch: delivered ") and "dead 0, still due 0" in r.stdout,
   "its summary says nothing is still due") or diag(r.stdout)
is_(s.query("SELECT state, count(*) FROM outbox GROUP BY state"), [("delivered", 26)],
    "every event is delivered")

reqs = rv.requests()
oks = [q for q in reqs if q["mode"] == "ok"]
is_({q["headers"]["idempotency-key"] for q in reqs}, keys,
    "the set of keys the receiver saw equals the set of events")
is_(sorted(q["headers"]["idempotency-key"] for q in oks), sorted(keys),
    "each event was answered 200 exactly once")
key = signing_key(s)
ok(all(re.fullmatch(r"t=\d{10},v1=[0-9a-f]{64}", q["headers"].get("x-luckydice-signature", ""))
       for q in reqs), "every request is signed: X-Luckydice-Signature: t=<unix seconds>,v1=<hex>")
ok(all(q["verified"] is True for q in reqs),
   "the receiver, checking as docs/examples/verify-signature.py does, found each one good")
ok(all(abs(int(q["headers"]["x-luckydice-signature"][2:12]) - q["t"]) <= 5 for q in reqs),
   "t is when the request was sent")
ok(all(signed_ok(key, q) for q in reqs), "every signature verifies")
ok(not signed_ok(b"x" * 64, reqs[0]), "and would not verify under another key")
ok(all(q["body"] == payload[q["headers"]["idempotency-key"]] for q in reqs),
   "every body is the event's payload, byte for byte")
ok(all(q["headers"]["content-type"] == "application/json" and q["method"] == "POST"
       for q in reqs), "every request is a JSON POST")
ok(all(q["path"] == ("/reward" if q["headers"]["x-luckydice-event"] == "reward.issue"
                     else "/notify") for q in reqs),
   "reward.issue goes to reward_url, notify.* to notify_url")
bodies = [json.loads(q["body"]) for q in oks]
ok(all(b["key"] == q["headers"]["idempotency-key"] and b["event"] == q["headers"]["x-luckydice-event"]
       and b["promotion"] == P for b, q in zip(bodies, oks)),
   "bodies name their event, key and promotion")
win = [b for b in bodies if b["event"] == "reward.issue" and b["user"] == "u03"]
ok(len(win) == 1 and win[0]["prize"] == {"id": "gift", "name": "기프티콘"} and win[0]["draw_id"] > 0,
   "u03's reward names the prize and the draw")

# A captured reward.issue sent again: the same request is a duplicate
# (answered 2xx, not paid twice); under another key, with another body or
# later than the receiver's tolerance its signature does not hold.
cap = next(q for q in oks if q["headers"]["x-luckydice-event"] == "reward.issue")
hdrs = {k: cap["headers"][k] for k in ("content-type", "idempotency-key", "x-luckydice-event",
                                        "x-luckydice-signature")}
body = cap["body"].encode()
st = rv.send("/reward", hdrs, body)
last = rv.requests()[-1]
is_((st[0], last["verified"], last["duplicate"]), (200, True, True),
    "the same request again: its signature holds, and the receiver answers it as a duplicate")
for what, h, b in (
        ("with a new Idempotency-Key", dict(hdrs, **{"idempotency-key": cap["headers"]["idempotency-key"] + "-2"}), body),
        ("with another body", hdrs, body.replace(b'"u', b'"x', 1)),
        ("signed the old way (sha256= of the body)", dict(hdrs, **{"x-luckydice-signature": "sha256=" + hmac.new(
            key, body, hashlib.sha256).hexdigest()}), body),
        ("without a signature", {k: v for k, v in hdrs.items() if k != "x-luckydice-signature"}, body)):
    st = rv.send("/reward", h, b)
    is_((st[0], st[1] and st[1]["error"]), (401, "bad_signature"), "replayed %s: refused" % what)
t = int(cap["headers"]["x-luckydice-signature"][2:12])
verify = lambda now: example.verify(key, cap["headers"]["x-luckydice-signature"],
                                    cap["headers"]["idempotency-key"], body, now=now)
is_([verify(t + 299), verify(t + 301), verify(t - 301)], [None, "stale signature", "stale signature"],
    "a signature is good for 5 minutes either way of its t, not after")
is_(s.query("SELECT count(*) FROM outbox WHERE key=?", cap["headers"]["idempotency-key"]), [(1,)],
    "(the event itself was sent once and is delivered)")
# The example from the command line, on the request saved to a file.
saved = os.path.join(s.dir, "request.txt")
for what, h, want in (("as captured", hdrs, (0, "good")),
                      ("under another key", dict(hdrs, **{"idempotency-key": "other"}), (1, "refused: bad signature"))):
    with open(saved, "wb") as f:
        f.write("".join("%s: %s\r\n" % kv for kv in h.items()).encode() + b"\r\n" + body)
    r = subprocess.run([sys.executable, os.path.join(SRC, "docs", "examples", "verify-signature.py"),
                        os.path.join(s.dir, "signing.secret"), saved], capture_output=True, text=True)
    is_((r.returncode, r.stdout.strip()), want, "verify-signature.py on the request %s" % what)

# Nothing due: a run sends nothing and exits 0.
n = len(rv.requests())
r = dispatch(s)
is_((r.returncode, len(rv.requests())), (0, n), "a run with nothing due sends nothing, exits 0")
r = dispatch(s, "--quiet")
is_((r.returncode, r.stdout), (0, ""), "--quiet prints nothing when all is well")

# A kind whose URL is not configured waits, and the summary says so.
make_wins(s, P, ["late"])
cfg = json.load(open(s.config))
del cfg["notify_url"]
alt = os.path.join(s.dir, "no-notify.json")
json.dump(cfg, open(alt, "w"))
r = dispatch(s, env=dict(s.env, LUCKYDICE_CONFIG=alt))
is_(r.returncode, 1, "with notify_url unset a run exits 1")
ok("wait for notify_url" in r.stdout and "delivered 1," in r.stdout,
   "the reward is delivered and the summary says the notification waits") or diag(r.stdout)
is_(s.scalar("SELECT state || '/' || attempts FROM outbox WHERE key = ?", s.event_key(P, 13, "notify")),
    "pending/0", "the notification stays pending, no attempt counted")

# Cannot run: exit 2 with a message.
def with_config(**changes):
    cfg = json.load(open(s.config))
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    path = os.path.join(s.dir, "alt-%d.json" % len(os.listdir(s.dir)))
    json.dump(cfg, open(path, "w"))
    return dict(s.env, LUCKYDICE_CONFIG=path)


make_wins(s, P, ["later"])
n = len(rv.requests())
r = dispatch(s, env=with_config(signing_secret_file=None))
ok(r.returncode == 2 and "signing_secret_file" in r.stderr and "never the token secret" in r.stderr,
   "without signing_secret_file the dispatcher does not start (no falling back to the token secret)") or diag(r.stderr)
r = dispatch(s, env=with_config(signing_secret_file="token.secret"))
ok(r.returncode == 2 and "same secret" in r.stderr, "nor with the token secret as the signing secret") or diag(r.stderr)
shutil.copy(os.path.join(s.dir, "token.secret"), os.path.join(s.dir, "copy.secret"))
r = dispatch(s, env=with_config(signing_secret_file="copy.secret"))
ok(r.returncode == 2 and "same secret" in r.stderr, "nor with a copy of it") or diag(r.stderr)
r = dispatch(s, env=with_config(reward_url="http://rewards.example/issue"))
ok(r.returncode == 2 and "must be https://" in r.stderr and "allow_plain_http" in r.stderr,
   "nor with an http:// reward_url to another host") or diag(r.stderr)
r = dispatch(s, "--dry-run", env=with_config(reward_url="http://rewards.example/issue",
                                               allow_plain_http=True))
ok(r.returncode == 0 and "http://rewards.example/issue" in r.stdout,
   "allow_plain_http lets it (a dry run shows where it would send)") or diag(r.stderr)
is_(len(rv.requests()), n, "none of those sent anything")

r = dispatch(s, env=dict(s.env, LUCKYDICE_CONFIG=os.path.join(s.dir, "missing.json")))
ok(r.returncode == 2 and "missing.json" in r.stderr, "a missing config exits 2 naming the file")
r = dispatch(s, "--batch", "0")
ok(r.returncode == 2 and "--batch" in r.stderr, "a bad --batch exits 2")
done()
