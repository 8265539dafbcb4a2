#!/usr/bin/env python3
# The two worker pools: nginx sends the writes (visit, claim, draws) to
# the workers on the write socket and everything else to those on the
# read socket. Stopping one pool's workers (SIGSTOP) stalls only its
# requests. A worker closes each connection as soon as it has answered
# (cgi/finish.h), also when it did not read the request's body: no
# connection is left open and nginx sees no upstream error. Behind the
# write workers, a frozen writer makes them answer 503; on PostgreSQL,
# where the writer has no socket of its own, there is none.
import http.client, json, os, signal, subprocess, time
from harness import BACKEND, Stack, ok, is_, done, diag, promo, stopped, timed

P = "t-pools"
s = Stack(workers=2, promos=[promo(P)], extra_config={"write_workers": 3})


def pool(path):
    """The supervisor's children that hold the listening socket at path."""
    return s.socket_holders(path)


def quick(method, path, token, body=None):
    """The status, or None when no answer came within 1.5 s."""
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=1.5)
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        return c.getresponse().status
    except OSError:
        return None
    finally:
        c.close()


reads = pool(os.path.join(s.dir, "fcgi.sock"))
writes = pool(os.path.join(s.dir, "fcgi-writes.sock"))
is_((len(reads), len(writes)), (2, 3), "2 workers on the read socket, 3 on the write socket")
is_(set(reads) & set(writes), set(), "no worker is in both pools")

a, b, c = s.tokens("a", "b", "c")
api = "/api/promotions/%s/" % P
for pids, name in ((reads, "read"), (writes, "write")):
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        visit = quick("POST", api + "visit", a if name == "read" else b)
        draw = quick("POST", api + "draws", a, {"request_id": "pool-%s-1" % name})
        balance = quick("GET", api + "balance", c)
        me = quick("GET", api + "me", c)
    finally:
        for p in pids:
            os.kill(p, signal.SIGCONT)
    if name == "read":
        is_((visit, draw), (200, 200), "with the read pool stopped, a visit and a draw answer")
        is_((balance, me), (None, None), "while balance and me wait")
    else:
        is_((balance, me), (200, 200), "with the write pool stopped, balance and me answer")
        is_((visit, draw), (None, None), "while the visit and the draw wait")
time.sleep(0.5)
r = s.api("POST", P, "visit", token=b)
is_((r.status, r.json["balance"]), (200, 1),
    "once the pool runs again, writes are served; the visit that waited counts once")


def open_fds(pids):
    return sum(len(os.listdir("/proc/%d/fd" % p)) for p in pids)


def unread_bodies(n):
    for i in range(n):
        # a body balance never reads, and a visit body with room to spare
        statuses.add(s.request("GET", api + "balance", token=c, raw=b"x" * 900,
                               headers={"Content-Type": "text/plain"}).status)
        statuses.add(s.request("POST", api + "visit", token=c, raw=b"{}" + b" " * 900,
                               headers={"Content-Type": "application/json"}).status)


statuses = set()
unread_bodies(20)  # every worker has served: what it opens lazily is open
fds = open_fds(reads + writes)
unread_bodies(200)
is_(statuses, {200}, "440 requests whose bodies were not all read are answered")
is_(open_fds(reads + writes), fds, "and the workers hold no more descriptors than before")
log = open(os.path.join(s.dir, "nginx-error.log")).read()
is_([l for l in log.splitlines() if "upstream" in l], [], "nginx logged no upstream error")

if BACKEND == "pg":
    # On PostgreSQL the writer's own socket (it sits beside a SQLite file)
    # does not exist: with write workers there is no writer and no
    # checkpointer, and the workers write themselves.
    with open(os.path.join(s.dir, "fcgi.pid")) as f:
        sup = f.read().strip()
    names = subprocess.run(["pgrep", "-P", sup, "-l"], capture_output=True,
                           text=True).stdout.split()[1::2]
    is_(sorted(set(names) - {"luckydice-fcgi"}), [],
        "no writer and no checkpointer beside the workers")
    is_(len(names), 5, "just the 2 + 3 workers")
    f1 = s.token("pg-w1")
    is_([s.api("POST", P, "visit", token=f1).json for _ in range(2)],
        [{"granted": True, "balance": 1}, {"granted": False, "balance": 1}],
        "a write worker writes itself: granted once")
    log = open(os.path.join(s.dir, "log", "fcgi.log")).read()
    ok("the database is on a server, with no file to put a socket beside; the workers"
       " write themselves" in log, "the supervisor says why there is no writer")
    is_([l for l in log.splitlines() if not l.startswith("request ") and
         ("writer" in l or "ended" in l or "checkpointer" in l)],
        [], "and nothing else of a writer or a checkpointer, and no child ended")
    ok("password" not in log and "postgresql:" not in log, "the log never shows the connection string")
    done()

# The writer frozen (SIGSTOP) behind write workers: a worker answers 503
# after its timeout, and hangs up; the thawed writer does not run what
# that worker gave up on.
writer = s.child("ld-writer")
f1 = s.token("frozen-w")
with stopped(writer):
    r, took = timed(lambda: s.api("POST", P, "visit", token=f1))
ok(r.status == 503 and r.json and r.json.get("message") == "the service is busy, try again",
   "a visit while the writer is frozen -> the write worker's 503 JSON") or diag(repr(r))
ok(took < 8, "after its timeout, not a hang (%.1f s)" % took)
time.sleep(0.5)
is_(s.scalar("SELECT count(*) FROM grants WHERE uid = 'frozen-w'"), 0,
    "the thawed writer did not run the visit its worker gave up on")
is_(s.api("POST", P, "visit", token=f1).json, {"granted": True, "balance": 1},
    "the retried visit is granted once")
done()
