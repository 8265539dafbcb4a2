#!/usr/bin/env python3
# luckydice-fcgi fails honestly. Against a database whose schema is newer
# than the program (or older), or with children that cannot open what
# they need (a token secret that is not there), it gives up within
# seconds - it stops its children and exits 1, naming the reason - instead
# of starting them again every second for ever; systemd hears STOPPING=1
# and never READY=1. When every child starts, READY=1 comes once /healthz
# answers through both sockets (the workers' and the writer's), and
# STOPPING=1 on SIGTERM. --help says the rule without needing a config.
import json, os, shutil, signal, socket, sqlite3, subprocess, tempfile, time
from harness import BUILD, ok, is_, done, diag, fcgi_request, processes_of

d = tempfile.mkdtemp(prefix="ld-giveup-")
FCGI = os.path.join(BUILD, "luckydice-fcgi")
READS, WRITES = os.path.join(d, "r.sock"), os.path.join(d, "w.sock")
with open(os.path.join(d, "token.secret"), "w") as f:
    f.write("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")


def config(db, **over):
    cfg = {"db": db, "redis": None, "token_secret_file": "token.secret",
           "public_url": "http://127.0.0.1:1", "reward_url": "http://127.0.0.1:9/reward",
           "notify_url": "http://127.0.0.1:9/notify", "workers": 2}
    cfg.update(over)
    path = os.path.join(d, db + ".json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    r = subprocess.run([os.path.join(BUILD, "luckydicectl"), "init"],
                       env=dict(os.environ, LUCKYDICE_CONFIG=path), capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        diag(r.stderr)
    return path


def user_version(db, v=None):
    with sqlite3.connect(os.path.join(d, db)) as c:
        if v is not None:
            c.execute("PRAGMA user_version = %d" % v)
        return c.execute("PRAGMA user_version").fetchone()[0]


class Notify:
    """A datagram socket standing for systemd's NOTIFY_SOCKET."""

    def __init__(self):
        self.path = os.path.join(d, "notify.sock")
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def next(self, seconds):
        """The next message, or None after seconds."""
        self.sock.settimeout(seconds)
        try:
            return self.sock.recv(4096).decode()
        except socket.timeout:
            return None

    def close(self):
        self.sock.close()
        os.unlink(self.path)


def start(cfg, notify):
    return subprocess.Popen([FCGI, "--config", cfg, "--socket", READS, "--write-socket", WRITES],
                            env=dict(os.environ, NOTIFY_SOCKET=notify.path),
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def gives_up(name, cfg, reason, not_reason=None):
    """cfg's instance gives up: exits 1 within seconds, saying reason."""
    n = Notify()
    t0 = time.monotonic()
    p = start(cfg, n)
    try:
        _, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        _, err = p.communicate()
    took = time.monotonic() - t0
    said = []
    while (m := n.next(0.2)) is not None:
        said.append(m)
    n.close()
    is_(p.returncode, 1, "%s: luckydice-fcgi exits 1" % name) or diag(err)
    ok(took < 10, "%s: within seconds (%.1f s), not respawning for ever" % (name, took))
    last = [l for l in err.splitlines() if "giving up" in l]
    ok(len(last) == 1 and reason in last[0] and "failed to start 5 times within 30 s" in last[0],
       "%s: its last word names the rule and the reason: %s" % (name, last[-1] if last else err))
    if not_reason:
        ok(not_reason not in err, "%s: and not '%s'" % (name, not_reason))
    ok(not any("READY=1" in m for m in said) and any("STOPPING=1" in m for m in said),
       "%s: systemd hears STOPPING=1, never READY=1: %r" % (name, said))
    time.sleep(0.3)
    is_(processes_of(d), [], "%s: no child is left" % name)
    ok(not os.path.exists(READS) and not os.path.exists(WRITES),
       "%s: and its sockets are gone" % name)


# --help without any config, and the rule in it.
r = subprocess.run([FCGI, "--help"], env=dict(os.environ, LUCKYDICE_CONFIG="/nonexistent"),
                   capture_output=True, text=True, timeout=10)
words = " ".join(r.stdout.split())
ok(r.returncode == 0 and "exit status: 0 stopped" in words and "1 gave up" in words and
   "fail to start 5 times within 30 seconds" in words,
   "--help needs no config and says the rule and the exit codes")
r = subprocess.run([FCGI, "--version"], capture_output=True, text=True, timeout=10)
ok(r.returncode == 0 and r.stdout.startswith("luckydice-fcgi "), "--version: %s" % r.stdout.strip())

# A schema newer than the program's.
cfg = config("newer.db")
want = user_version("newer.db")
user_version("newer.db", want + 2)
gives_up("a newer schema", cfg,
         "schema version %d, newer than this program's %d: upgrade luckydice" % (want + 2, want),
         "luckydicectl init")

# An older one keeps the hint.
cfg = config("older.db")
user_version("older.db", want - 1)
gives_up("an older schema", cfg, "this program needs %d: run 'luckydicectl init'" % want, "newer")

# Children that cannot open what they need: the token secret is missing
# (the supervisor itself reads only the config).
cfg = config("nosecret.db", token_secret_file="missing.secret")
gives_up("a missing token secret", cfg, "cannot open '%s'" % os.path.join(d, "missing.secret"))

# All well: READY=1 once every child is up, and by then /healthz answers
# through the workers' socket and through the writer's.
cfg = config("good.db")
n = Notify()
t0 = time.monotonic()
p = start(cfg, n)
first = n.next(30)
at = time.monotonic() - t0
got = {}
for name, path in (("workers", READS), ("writer", WRITES)):
    try:
        got[name] = fcgi_request(path, "/healthz", timeout=2)[0]
    except OSError as e:
        got[name] = str(e)
is_(first, "READY=1", "READY=1 comes once every child is up (%.2f s)" % at)
is_(got, {"workers": 200, "writer": 200},
    "and /healthz answers at once through the workers' socket and the writer's")
is_(n.next(0.5), None, "READY=1 comes once")
p.send_signal(signal.SIGTERM)
is_(n.next(10), "STOPPING=1", "SIGTERM: STOPPING=1")
try:
    p.wait(30)
except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL)
is_(p.returncode, 0, "and it exits 0") or diag(p.stderr.read())
n.close()

# A child that ends after it was ready is started again at once and
# counted in /metrics.
n = Notify()
p = start(cfg, n)
n.next(30)
kids = subprocess.run(["pgrep", "-P", str(p.pid), "-x", "ld-writer"], capture_output=True,
                      text=True).stdout.split()
if kids:
    os.kill(int(kids[0]), signal.SIGKILL)
text = ""
for _ in range(50):
    time.sleep(0.1)
    try:
        st, text = fcgi_request(READS, "/metrics", timeout=2,
                                params={"LD_METRICS_ALLOWED": "1"})  # as nginx says
    except OSError:
        continue
    if 'luckydice_child_restarts_total{kind="writer"} 1' in text:
        break
ok('luckydice_child_restarts_total{kind="writer"} 1' in text and
   'luckydice_child_restarts_total{kind="worker"} 0' in text,
   "a writer killed is started again and counted: /metrics has child restarts by kind") or diag(text)
is_(n.next(0.5), None, "without a second READY=1")
p.send_signal(signal.SIGTERM)
p.wait(30)
n.close()
shutil.rmtree(d, ignore_errors=True)
done()
