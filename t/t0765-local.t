#!/usr/bin/env python3
# Local users: another user on the same host, against the real stack
# (docs/security-review.md, "local users"):
#   1. the FastCGI sockets are 0660 in nginx's group, in a directory others
#      cannot enter; the writer's own socket is 0600; the group comes from
#      "socket_group" (www-data when absent), and a group that does not
#      exist stops luckydice-fcgi;
#   2. no connection holds other requests back: while raw connections to
#      a socket sent two bytes, nothing, half a BEGIN_REQUEST (or drip a
#      byte at a time), a visit and a draw through nginx answer at once,
#      and balance too with more such connections than read workers; each
#      is closed at its deadline;
#   3. as an unprivileged user, neither socket can be opened;
#   4. /metrics: a FastCGI request straight to the socket saying
#      REMOTE_ADDR=127.0.0.1 gets no metrics; through nginx loopback gets
#      them and another address gets nginx's 403, unless the site's list
#      names it;
#   5. the writer's own socket refuses a process of another user, and
#      runs a request from its own user at the writer's clock, not the
#      request's hour ahead.
import grp, http.client, json, os, socket, stat, struct, subprocess, sys, time
from harness import (Stack, Site, ok, is_, diag, done, skip, promo, fcgi_request, BUILD,
                     BACKEND)

P = "t-local"
s = Stack(promos=[promo(P, prizes=[
    {"id": "coffee", "name": "coffee", "daily_stock": 100000, "probability": 0.5}])])
READS, WRITES = os.path.join(s.dir, "fcgi.sock"), os.path.join(s.dir, "fcgi-writes.sock")
WRITER = os.path.join(s.dir, "luckydice.db-writer")
ROOT = os.geteuid() == 0
toks = iter(s.tokens(*["local-%d" % i for i in range(60)]))
LOG = os.path.join(s.dir, "log", "fcgi.log")

# ---- 1. Modes and groups ---------------------------------------------------
group = grp.getgrgid(os.getegid()).gr_name  # nginx's workers run as this user here
with open(s.config) as f:
    is_(json.load(f).get("socket_group"), group,
        "script/stack names the group of nginx's user in socket_group (%s)" % group)
for path in (READS, WRITES):
    st = os.stat(path)
    is_((oct(stat.S_IMODE(st.st_mode)), st.st_gid), (oct(0o660), os.getegid()),
        "%s is 0660 in group %s" % (os.path.basename(path), group))
st = os.stat(s.dir)
is_((oct(stat.S_IMODE(st.st_mode)), st.st_gid), (oct(0o750), os.getegid()),
    "their directory is 0750 in that group: others cannot enter")
SQLITE = BACKEND == "sqlite"  # a ledger on a server has no writer's socket beside it
if SQLITE:
    is_(oct(stat.S_IMODE(os.stat(WRITER).st_mode)), oct(0o600), "the writer's own socket is 0600")
else:
    skip("the writer's own socket is 0600", "the ledger is on PostgreSQL")


def fcgi_alone(name, **config):
    """luckydice-fcgi run by itself with the stack's config changed by
    config (None removes a key), on sockets of its own: its exit status
    (None while it runs), its log, and the socket's (mode, group); it is
    stopped after."""
    d = os.path.join(s.dir, name)
    os.mkdir(d, 0o750)
    with open(s.config) as f:
        cfg = json.load(f)
    cfg.update(db=os.path.join(d, "alone.db"), redis=None,
               token_secret_file=os.path.join(s.dir, "token.secret"))
    for k, v in config.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    conf = os.path.join(d, "alone.json")
    with open(conf, "w") as f:
        json.dump(cfg, f)
    env = dict(os.environ, LUCKYDICE_CONFIG=conf)
    subprocess.run([os.path.join(BUILD, "luckydicectl"), "init"], env=env, check=True,
                   capture_output=True, timeout=60)
    sock = os.path.join(d, "r.sock")
    log = os.path.join(d, "fcgi.log")
    p = subprocess.Popen([os.path.join(BUILD, "luckydice-fcgi"), "--socket", sock,
                          "--write-socket", os.path.join(d, "w.sock"), "--workers", "1"],
                         env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                         start_new_session=True)
    mode = None
    for _ in range(100):  # until it runs and its socket has its mode (or it ended)
        if p.poll() is not None:
            break
        if os.path.exists(sock):
            st = os.stat(sock)
            mode = (oct(stat.S_IMODE(st.st_mode)), grp.getgrgid(st.st_gid).gr_name)
            if mode[0] == oct(0o660):
                break
        time.sleep(0.05)
    rc = p.poll()
    if rc is None:
        p.terminate()
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        diag("luckydice-fcgi did not stop on SIGTERM:\n" + subprocess.run(
            ["ps", "-o", "pid,ppid,stat,wchan:20,args", "-s", str(p.pid)],
            capture_output=True, text=True).stdout)
        os.killpg(p.pid, 9)
        p.wait()
    with open(log) as f:
        return rc, f.read(), mode


have_www = True
try:
    grp.getgrnam("www-data")
except KeyError:
    have_www = False
if ROOT and have_www:
    rc, out, mode = fcgi_alone("absent", socket_group=None)
    is_((rc, mode), (None, ("0o660", "www-data")),
        "without socket_group the sockets are 0660 in www-data") or diag(out)
else:
    skip("without socket_group the sockets are in www-data", "not root, or no www-data here")
rc, out, mode = fcgi_alone("nosuch", socket_group="ld-no-such-group")
ok(rc == 2 and "\"socket_group\": no group 'ld-no-such-group'" in out and mode is None,
   "a socket_group that does not exist stops luckydice-fcgi (exit 2), naming the key") or diag(out)

# ---- 2. No connection holds the others back ---------------------------------


def record(kind, body, rid=1):
    return struct.pack("!BBHHBx", 1, kind, rid, len(body), 0) + body


BEGIN = record(1, struct.pack("!HB5x", 1, 0))
HOLDS = (("sent 2 bytes", BEGIN[:2]), ("sent nothing", b""),
         ("sent half a BEGIN_REQUEST", BEGIN[:12]))


def hold(path, data):
    """A raw connection to path that sent data; held[c] is when it was made."""
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(5)
    c.connect(path)
    if data:
        c.sendall(data)
    made[c] = time.monotonic()
    return c


made = {}


def timed_api(method, ep, body=None, tok=None):
    """A request through nginx with a 10 s limit (a fresh user's, unless
    tok): (status, seconds)."""
    h = {"Authorization": "Bearer " + (tok or next(toks)), "Content-Type": "application/json"}
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    try:
        c.request(method, "/api/promotions/%s/%s" % (P, ep),
                  body=json.dumps(body) if body is not None else None, headers=h)
        st = c.getresponse().status
    except OSError as e:
        st = str(e)
    finally:
        c.close()
    return st, time.monotonic() - t0


def prompt(method, ep, body=None, tok=None):
    """A request answered 200 within a second; a second try when the
    first was slow (a busy machine), never when it failed."""
    st, t = timed_api(method, ep, body, tok)
    if st == 200 and t >= 1.0:
        st, t = timed_api(method, ep, dict(body, request_id=body["request_id"] + "-2")
                          if body else body, tok)
    return st, t


def closed_by_service(c, within):
    """Whether the service closes c (EOF or a reset) within that many
    seconds of its connect."""
    c.settimeout(max(0.1, made[c] + within - time.monotonic()))
    try:
        return c.recv(100) == b""
    except ConnectionResetError:
        return True
    except OSError:
        return False


warm = next(toks)  # the first writes of a fresh stack are slow
timed_api("POST", "visit", tok=warm)
timed_api("POST", "draws", {"request_id": "warm-up-draw"}, tok=warm)
draw_n = 0
for path, name in ((WRITES, "fcgi-writes.sock"), (READS, "fcgi.sock")):
    held = [(what, hold(path, data)) for what, data in HOLDS]
    time.sleep(0.2)
    if path == WRITES:
        for what, _ in HOLDS:
            draw_n += 1
            tok = next(toks)
            st, t = prompt("POST", "visit", tok=tok)
            ok(st == 200 and t < 1.0, "a visit through nginx answers in %.2f s while a"
               " connection to %s %s" % (t, name, what)) or diag(st)
            st, t = prompt("POST", "draws", {"request_id": "held-draw-%04d" % draw_n}, tok)
            ok(st == 200 and t < 1.0, "so does a draw (%.2f s)" % t) or diag(st)
    else:
        more = [hold(path, data) for _ in range(2) for _, data in HOLDS]  # 9 > 2 workers
        for _ in range(3):
            st, t = prompt("GET", "balance")
            ok(st == 200 and t < 1.0, "balance answers in %.2f s while 9 connections to %s"
               " (2 workers) sent 2 bytes, nothing or half a BEGIN_REQUEST" % (t, name)) or diag(st)
        held += [("", c) for c in more]
    closed = [closed_by_service(c, 3) for _, c in held]
    ok(all(closed), "the service closed each of them within 3 s (%s)" % closed)
    for _, c in held:
        c.close()

# A request sent a byte every 0.3 s: each read is quick, the whole is not.
drip = hold(WRITES, b"")
req = BEGIN + record(4, b"\x0e\x03REQUEST_METHODGET") + record(4, b"") + record(5, b"")
t0, closed = time.monotonic(), False
for b in req:
    try:
        drip.send(bytes([b]))
    except OSError:
        closed = True
        break
    time.sleep(0.3)
    if time.monotonic() - t0 > 4:
        break
closed = closed or closed_by_service(drip, 4.5)
ok(closed and time.monotonic() - t0 < 4.5,
   "a request sent a byte at a time is closed at its deadline (%.1f s)" % (time.monotonic() - t0))
drip.close()
st, t = prompt("POST", "visit")
ok(st == 200 and t < 1.0, "and the writes went on meanwhile (%.2f s)" % t)

# ---- 3. Another user cannot connect -----------------------------------------
CONNECT = """
import socket, sys
for path in sys.argv[1:]:
    c = socket.socket(socket.AF_UNIX)
    try:
        c.connect(path)
        print("connected")
    except PermissionError:
        print("denied")
"""


def as_nobody(code, *args):
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        sys.executable, "-c", code] + list(args),
                       capture_output=True, text=True, timeout=30)
    return r.stdout.split() if r.returncode == 0 else [r.stderr.strip()]


if ROOT:
    is_(as_nobody(CONNECT, READS, WRITES), ["denied", "denied"],
        "as nobody, neither socket can be opened (the directory)")
    dmode = stat.S_IMODE(os.stat(s.dir).st_mode)
    os.chmod(s.dir, dmode | 0o001)
    try:
        is_(as_nobody(CONNECT, READS, WRITES), ["denied", "denied"],
            "nor with the directory open to others (the sockets' 0660)")
    finally:
        os.chmod(s.dir, dmode)
else:
    skip("as nobody, the sockets cannot be opened", "needs root to become nobody")

# ---- 4. /metrics ----------------------------------------------------------------
st, body = fcgi_request(READS, "/metrics")
ok(st in (403, 404) and "luckydice_" not in body and json.loads(body).get("error"),
   "FastCGI straight to the socket with REMOTE_ADDR=127.0.0.1: %d JSON, no metrics" % st) or diag(body)
r = s.request("GET", "/metrics")
ok(r.status == 200 and "luckydice_requests_total" in r.raw, "through nginx from 127.0.0.1: the metrics")


def get_from(source, port, path="/metrics"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


st, body = get_from("127.0.0.2", s.port)
ok(st == 403 and "not from this address" in body and "luckydice_" not in body,
   "from 127.0.0.2, not on the list: nginx's own 403 JSON") or diag(body)
is_(get_from("127.0.0.2", s.port, "/healthz")[0], 200, "while the rest answers 127.0.0.2")

# The shipped site, with a Prometheus at 127.0.0.2 added where its comment says.
site = Site(s, edits=[("\t127.0.0.1 1;\n\t::1 1;\n}",
                            "\t127.0.0.1 1;\n\t::1 1;\n\t127.0.0.2 1;\n}")])
r = site.request("GET", "/metrics", source="127.0.0.2")
ok(r.status == 200 and "luckydice_requests_total" in r.raw,
   "the shipped site with 127.0.0.2 on its list: its metrics, no code changed")
r = site.request("GET", "/metrics", source="127.0.0.3")
is_((r.status, r.json and r.json.get("error")), (403, "forbidden"),
    "and 127.0.0.3, not on it, gets 403 JSON")
site.stop()

# ---- 5. The writer's own socket ---------------------------------------------------
# One write, as a worker hands it (struct writer_request of lib/writer.h:
# magic, op, now_ms, then promo, uid, arg and client of 65 bytes, has_client).
WRITE = """
import socket, struct, sys, time
path, uid, ahead = sys.argv[1], sys.argv[2], int(sys.argv[3])
q = struct.pack("@IIq65s65s65s65si", 0x6c647731, 1, int(time.time() * 1000) + ahead,
                sys.argv[4].encode(), uid.encode(), b"", b"", 0)
c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
c.settimeout(5)
try:
    c.connect(path)
    c.send(q)
    print("answered" if c.recv(4096) else "closed")
except PermissionError:
    print("denied")
except socket.timeout:
    print("no-answer")
except OSError:
    print("closed")
"""
if not SQLITE:
    skip("the writer's own socket", "the ledger is on PostgreSQL: no writer's socket")
    done()
t0 = int(time.time() * 1000)
r = subprocess.run([sys.executable, "-c", WRITE, WRITER, "clock-ahead", str(3600 * 1000), P],
                   capture_output=True, text=True, timeout=30)
t1 = int(time.time() * 1000)
is_(r.stdout.split(), ["answered"], "a write from the writer's own user is run") or diag(r.stderr)
at = s.scalar("SELECT created_at FROM grants WHERE uid = 'clock-ahead'")
ok(at is not None and t0 <= at <= t1,
   "its instant an hour ahead is taken as the writer's own (%s ms after the call)"
   % (at - t0 if at is not None else None))
if ROOT:
    is_(as_nobody(WRITE, WRITER, "intruder", "0", P), ["denied"],
        "as nobody: the writer's socket cannot be opened (0600)")
    dmode, smode = stat.S_IMODE(os.stat(s.dir).st_mode), stat.S_IMODE(os.stat(WRITER).st_mode)
    os.chmod(s.dir, dmode | 0o001)
    os.chmod(WRITER, 0o666)
    try:
        got = as_nobody(WRITE, WRITER, "intruder", "0", P)
    finally:
        os.chmod(WRITER, smode)
        os.chmod(s.dir, dmode)
    is_(got, ["closed"], "opened to others, a write from nobody is refused: closed, no answer")
    is_(s.scalar("SELECT count(*) FROM grants WHERE uid = 'intruder'"), 0, "and not run")
    with open(LOG) as f:
        log = f.read()
    ok("refused a connection to the writer's socket from process" in log and
       "of uid 65534" in log, "and the writer says so in its log")
else:
    skip("a write from another user is refused", "needs root to become nobody")

done()
