"""clusterlib.py - what the drills (t09xx) share: a Cluster (script/cluster:
a front nginx over several application hosts, a PostgreSQL primary with a
synchronous streaming standby, one shared Redis) in a temporary directory;
requests through the front or straight to one host; the ledger read on
whichever server is the primary; parts killed with SIGKILL and brought
back; a mixed load that keeps every answer it saw; and the checks that
every 2xx is in the ledger and that the invariants hold.

A drill prints what it lost (it must be nothing) and how long each gap
was as diag lines; it asserts only generous bounds on time, never a
threshold a busy machine could miss.
"""
import atexit
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from harness import BUILD, SRC, Response, bail, diag, is_, ok, sql_bind


def skip_all(why):
    print("1..0 # SKIP " + why, flush=True)
    sys.exit(0)


def need_cluster():
    """Skips the whole test where a drill cannot or should not run: in the
    sanitizer copy of the suite (LD_DRILLS_SKIP: the drills run once, in
    the main build), or without PostgreSQL."""
    if os.environ.get("LD_DRILLS_SKIP"):
        skip_all("the drills run once, in the main build")
    if not any(os.path.isdir(os.path.join("/usr/lib/postgresql", v, "bin"))
               for v in (os.listdir("/usr/lib/postgresql")
                         if os.path.isdir("/usr/lib/postgresql") else [])):
        skip_all("PostgreSQL is not installed (Debian package postgresql)")


def _base_dir():
    """Where the cluster's directory goes: $TMPDIR, unless the postgres
    user (as which PostgreSQL runs under root) cannot pass through it."""
    tmp = tempfile.gettempdir()
    if os.getuid() == 0 and subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", tmp],
                                           capture_output=True).returncode != 0:
        tmp = "/tmp"
    return tmp


def pids_of_tree(root):
    """root and all its descendants (from /proc), root first."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] != "Z"


def read_pid(path):
    with open(path) as f:
        return int(f.readline().split()[0])


class Cluster:
    """A running cluster (script/cluster start) in its own temporary
    directory, stopped when the test exits."""

    def __init__(self, hosts=3, workers=2, promos=()):
        need_cluster()
        self.dir = tempfile.mkdtemp(prefix="ld-cluster-", dir=_base_dir())
        os.chmod(self.dir, 0o711)
        atexit.register(self.stop)
        args = [os.path.join(SRC, "script", "cluster"), "start", self.dir, "--hosts", str(hosts),
                "--workers", str(workers)]
        if os.environ.get("LD_CLUSTER_NET"):
            args += ["--net", os.environ["LD_CLUSTER_NET"]]
        t0 = time.monotonic()
        r = subprocess.run(args, env=dict(os.environ, LD_BUILDDIR=BUILD), capture_output=True,
                           text=True, timeout=300)
        if r.returncode != 0:
            diag(r.stderr)
            self.dump_logs()
            bail("the cluster did not start: " + r.stderr.strip().splitlines()[-1:][0]
                 if r.stderr.strip() else "the cluster did not start")
        with open(os.path.join(self.dir, "cluster.json")) as f:
            self.info = json.load(f)
        self.hosts = self.info["hosts"]
        self.front = self.info["front"]
        self.primary = "pga"
        diag("cluster: %d hosts, %s network, started in %.0f s"
             % (len(self.hosts), self.info["net"], time.monotonic() - t0))
        for p in promos:
            self.load_promo(p)

    # -- the parts --
    def host(self, i):
        return self.hosts[i]

    def env(self, i=0):
        return dict(os.environ, LUCKYDICE_CONFIG=os.path.join(self.hosts[i]["dir"],
                                                                "luckydice.json"))

    def in_host(self, i, argv):
        """argv run in host i's place (its network namespace, if any)."""
        ns = self.hosts[i]["netns"]
        return (["ip", "netns", "exec", ns] if ns else []) + argv

    def pg(self, name):
        return next(p for p in self.info["pg"] if p["name"] == name)

    def standby(self):
        return "pgb" if self.primary == "pga" else "pga"

    def host_pids(self, i):
        """The processes of host i's stack: nginx and its workers, the
        FastCGI supervisor and its children."""
        pids = []
        for name in ("nginx.pid", "fcgi.pid"):
            path = os.path.join(self.hosts[i]["dir"], name)
            if os.path.exists(path):
                pids += pids_of_tree(read_pid(path))
        return [p for p in pids if alive(p)]

    def kill_host(self, i):
        """kill -9 of host i's whole stack at once; returns when all of it
        is gone, with the instant the signals were sent in killed_at."""
        pids = self.host_pids(i)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.killed_at = time.monotonic()
        for _ in range(100):
            if not any(alive(p) for p in pids):
                break
            time.sleep(0.05)
        for name in ("nginx.pid", "fcgi.pid"):
            try:
                os.unlink(os.path.join(self.hosts[i]["dir"], name))
            except FileNotFoundError:
                pass
        return pids

    def start_host(self, i):
        """Starts host i's stack again (script/stack start, its config
        kept)."""
        h = self.hosts[i]
        r = subprocess.run(self.in_host(i, [
            os.path.join(SRC, "script", "stack"), "start", h["dir"], str(h["port"]),
            "--workers", str(self.info["workers"]), "--listen", h["listen"],
            "--real-ip-from", self.info["front_from"]]),
            env=dict(os.environ, LD_BUILDDIR=BUILD), capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("host %s did not start again: %s" % (h["name"], r.stderr))

    def pg_pids(self, name):
        """The processes of the PostgreSQL server name (pga, pgb)."""
        path = os.path.join(self.pg(name)["dir"], "data", "postmaster.pid")
        if not os.path.exists(path):
            return []
        return [p for p in pids_of_tree(read_pid(path)) if alive(p)]

    def kill_pg(self, name):
        """kill -9 of every process of server name at once (the machine
        it ran on gone); returns when all of it is gone, with the instant
        the signals were sent in killed_at."""
        pids = self.pg_pids(name)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.killed_at = time.monotonic()
        for _ in range(100):
            if not any(alive(p) for p in pids):
                break
            time.sleep(0.05)
        return pids

    def promote(self):
        """Promotes the standby (script/cluster promote): it becomes the
        primary the tests read."""
        r = subprocess.run([os.path.join(SRC, "script", "cluster"), "promote", self.dir],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("promote: " + r.stderr)
        self.primary = r.stdout.strip()
        return self.primary

    def rejoin(self):
        """Makes the former primary the new one's synchronous standby
        (script/cluster rejoin: pg_rewind); returns its name."""
        r = subprocess.run([os.path.join(SRC, "script", "cluster"), "rejoin", self.dir],
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            raise RuntimeError("rejoin: " + r.stderr)
        return r.stdout.strip()

    def redis_pid(self):
        return read_pid(os.path.join(self.info["redis"]["dir"], "redis.pid"))

    def start_redis(self):
        """Starts Redis again where it was (empty: it keeps no data)."""
        rd = self.info["redis"]
        ns = ["ip", "netns", "exec", rd["netns"]] if rd["netns"] else []
        subprocess.run(ns + ["redis-server", "--bind", rd["addr"], "--port", str(rd["port"]),
                             "--protected-mode", "no", "--save", "", "--appendonly", "no",
                             "--daemonize", "yes", "--pidfile",
                             os.path.join(rd["dir"], "redis.pid"), "--logfile",
                             os.path.join(rd["dir"], "redis.log"), "--dir", rd["dir"]],
                       check=True, capture_output=True, timeout=30)
        for _ in range(100):
            if self.redis_cli("PING") == "PONG":
                return
            time.sleep(0.1)
        raise RuntimeError("redis did not start again")

    def redis_cli(self, *args):
        rd = self.info["redis"]
        return subprocess.run(["redis-cli", "-h", rd["addr"], "-p", str(rd["port"])] +
                              [str(a) for a in args], capture_output=True, text=True,
                              timeout=10).stdout.strip()

    def stop(self):
        if not self.dir:
            return
        subprocess.run([os.path.join(SRC, "script", "cluster"), "stop", self.dir],
                       capture_output=True, timeout=120)
        self._check_sanitizers()
        if os.environ.get("LD_KEEP_TMP"):
            diag("kept " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def _check_sanitizers(self):
        """A sanitizer report in a host's log fails the test."""
        for h in self.info["hosts"] if hasattr(self, "info") else []:
            p = os.path.join(h["dir"], "log", "fcgi.log")
            if not os.path.exists(p):
                continue
            with open(p, errors="replace") as f:
                text = f.read()
            for word in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                if word in text:
                    ok(False, "host %s's log has a sanitizer report (%s)" % (h["name"], word))
                    diag(text[text.index(word) - 200:][:3000])
                    break

    def dump_logs(self, lines=30):
        for rel in ["front/error.log", "pga/postgresql.log", "pgb/postgresql.log",
                    "redis/redis.log"] + ["h%d/log/fcgi.log" % (i + 1) for i in range(9)] + \
                   ["h%d/nginx-error.log" % (i + 1) for i in range(9)]:
            p = os.path.join(self.dir, rel)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    diag("--- %s\n%s" % (rel, "".join(f.readlines()[-lines:])))

    # -- commands --
    def ctl(self, *args, host=0, check=True):
        r = subprocess.run([os.path.join(BUILD, "luckydicectl")] + [str(a) for a in args],
                           env=self.env(host), capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError("luckydicectl %s: %s" % (" ".join(map(str, args)), r.stderr))
        return r

    def load_promo(self, definition):
        path = os.path.join(self.dir, definition["id"] + ".json")
        with open(path, "w") as f:
            json.dump(definition, f, ensure_ascii=False)
        self.ctl("promo", "load", path)

    def tokens(self, *uids):
        out = []
        for k in range(0, len(uids), 2000):
            out += self.ctl("token", *uids[k:k + 2000]).stdout.split()
        return out

    def token(self, uid):
        return self.tokens(uid)[0]

    def edit_configs(self, host=None, **changes):
        """Changes keys of every host's luckydice.json, or of host number
        host's alone (programs read it when they start: the dispatcher at
        each run)."""
        for h in self.hosts if host is None else [self.hosts[host]]:
            path = os.path.join(h["dir"], "luckydice.json")
            with open(path) as f:
                cfg = json.load(f)
            cfg.update(changes)
            with open(path, "w") as f:
                json.dump(cfg, f, indent=2)

    def dispatch(self, i, *args):
        """Starts luckydice-dispatch on host i (a Popen)."""
        return subprocess.Popen(self.in_host(i, [os.path.join(BUILD, "luckydice-dispatch")] +
                                             [str(a) for a in args]),
                                env=self.env(i), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    # -- HTTP --
    def request(self, method, path, body=None, token=None, host=None, headers=None,
                timeout=30):
        """One request on a fresh connection, through the front, or
        straight to host number host."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = json.dumps(body).encode() if body is not None else None
        if data is not None or method == "POST":
            h.setdefault("Content-Type", "application/json")
        if host is None:
            addr, port = "127.0.0.1", self.front["port"]
        else:
            addr, port = self.hosts[host]["addr"], self.hosts[host]["port"]
        c = http.client.HTTPConnection(addr, port, timeout=timeout)
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            return Response(r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace"))
        finally:
            c.close()

    def api(self, method, promo_id, endpoint, body=None, token=None, **kw):
        return self.request(method, "/api/promotions/%s/%s" % (promo_id, endpoint), body=body,
                            token=token, **kw)

    # -- the ledger, on the primary --
    def psql(self, sql, server=None, rows=False):
        p = self.pg(server or self.primary)
        if rows:
            sql = "SELECT row_to_json(q) FROM (%s) AS q" % sql.rstrip().rstrip(";")
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
                            p["dir"], "-p", str(p["port"]), "-U", "luckydice", "-d", "luckydice",
                            "-c", sql], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("psql: %s: %s" % (sql[:200], r.stderr.strip()))
        if not rows:
            return r.stdout.strip()
        return [tuple(v for _, v in json.loads(line, object_pairs_hook=list))
                for line in r.stdout.splitlines() if line]

    def query(self, sql, *args, server=None):
        """Rows of sql (? for each argument) on the primary (or server)."""
        return self.psql(sql_bind(sql, args), server=server, rows=True)

    def scalar(self, sql, *args, server=None):
        rows = self.query(sql, *args, server=server)
        return rows[0][0] if rows else None


# ---- a mixed load --------------------------------------------------------

class Load:
    """Client threads sending a mixed load through the front: each user's
    first visit, a claim of one of codes (when given) for some, and draws,
    a draw answered 5xx or not at all sent again with its request_id (as
    a client does; every write is idempotent by its key). Every answer is
    kept with its time (monotonic seconds), and the 2xx writes for the
    ledger check."""

    def __init__(self, cluster, promo_id, threads=4, codes=None, users=3000, prefix="u",
                 draws=2, pause=0.0):
        self.c, self.p, self.codes = cluster, promo_id, codes or {}
        self.threads, self.draws, self.pause = threads, draws, pause
        uids = ["%s%d" % (prefix, n) for n in range(users)]
        self.users = list(zip(uids, cluster.tokens(*uids)))
        self.next = 0
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        # (sent, answered, method, endpoint, status or None, Retry-After given)
        self.log = []
        self.acked = {"visit": [], "claim": [], "draw": []}
        self.workers = []

    def _user(self):
        with self.lock:
            if self.next >= len(self.users):
                return None
            u = self.users[self.next]
            self.next += 1
            return u

    def _call(self, method, ep, body, tok):
        t0 = time.monotonic()
        try:
            r = self.c.api(method, self.p, ep, body, token=tok, timeout=20)
        except (OSError, http.client.HTTPException):
            r = None
        with self.lock:
            self.log.append((t0, time.monotonic(), method, ep, r.status if r else None,
                             bool(r and r.headers.get("Retry-After"))))
        return r

    def _write(self, ep, body, tok, tries=20):
        """A write sent again after a 5xx or no answer (Retry-After, at
        most 0.5 s here), until it gets an answer below 500 or tries run
        out."""
        r = None
        for _ in range(tries):
            if self.stop_ev.is_set() and r is not None:
                break
            r = self._call("POST", ep, body, tok)
            if r is not None and r.status < 500:
                return r
            time.sleep(min(0.5, float((r and r.headers.get("Retry-After")) or 0.2)))
        return r

    def _client(self, t):
        rnd = random.Random(t)
        while not self.stop_ev.is_set():
            u = self._user()
            if u is None:
                return
            uid, tok = u
            r = self._write("visit", {}, tok)
            if r and r.status == 200:
                with self.lock:
                    self.acked["visit"].append(uid)
            if self.codes and rnd.random() < 0.5:
                code = rnd.choice(sorted(self.codes))
                r = self._write("invite/claim", {"code": code}, tok)
                if r and r.status == 200:
                    with self.lock:
                        self.acked["claim"].append((uid, self.codes[code]))
            for k in range(self.draws):
                rid = "%s-draw-%d" % (uid, k)
                r = self._write("draws", {"request_id": rid}, tok)
                if r and r.status == 200:
                    prize = r.json["draw"]["prize"]
                    with self.lock:
                        self.acked["draw"].append((uid, rid, r.json["draw"]["id"],
                                                   prize and prize["id"]))
            self._call("GET", "balance", None, tok)
            if self.pause:
                time.sleep(self.pause)

    def start(self):
        self.workers = [threading.Thread(target=self._client, args=(t,), daemon=True)
                        for t in range(self.threads)]
        for w in self.workers:
            w.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for w in self.workers:
            w.join(120)

    # -- what the clients saw --
    def statuses(self, since=None, until=None, method=None):
        """{status: count} of the answers started in [since, until)."""
        out = {}
        for t0, _, m, _, st, _ in self.log:
            if (since is None or t0 >= since) and (until is None or t0 < until) and \
                    (method is None or m == method):
                out[st] = out.get(st, 0) + 1
        return out

    def first_ok(self, after, method="POST"):
        """When the first 2xx of method sent after the instant after was
        answered (None: none)."""
        ts = [t1 for t0, t1, m, _, st, _ in self.log
              if t0 >= after and m == method and st is not None and 200 <= st < 300]
        return min(ts) if ts else None

    def longest_gap(self, since, until, method=None):
        """The longest time in [since, until] without a 2xx answer (of
        method), in seconds."""
        ts = sorted(t1 for t0, t1, m, _, st, _ in self.log
                    if st is not None and 200 <= st < 300 and since <= t1 <= until and
                    (method is None or m == method))
        edges = [since] + ts + [until]
        return max(b - a for a, b in zip(edges, edges[1:]))

    def count(self):
        return len(self.log)


# ---- the ledger's checks -------------------------------------------------

def check_acked(c, pid, acked):
    """Every write a client saw answered 2xx is in the ledger (on the
    primary now): returns how many were missing (0)."""
    visits = set(r[0] for r in c.query("SELECT uid FROM grants WHERE promo=? AND reason='visit'",
                                       pid))
    lost_v = [u for u in acked["visit"] if u not in visits]
    is_(lost_v[:10], [], "every visit answered 200 (%d) has its visit grant" % len(acked["visit"]))
    invites = dict(c.query("SELECT invitee, inviter FROM invites WHERE promo=?", pid))
    lost_c = [x for x in acked["claim"] if invites.get(x[0]) != x[1]]
    is_(lost_c[:10], [], "every claim answered 200 (%d) has its invites row with its inviter"
        % len(acked["claim"]))
    draws = {(u, q): (i, z) for u, q, i, z in
             c.query("SELECT uid, request_id, id, prize FROM draws WHERE promo=?", pid)}
    lost_d = [d for d in acked["draw"] if draws.get((d[0], d[1])) != (d[2], d[3])]
    is_(lost_d[:10], [], "every draw answered 200 (%d) is in the ledger with its id and prize"
        % len(acked["draw"]))
    return len(lost_v) + len(lost_c) + len(lost_d)


def check_invariants(c, pid, cap=None, stocks=None):
    """The ledger's invariants for promotion pid: one visit grant per
    user, invites credited once each and inviters within cap, grants and
    balances agree, draws = dice spent, wins within stocks ({prize:
    daily stock}) and equal to the stock taken, one reward.issue per win."""
    def none(sql, desc):
        rows = c.query(sql, *([pid] * sql.count("?")))
        is_(rows[:5], [], desc)

    none("SELECT uid FROM grants WHERE promo=? AND reason='visit' GROUP BY uid HAVING count(*) > 1",
         "invariant 1: one visit grant per user")
    none("SELECT uid FROM grants WHERE promo=? AND reason='invitee' GROUP BY uid"
         " HAVING count(*) > 1", "invariant 2: one invitee credit per invitee")
    none("SELECT ref FROM grants WHERE promo=? AND reason='inviter' GROUP BY ref"
         " HAVING count(*) > 1", "invariant 2: one inviter grant per invitee")
    if cap is not None:
        none("SELECT uid FROM grants WHERE promo=? AND reason='inviter' GROUP BY uid"
             " HAVING count(*) > %d" % cap, "invariant 2: no inviter past the cap of %d" % cap)
    none("SELECT b.uid FROM balances b WHERE b.promo=? AND b.invites_credited <> (SELECT count(*)"
         " FROM invites i WHERE i.promo=b.promo AND i.inviter=b.uid AND i.inviter_granted=1)",
         "invariant 2: each inviter's counter equals their invites that granted")
    none("SELECT uid FROM balances b WHERE promo=? AND (spent < 0 OR granted < spent OR granted <>"
         " (SELECT coalesce(sum(amount), 0) FROM grants g WHERE g.promo=b.promo AND g.uid=b.uid))",
         "invariant 3: granted = sum of grants >= spent >= 0")
    none("SELECT uid FROM balances b WHERE promo=? AND spent <> (SELECT count(*) FROM draws d"
         " WHERE d.promo=b.promo AND d.uid=b.uid)", "invariant 3: draws = dice spent, per user")
    for prize, stock in sorted((stocks or {}).items()):
        none("SELECT day, count(*) FROM draws WHERE promo=? AND prize = '%s' GROUP BY day"
             " HAVING count(*) > %d" % (prize, stock),
             "invariant 4: %s won at most %d times a day" % (prize, stock))
    none("SELECT s.day, s.prize FROM stock s WHERE s.promo=? AND s.taken <> (SELECT count(*)"
         " FROM draws d WHERE d.promo=s.promo AND d.day=s.day AND d.prize=s.prize)",
         "invariant 4: stock taken = wins")
    none("SELECT d.id FROM draws d WHERE d.promo=? AND d.prize IS NOT NULL AND (SELECT count(*)"
         " FROM outbox o WHERE o.kind='reward.issue' AND o.draw_id = d.id) <> 1",
         "every win has exactly one reward.issue event")
    none("SELECT o.key FROM outbox o WHERE o.promo=? AND o.kind='reward.issue' AND NOT EXISTS"
         " (SELECT 1 FROM draws d WHERE o.draw_id = d.id AND d.prize IS NOT NULL)",
         "no reward.issue without a win")


def fmt_statuses(st):
    return ", ".join("%s: %d" % (k if k is not None else "no answer", v)
                     for k, v in sorted(st.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))
