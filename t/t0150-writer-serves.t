#!/usr/bin/env python3
# "write_workers": 0: the writer process serves the FastCGI write socket
# itself (no write workers, no hop to it). Writes that wait on the socket
# together are run in one transaction and answered after its commit;
# what is not a write (a bad body, a wrong method) is answered at once;
# requests that waited while the writer was down are served by the next
# one, and nothing is left open.
import json, os, re, resource, signal, socket, struct, subprocess, threading, time
from harness import Stack, ok, is_, done, diag, promo, stopped, timed, BUILD

P = "t-serves"
# The writer's 512 slots are filled below, from this process: room for
# them on both ends (the stack inherits this limit).
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != resource.RLIM_INFINITY and soft < 2048:
    resource.setrlimit(resource.RLIMIT_NOFILE, (2048 if hard == resource.RLIM_INFINITY
                                                else min(2048, hard), hard))
s = Stack(workers=2, promos=[promo(P)], extra_config={"write_workers": 0})
write_sock = os.path.join(s.dir, "fcgi-writes.sock")


def metric(name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), s.request("GET", "/metrics").raw, re.M)
    return int(m.group(1)) if m else None


def batches():
    return metric('luckydice_writer_batches_total{result="committed"}')


def parallel(calls):
    """Runs each call in a thread of its own; their results, in order."""
    out = [None] * len(calls)

    def run(i):
        try:
            out[i] = calls[i]()
        except Exception as e:  # reported as the result
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in ts:
        t.start()
    return ts, out


writer = s.child("ld-writer")
is_(s.socket_holders(write_sock), [writer], "the writer alone holds the write socket")
log = open(os.path.join(s.dir, "log", "fcgi.log")).read()
ok("the writer on " in log, "the supervisor says the writer serves the write socket")

a, b, c = s.tokens("sa", "sb", "sc")
r = s.api("POST", P, "visit", token=a)
is_((r.status, r.json), (200, {"granted": True, "balance": 1}), "a visit is granted")
is_(s.scalar("SELECT count(*) FROM grants WHERE uid = 'sa'"), 1, "and committed")
code = s.api("GET", P, "invite", token=a).json["code"]
r = s.api("POST", P, "invite/claim", body={"code": code}, token=b)
is_((r.status, r.json["balance"]), (200, 2), "a claim credits the invitee")
is_(s.api("GET", P, "balance", token=a).json["balance"], 2, "and the inviter")
r = s.api("POST", P, "draws", body={"request_id": "serves-0001"}, token=a)
is_((r.status, r.json["balance"]), (200, 1), "a draw spends a die")
again = s.api("POST", P, "draws", body={"request_id": "serves-0001"}, token=a)
is_((again.status, again.json), (200, r.json), "the same request_id replays it")

# What needs no write is answered at once, and changes nothing.
before = s.dump()
r = s.api("POST", P, "draws", body={"request_id": "serves-0002", "x": 1}, token=a)
is_((r.status, r.json["error"]), (400, "unknown_field"), "a bad body gets 400 naming the field")
r = s.api("POST", P, "visit", token="not-a-token")
is_(r.status, 401, "a bad token gets 401")
r = s.api("GET", P, "visit", token=a)
is_((r.status, r.json["error"]), (405, "method_not_allowed"), "a GET of visit gets 405")
r = s.api("POST", "no-such-promo", "visit", token=c)
is_((r.status, r.json["error"]), (404, "unknown_promotion"), "an unknown promotion gets 404")
is_(s.dump(), before, "none of them changed the ledger")

# Writes that wait together go in one batch: with the writer stopped,
# 8 visits queue on the socket; once it runs they take fewer batches.
toks = s.tokens(*["q%d" % i for i in range(8)])
b0 = batches()
with stopped(writer):
    ts, out = parallel([lambda t=t: s.api("POST", P, "visit", token=t) for t in toks])
    time.sleep(1.0)
for t in ts:
    t.join(30)
is_([x.status if hasattr(x, "status") else str(x) for x in out], [200] * 8,
    "8 visits that waited for the writer are answered")
is_(s.scalar("SELECT count(*) FROM grants WHERE uid LIKE 'q%' AND reason = 'visit'"), 8,
    "and granted once each")
n = batches() - b0
ok(1 <= n < 8, "in fewer transactions than requests (%d)" % n)

# A frozen writer: nginx answers 503 after its 6 s, hangs up, and the
# thawed writer does not run the visit nobody waits for any more.
frozen = s.token("frozen")
with stopped(writer):
    r, took = timed(lambda: s.api("POST", P, "visit", token=frozen))
ok(r.status == 503 and r.json and r.json.get("error") == "unavailable",
   "a visit while the writer is frozen -> 503 JSON") or diag(repr(r))
ok(5 < took < 10, "after nginx's 6 s, not a hang (%.1f s)" % took)
time.sleep(0.5)
is_(s.scalar("SELECT count(*) FROM grants WHERE uid = 'frozen'"), 0,
    "the thawed writer did not run the visit nginx gave up on")
is_(s.api("POST", P, "visit", token=frozen).json, {"granted": True, "balance": 1},
    "the retried visit is granted once")

# A writer killed with requests waiting: the next one serves them.
toks = s.tokens(*["k%d" % i for i in range(4)])
os.kill(writer, signal.SIGSTOP)
ts, out = parallel([lambda t=t: s.api("POST", P, "visit", token=t) for t in toks])
time.sleep(1.0)
os.kill(writer, signal.SIGKILL)
for t in ts:
    t.join(30)
statuses = [x.status if hasattr(x, "status") else str(x) for x in out]
granted = s.scalar("SELECT count(*) FROM grants WHERE uid LIKE 'k%' AND reason = 'visit'")
# Requests still in the socket's queue go to the next writer; one the
# killed writer had accepted gets the JSON 503 (nginx's 502) and is not run (retrying
# it is safe). Every 200 is a committed grant.
is_(granted, statuses.count(200), "every answered visit was committed (%s)" % statuses)
ok(set(statuses) <= {200, 503}, "the rest get the JSON 503 (nginx's 502), nothing else")
for _ in range(50):
    try:
        new = s.child("ld-writer")
        if new != writer:
            break
    except RuntimeError:
        pass
    time.sleep(0.1)
ok(new != writer, "the supervisor started another writer")
r = s.api("POST", P, "visit", token=toks[0])
is_(r.status, 200, "which serves the writes")
is_(s.scalar("SELECT count(*) FROM grants WHERE uid = 'k0' AND reason = 'visit'"), 1,
    "k0 has one visit grant whatever the first attempt got")

# nginx keeps its connections to the writer between requests: after 30
# writes in a row one is open, not 30 (connected sockets on the path).
def write_conns():
    with open("/proc/net/unix") as f:
        return sum(1 for line in f if line.split()[-1:] == [write_sock]
                   and line.split()[5] == "03")


for i in range(30):
    s.api("POST", P, "visit", token=c)
n = write_conns()
ok(1 <= n <= 2, "nginx keeps its connection to the writer between requests (%d open)" % n)

# Nothing is left open: descriptors after 200 more requests as before.
def fds():
    return len(os.listdir("/proc/%d/fd" % new))


for i in range(20):
    s.api("POST", P, "visit", token=c)
held = fds()
for i in range(100):
    s.api("POST", P, "visit", token=c)
    s.api("POST", P, "draws", body={"request_id": "fd-%06d" % i}, token=c)
is_(fds(), held, "the writer holds no more descriptors after 200 requests")

# Every slot taken: the writer has a slot per connection (512). Straight
# FastCGI connections to the socket, each kept after one request, take
# the free ones; the next connection waits in the socket's backlog
# without the writer spinning on it, and is served once one closes.
def fcgi_record(kind, body):
    return struct.pack("!BBHHBx", 1, kind, 1, len(body), 0) + body


def fcgi_params(pairs):
    out = b""
    for k, v in pairs:
        out += bytes([len(k), len(v)]) + k.encode() + v.encode()
    return out


def fcgi_send(sock):
    path = "/api/promotions/%s/visit" % P
    sock.sendall(fcgi_record(1, struct.pack("!HB5x", 1, 1))  # responder, keep the connection
                 + fcgi_record(4, fcgi_params([("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", path),
                                               ("REQUEST_URI", path)]))
                 + fcgi_record(4, b"") + fcgi_record(5, b""))


def fcgi_answer(sock):
    """The answer's stdout, up to its end-request record."""
    out, buf = b"", b""
    while True:
        while len(buf) < 8 or len(buf) < 8 + struct.unpack("!H", buf[4:6])[0] + buf[6]:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("the writer closed the connection")
            buf += chunk
        kind, clen, plen = buf[1], struct.unpack("!H", buf[4:6])[0], buf[6]
        if kind == 6:
            out += buf[8:8 + clen]
        buf = buf[8 + clen + plen:]
        if kind == 3:
            return out


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


held_conns, waiting = [], None
for i in range(600):
    sk = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sk.connect(write_sock)
    fcgi_send(sk)
    sk.settimeout(1.0)
    try:
        answer = fcgi_answer(sk)
    except socket.timeout:
        waiting = sk
        break
    held_conns.append(sk)
ok(waiting is not None and 256 < len(held_conns) <= 512,
   "a connection past the free slots waits (%d connections held a slot)" % len(held_conns))
ok(b"405" in answer, "each held connection was answered (a GET of visit: 405)")
t0 = cpu_ticks(new)
time.sleep(1.0)
spent = cpu_ticks(new) - t0
ok(spent <= 20, "the writer does not spin while every slot is taken (%d ticks in 1 s)" % spent)
ok("connection slots hold a connection" in open(os.path.join(s.dir, "log", "fcgi.log")).read(),
   "and says so in its log")
held_conns.pop().close()
waiting.settimeout(10)
try:
    ok(b"405" in fcgi_answer(waiting), "once one closes, the waiting connection is served")
except (socket.timeout, EOFError) as e:
    ok(False, "once one closes, the waiting connection is served (%s)" % e)
for sk in held_conns + [waiting]:
    sk.close()
r = s.api("POST", P, "visit", token=s.token("after-full"))
is_(r.status, 200, "and the writes go on through nginx")

# With "writes": "direct" there is no writer: as many write workers as
# read workers serve the write socket. (A database of its own: this
# instance only starts and stops.)
cfg = json.load(open(s.config))
cfg.update(writes="direct", db="direct.db", redis=None)
direct = os.path.join(s.dir, "direct.json")
with open(direct, "w") as f:
    json.dump(cfg, f)
denv = dict(s.env, LUCKYDICE_CONFIG=direct)
subprocess.run([os.path.join(BUILD, "luckydicectl"), "init"], env=denv, capture_output=True,
               timeout=30)
p = subprocess.Popen([os.path.join(BUILD, "luckydice-fcgi"), "--socket", os.path.join(s.dir, "x.sock"),
                      "--write-socket", os.path.join(s.dir, "y.sock"), "--workers", "3"],
                     env=denv, stderr=subprocess.PIPE, text=True, start_new_session=True)
def stop_instance(p, until):
    """Its stderr: read until it says `until` (at most 30 s: a slow
    start under the sanitizers), and a second more; then a SIGTERM."""
    lines, seen = [], threading.Event()

    def read():
        for l in p.stderr:
            lines.append(l)
            if until in l:
                seen.set()
    t = threading.Thread(target=read, daemon=True)
    t.start()
    seen.wait(30)
    time.sleep(1.0)
    p.terminate()
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    t.join(10)
    return "".join(lines)


line = p.stderr.readline()
rest = stop_instance(p, "checkpointer: no writer process")
ok("\"direct\": 3 write workers serve the write socket" in line,
   "0 write workers with \"writes\": \"direct\" start as many as the read pool: %s" % line.strip())
ok("checkpointer: no writer process" in rest,
   "and the checkpointer starts the WAL over itself, and says so")

# A database path too long for the writer's own socket: the writer still
# serves the write socket and starts the WAL over, so the checkpointer
# must not (its RESTARTs would hold the writes back ten times a second).
deep = os.path.join(s.dir, "d" * 90)
os.makedirs(deep, exist_ok=True)
cfg.update(writes="grouped", write_workers=0, db=os.path.join(deep, "long.db"))
with open(direct, "w") as f:
    json.dump(cfg, f)
subprocess.run([os.path.join(BUILD, "luckydicectl"), "init"], env=denv, capture_output=True,
               timeout=30)
p = subprocess.Popen([os.path.join(BUILD, "luckydice-fcgi"), "--socket", os.path.join(s.dir, "x.sock"),
                      "--write-socket", os.path.join(s.dir, "y.sock"), "--workers", "2"],
                     env=denv, stderr=subprocess.PIPE, text=True, start_new_session=True)
rest = stop_instance(p, "too long for a socket next to it")
ok("too long for a socket next to it; it serves the write socket" in rest,
   "a long database path: the writer still serves the write socket")
ok("checkpointer: no writer process" not in rest,
   "and the checkpointer leaves the WAL's start-over to it") or diag(rest)
p = subprocess.Popen([os.path.join(BUILD, "luckydice-fcgi"), "--socket", os.path.join(s.dir, "x.sock"),
                      "--write-socket", os.path.join(s.dir, "y.sock"), "--workers", "2",
                      "--write-workers", "2"],
                     env=denv, stderr=subprocess.PIPE, text=True, start_new_session=True)
rest = stop_instance(p, "checkpointer: no writer process")
ok("checkpointer: no writer process" in rest,
   "with write workers instead (no writer at all then), the checkpointer does") or diag(rest)

# A typo in a count is refused, not read as 0 (which meant "from the config").
for flag, value in (("--write-workers", "2x"), ("--workers", "0"), ("--workers", "")):
    p = subprocess.run([os.path.join(BUILD, "luckydice-fcgi"), "--socket", os.path.join(s.dir, "z.sock"),
                        "--write-socket", os.path.join(s.dir, "zw.sock"), flag, value],
                       env=denv, capture_output=True, text=True, timeout=30)
    is_((p.returncode, p.stderr.strip()),
        (2, "<3>fatal: %s wants a number from %d to 256, not '%s'" % (flag, 0 if "write" in flag else 1, value)),
        "luckydice-fcgi %s '%s' is refused, naming the flag" % (flag, value))
ok(not os.path.exists(os.path.join(s.dir, "z.sock")), "and opens no socket")
p = subprocess.run([os.path.join(BUILD, "luckydice-fcgi"), "--socket", "127.0.0.1:80x"],
                   env=denv, capture_output=True, text=True, timeout=30)
is_((p.returncode, p.stderr.strip()),
    (2, "<3>fatal: the port in '127.0.0.1:80x' wants a number from 1 to 65535, not '80x'"),
    "so is a port that is not a number")
done()
