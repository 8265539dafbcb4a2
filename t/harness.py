"""harness.py - what the script tests share: TAP output, a real luckydice
stack (Redis, FastCGI workers, nginx) started through script/stack in a
temporary directory on a free loopback port, an HTTP client, and read-only
access to the ledger.

Every test file is a Python program printing TAP; automake's TAP driver
counts the points.
"""
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import http.client
from datetime import datetime, timedelta, timezone

SRC = os.environ.get("LD_SRCDIR") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("LD_BUILDDIR") or SRC

# The ledger's engine for this run: "sqlite" (a file in the stack's
# directory) or "pg" (a database of its own in a PostgreSQL cluster:
# LD_TEST_PG_DIR's, which script/test starts, else one started here).
BACKEND = os.environ.get("LD_TEST_DB", "sqlite")

# ---- PostgreSQL --------------------------------------------------------

_pg_dir = None


def pg_dir():
    """The socket directory of the test cluster, started on first use
    (script/pgcluster) unless LD_TEST_PG_DIR names a running one."""
    global _pg_dir
    if _pg_dir:
        return _pg_dir
    given = os.environ.get("LD_TEST_PG_DIR")
    if given:
        _pg_dir = given
        return _pg_dir
    _pg_dir = pg_cluster()
    return _pg_dir


def pg_cluster():
    """A PostgreSQL cluster of the caller's own, started now in a new
    temporary directory (script/pgcluster) and stopped at exit: its
    socket directory. A test that stops or restarts the server uses
    one, not the cluster other tests share."""
    d = tempfile.mkdtemp(prefix="ld-pg-")
    r = subprocess.run([os.path.join(SRC, "script", "pgcluster"), "start", d],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        bail("cannot start PostgreSQL: " + r.stderr.strip())
    atexit.register(lambda: (subprocess.run([os.path.join(SRC, "script", "pgcluster"),
                                             "stop", d, "--immediate"],
                                            capture_output=True, timeout=60),
                             shutil.rmtree(d, ignore_errors=True)))
    return d


def pg_url(dbname, host=None):
    return "postgresql:///%s?host=%s&port=5432&user=luckydice" % (dbname, host or pg_dir())


def sql_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def sql_bind(sql, args):
    """sql with each ? outside quotes replaced by the next argument as a
    literal (the test's own SQL, for psql)."""
    out, it, quote = [], iter(args), None
    for ch in sql:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "?":
            out.append(sql_literal(next(it)))
            continue
        out.append(ch)
    return "".join(out)


def psql(dbname, sql, rows=False, host=None, value=False):
    """Runs sql in database dbname (of the cluster at host, else the
    test cluster); with rows, returns its rows as tuples (JSON types:
    numbers as int, NULL as None); with value, what it printed."""
    if rows:
        sql = "SELECT row_to_json(q) FROM (%s) AS q" % sql.rstrip().rstrip(";")
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                        "-h", host or pg_dir(), "-U", "luckydice", "-d", dbname, "-c", sql],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("psql: %s: %s" % (sql[:200], r.stderr.strip()))
    if value:
        return r.stdout.strip()
    if not rows:
        return None
    return [tuple(v for _, v in json.loads(line, object_pairs_hook=list))
            for line in r.stdout.splitlines() if line]


def sqlite_only(why):
    """On the PostgreSQL run, a test of SQLite's own machinery skips."""
    if BACKEND != "sqlite":
        print("1..0 # SKIP SQLite only: " + why)
        sys.exit(0)


# ---- TAP ---------------------------------------------------------------

_n = 0
_failed = 0


def ok(cond, desc):
    global _n, _failed
    _n += 1
    if not cond:
        _failed += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (_n, desc), flush=True)
    return bool(cond)


def is_(got, want, desc):
    good = ok(got == want, desc)
    if not good:
        diag("got:  %r" % (got,))
        diag("want: %r" % (want,))
    return good


def skip(desc, reason):
    """A test point that cannot run here, and why (TAP's "# skip")."""
    global _n
    _n += 1
    print("ok %d - %s # skip %s" % (_n, desc, reason), flush=True)


def diag(msg):
    for line in str(msg).splitlines():
        print("# " + line, flush=True)


def done():
    print("1..%d" % _n, flush=True)
    sys.exit(1 if _failed else 0)


def bail(msg):
    print("Bail out! " + msg, flush=True)
    sys.exit(2)


# ---- helpers -----------------------------------------------------------

@contextlib.contextmanager
def stopped(pid):
    """The process pid stopped (SIGSTOP) for the with block, and let go on
    (SIGCONT) however the block ends."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def timed(call):
    """call()'s result and the seconds it took."""
    t0 = time.monotonic()
    out = call()
    return out, time.monotonic() - t0


def running(pid):
    """Whether pid is a live process (a zombie is not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] != "Z"


def processes_of(directory):
    """The live processes with a file in directory on their command line
    (a stack's supervisor and its children, nginx's master, Redis)."""
    needle = (directory.rstrip("/") + "/").encode()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if needle in f.read() and running(int(d)):
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def fcgi_request(path, uri, method="GET", timeout=5, params=None):
    """One FastCGI request straight to the socket at path (no nginx):
    the status and the body of the answer. params: more FastCGI
    parameters (names and values under 128 bytes), as nginx would set
    them."""
    import struct

    def record(kind, body):
        return struct.pack("!BBHHBx", 1, kind, 1, len(body), 0) + body

    pairs = {"REQUEST_METHOD": method, "DOCUMENT_URI": uri, "REQUEST_URI": uri,
             "REMOTE_ADDR": "127.0.0.1"}
    pairs.update(params or {})
    params = b""
    for k, v in pairs.items():
        params += bytes([len(k), len(v)]) + k.encode() + v.encode()
    with socket.socket(socket.AF_UNIX) as sk:
        sk.settimeout(timeout)
        sk.connect(path)
        sk.sendall(record(1, struct.pack("!HB5x", 1, 0)) + record(4, params) + record(4, b"")
                   + record(5, b""))
        out, buf = b"", b""
        while True:
            while len(buf) < 8 or len(buf) < 8 + struct.unpack("!H", buf[4:6])[0] + buf[6]:
                chunk = sk.recv(65536)
                if not chunk:
                    raise EOFError("the connection closed before the end of the answer")
                buf += chunk
            kind, clen, plen = buf[1], struct.unpack("!H", buf[4:6])[0], buf[6]
            if kind == 6:
                out += buf[8:8 + clen]
            buf = buf[8 + clen + plen:]
            if kind == 3:
                break
    head, _, body = out.decode("utf-8", "replace").partition("\r\n\r\n")
    status = 200
    for line in head.split("\r\n"):
        if line.lower().startswith("status:"):
            status = int(line.split()[1])
    return status, body


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seoul_today():
    return datetime.now(timezone(timedelta(hours=9))).date()


def promo(pid, days_back=1, days_ahead=30, **over):
    """A promotion definition whose days cover today (Asia/Seoul) unless
    told otherwise; keyword arguments replace top-level fields."""
    today = seoul_today()
    d = {
        "id": pid,
        "name": "test " + pid,
        "time_zone": "Asia/Seoul",
        "first_day": str(today - timedelta(days=days_back)),
        "last_day": str(today + timedelta(days=days_ahead)),
        "grants": {"visit": 1, "inviter": 1, "invitee": 1},
        "invites": {"max_credited_per_inviter": 30, "invitee_new_within_hours": 24},
        "prizes": [],
    }
    d.update(over)
    return d


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.raw = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<%d %r>" % (self.status, self.raw[:200])


class Stack:
    """One running stack in its own temporary directory."""

    def __init__(self, redis=True, rate_limit=False, workers=2, balance_read="ledger",
                 promos=(), extra_config=None, stack_args=(), port=None, pg_host=None):
        """stack_args: more options for script/stack start (--token-links,
        --trust-device-id, --frame-ancestors SOURCES); port: the port to
        use instead of a free one picked here; pg_host: on PostgreSQL,
        the socket directory of the cluster to use (pg_cluster()) instead
        of the test cluster."""
        self.dir = tempfile.mkdtemp(prefix="ld-test-")
        self.port = port or free_port()
        self.pgdb = self.pghost = None
        if BACKEND == "pg":
            self.pghost = pg_host or pg_dir()
            self.pgdb = "ld_" + os.path.basename(self.dir).replace("ld-test-", "").lower()
            self.pgdb = re.sub(r"[^a-z0-9_]", "_", self.pgdb)
            psql("postgres", "CREATE DATABASE %s" % self.pgdb, host=self.pghost)
        self.config = os.path.join(self.dir, "luckydice.json")
        self.env = dict(os.environ, LUCKYDICE_CONFIG=self.config)
        self._write_config(redis, workers, balance_read, extra_config or {})
        self._args = ["--workers", str(workers), "--balance-read", balance_read]
        if not redis:
            self._args.append("--no-redis")
        if rate_limit:
            self._args.append("--rate-limit")
        self._args.extend(stack_args)
        atexit.register(self.stop)
        self.start()
        for p in promos:
            self.load_promo(p)
        self._conn = None

    def start(self):
        """Starts the stack in self.dir (again, after stop_services):
        its config and state are kept."""
        r = subprocess.run([os.path.join(SRC, "script", "stack"), "start", self.dir,
                            str(self.port)] + self._args, env=dict(self.env, LD_BUILDDIR=BUILD),
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            self.dump_logs()
            bail("stack did not start: " + r.stderr.strip())

    def stop_fcgi(self):
        """Stops the FastCGI supervisor and its children only: nginx and
        Redis go on (a restore drill keeps the cache of before)."""
        path = os.path.join(self.dir, "fcgi.pid")
        with open(path) as f:
            pid = int(f.read().strip())
        pids = [pid] + [int(p) for p in subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]
        os.kill(pid, signal.SIGTERM)
        for p in pids:
            for _ in range(100):
                try:
                    os.waitpid(p, os.WNOHANG)
                except ChildProcessError:
                    pass
                try:
                    with open("/proc/%d/stat" % p) as f:
                        if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                            break  # ended, waiting for its reaper
                except OSError:
                    break
                time.sleep(0.1)
        os.unlink(path)

    def start_fcgi(self):
        """Starts the FastCGI supervisor again as script/stack does, and
        waits until /healthz answers through it."""
        workers = self._args[self._args.index("--workers") + 1]
        with open(os.path.join(self.dir, "log", "fcgi.log"), "a") as log:
            p = subprocess.Popen([os.path.join(BUILD, "luckydice-fcgi"), "--socket",
                                  os.path.join(self.dir, "fcgi.sock"), "--write-socket",
                                  os.path.join(self.dir, "fcgi-writes.sock"), "--workers",
                                  workers], env=self.env, stdout=log, stderr=log)
        with open(os.path.join(self.dir, "fcgi.pid"), "w") as f:
            f.write("%d\n" % p.pid)
        for _ in range(100):
            try:
                if self.request("GET", "/healthz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.dump_logs()
        bail("the FastCGI workers did not start again")

    def stop_services(self):
        """Stops nginx, the workers and Redis, keeping the directory."""
        subprocess.run([os.path.join(SRC, "script", "stack"), "stop", self.dir],
                       capture_output=True, timeout=60)

    def edit_config(self, **changes):
        """Changes keys of luckydice.json (None removes one); the programs
        read it when they start."""
        with open(self.config) as f:
            cfg = json.load(f)
        for k, v in changes.items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = v
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=2)

    def _write_config(self, redis, workers, balance_read, extra):
        cfg = {
            "db": pg_url(self.pgdb, self.pghost) if self.pgdb else "luckydice.db",
            "redis": "./redis.sock" if redis else None,
            "token_secret_file": "token.secret",
            "signing_secret_file": "signing.secret",
            "console_secret_file": "console.secret",
            "public_url": "http://127.0.0.1:%d" % self.port,
            "reward_url": "http://127.0.0.1:9/reward",
            "notify_url": "http://127.0.0.1:9/notify",
            "workers": workers,
            "write_workers": 0,
            "balance_read": balance_read,
            "log_level": "info",
        }
        cfg.update(extra)
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=2)

    def stop(self):
        if not self.dir:
            return
        subprocess.run([os.path.join(SRC, "script", "stack"), "stop", self.dir],
                       capture_output=True, timeout=60)
        self._check_sanitizers()
        if self.pgdb and not os.environ.get("LD_KEEP_TMP"):
            try:
                psql("postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.pgdb,
                     host=self.pghost)
            except RuntimeError as e:
                diag(str(e))
        if os.environ.get("LD_KEEP_TMP"):
            diag("kept " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def _check_sanitizers(self):
        """A sanitizer report in the workers' log fails the test (in a
        --enable-sanitizers build a worker that trips one dies)."""
        p = os.path.join(self.dir, "log", "fcgi.log")
        if not os.path.exists(p):
            return
        with open(p, errors="replace") as f:
            text = f.read()
        for word in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if word in text:
                ok(False, "the workers' log has a sanitizer report (%s)" % word)
                diag(text[text.index(word) - 200:][:3000])
                break

    def dump_logs(self):
        for name in ("log/fcgi.log", "nginx-error.log", "log/redis.log"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    diag("--- %s\n%s" % (name, "".join(f.readlines()[-30:])))

    # -- commands --
    def ctl(self, *args, check=True, input=None):
        r = subprocess.run([os.path.join(BUILD, "luckydicectl")] + [str(a) for a in args],
                           env=self.env, capture_output=True, text=True, timeout=120,
                           input=input)
        if check and r.returncode != 0:
            raise RuntimeError("luckydicectl %s: %s" % (" ".join(map(str, args)), r.stderr))
        return r

    def load_promo(self, definition):
        path = os.path.join(self.dir, definition["id"] + ".json")
        with open(path, "w") as f:
            json.dump(definition, f, ensure_ascii=False)
        self.ctl("promo", "load", path)

    def tokens(self, *uids, ttl=None):
        args = ["token"] + (["--ttl", str(ttl)] if ttl else []) + list(uids)
        return self.ctl(*args).stdout.split()

    def token(self, uid):
        return self.tokens(uid)[0]

    # -- HTTP --
    def request(self, method, path, body=None, token=None, headers=None, raw=None):
        """One request on a fresh connection (like a browser's first).
        A POST, or any request with a body, says Content-Type:
        application/json unless headers say otherwise; a header given as
        None is left out."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if isinstance(data, str):
            data = data.encode()
        if data is not None or method == "POST":
            h.setdefault("Content-Type", "application/json")
        h = {k: v for k, v in h.items() if v is not None}
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            return Response(r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace"))
        finally:
            c.close()

    def api(self, method, promo_id, endpoint, body=None, token=None, **kw):
        return self.request(method, "/api/promotions/%s/%s" % (promo_id, endpoint),
                            body=body, token=token, **kw)

    # -- ledger (read only) --
    def db(self):
        return sqlite3.connect("file:%s?mode=ro" % os.path.join(self.dir, "luckydice.db"),
                               uri=True, timeout=10)

    def query(self, sql, *args):
        """Rows of sql (? for each argument) on the ledger, either engine."""
        if self.pgdb:
            return psql(self.pgdb, sql_bind(sql, args), rows=True, host=self.pghost)
        with self.db() as c:
            return c.execute(sql, args).fetchall()

    def execute(self, sql, *args):
        """Runs a statement that changes the ledger behind the service's
        back (a test's own setup), either engine."""
        if self.pgdb:
            return psql(self.pgdb, sql_bind(sql, args), host=self.pghost)
        with contextlib.closing(sqlite3.connect(os.path.join(self.dir, "luckydice.db"),
                                                timeout=10)) as c:
            c.execute(sql, args)
            c.commit()

    @contextlib.contextmanager
    def pg_holding(self, sql, seconds=120):
        """PostgreSQL: another connection's transaction runs sql (a LOCK
        TABLE, a SELECT ... FOR UPDATE) and holds what it took for the with
        block, at most seconds; then it is cancelled and rolled back.
        Yields that connection's backend pid."""
        name = "ld-test-holder-%d" % os.getpid()
        p = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.pghost,
                              "-U", "luckydice", "-d", self.pgdb],
                             env=dict(os.environ, PGAPPNAME=name), stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        p.stdin.write("BEGIN;\n%s;\nSELECT pg_sleep(%d);\nROLLBACK;\n" % (sql, seconds))
        p.stdin.close()
        pid = None
        try:
            for _ in range(300):
                pid = self.scalar("SELECT pid FROM pg_stat_activity WHERE application_name = ?"
                                  " AND query LIKE 'SELECT pg_sleep%'", name)
                if pid or p.poll() is not None:
                    break
                time.sleep(0.05)
            if not pid:
                raise RuntimeError("the holding connection did not start: " + p.stderr.read())
            yield pid
        finally:
            if pid:
                self.scalar("SELECT pg_cancel_backend(?)", pid)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def scalar(self, sql, *args):
        rows = self.query(sql, *args)
        return rows[0][0] if rows else None

    def dump(self, tables=("balances", "grants", "invites", "invite_codes", "draws",
                           "stock", "outbox", "promotions")):
        """The ledger's rows as one text, to compare before and after."""
        if self.pgdb:
            # one psql for all the tables: every row as a JSON object (in
            # its columns' order), each table's rows in a JSON array
            sql = "SELECT json_build_array(%s)" % ", ".join(
                "(SELECT coalesce(json_agg(q ORDER BY q), '[]') FROM %s AS q)" % t
                for t in tables)
            got = json.loads(psql(self.pgdb, sql, host=self.pghost, value=True),
                             object_pairs_hook=list)
            by_table = [[tuple(v for _, v in r) for r in rs] for rs in got]
        else:
            by_table = [self.query("SELECT * FROM %s ORDER BY 1, 2" % t) for t in tables]
        out = []
        for t, rows in zip(tables, by_table):
            out.append("-- " + t)
            out.extend(repr(r) for r in rows)
        return "\n".join(out)

    def ledger_id(self):
        """The ledger id (luckydicectl init makes it, restore renews it)."""
        return self.scalar("SELECT value FROM ledger_meta WHERE key = 'ledger_id'")

    def event_key(self, promo_id, draw_id, what="reward"):
        """The Idempotency-Key of a win's event ("reward" or "notify")."""
        return "%s/%s/draw/%d/%s" % (promo_id, self.ledger_id(), draw_id, what)

    def invite_key(self, promo_id, invitee):
        """The Idempotency-Key of the notify.invite event of an invitee."""
        return "%s/%s/invite/%s/notify" % (promo_id, self.ledger_id(), invitee)

    # -- Redis --
    def cache_key(self, promo_id, uid):
        """The Redis key of a user's balance."""
        return "ld:b:%s:%s:%s" % (self.ledger_id(), promo_id, uid)

    def redis_cli(self, *args):
        return subprocess.run(["redis-cli", "-s", os.path.join(self.dir, "redis.sock")] +
                              [str(a) for a in args], capture_output=True, text=True,
                              timeout=10).stdout.strip()

    def redis_pid(self):
        with open(os.path.join(self.dir, "redis.pid")) as f:
            return int(f.read().strip())

    # -- the supervisor's helpers --
    def socket_holders(self, path):
        """The supervisor's children that hold the listening unix socket
        at path (from /proc/net/unix and their descriptors)."""
        with open(os.path.join(self.dir, "fcgi.pid")) as f:
            sup = int(f.read().strip())
        inode = None
        with open("/proc/net/unix") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 8 and parts[7] == path:
                    inode = parts[6]
        pids = []
        for d in os.listdir("/proc"):
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
                if int(st[st.rindex(")") + 2:].split()[1]) != sup:
                    continue
                links = [os.readlink("/proc/%s/fd/%s" % (d, fd))
                         for fd in os.listdir("/proc/%s/fd" % d)]
            except (OSError, ValueError):
                continue
            if "socket:[%s]" % inode in links:
                pids.append(int(d))
        return pids

    def child(self, name):
        """The pid of the supervisor's one child named name in ps
        (ld-writer, ld-checkpoint)."""
        with open(os.path.join(self.dir, "fcgi.pid")) as f:
            sup = f.read().strip()
        pids = subprocess.run(["pgrep", "-P", sup, "-x", name], capture_output=True,
                              text=True).stdout.split()
        if len(pids) != 1:
            raise RuntimeError("%d children named %s" % (len(pids), name))
        return int(pids[0])

    @contextlib.contextmanager
    def checkpointer_stopped(self, db="luckydice.db"):
        """Stops the checkpointer (SIGSTOP) for the with block, so that the
        WAL cannot start over by itself while the writes pause. Stopped
        between two of its passes, never inside one, where it would hold
        SQLite's checkpoint lock: a passive checkpoint of our own tells."""
        pid = self.child("ld-checkpoint")
        for _ in range(100):
            os.kill(pid, signal.SIGSTOP)
            with contextlib.closing(sqlite3.connect(os.path.join(self.dir, db),
                                                    timeout=0)) as c:
                busy = c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[0]
            if not busy:
                break
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.01)
        else:
            raise RuntimeError("the checkpointer is always in a pass")
        try:
            yield pid
        finally:
            os.kill(pid, signal.SIGCONT)


# ---- the shipped site over TLS -------------------------------------------

def self_signed(directory):
    """A self-signed certificate for luckydice.example, 127.0.0.1 and ::1,
    made with openssl: (cert.pem, key.pem) in directory."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=luckydice.example", "-keyout", key, "-out", cert,
                    "-addext", "subjectAltName=DNS:luckydice.example,IP:127.0.0.1,IP:::1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port_both():
    """A port free on 127.0.0.1 and, when there is one, on ::1."""
    for _ in range(50):
        port = free_port()
        if not has_ipv6_loopback():
            return port
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on both loopbacks")


class Site:
    """The shipped site, nginx/luckydice-site.conf, run by a real nginx in
    front of a Stack's sockets: its listen ports made loopback ports of
    this machine (http_port for 80, https_port for 443, on ::1 too when
    there is an IPv6 loopback), its certificate a self-signed one made
    here, its paths this tree's. knobs replaces the defaults of the
    operator's maps: {"ld_token_links": "true"}. Every line it rewrites
    must be in the site file as shipped, or it bails."""

    def __init__(self, stack, knobs=None, http_port=None, https_port=None, edits=()):
        """edits: more (old, new) replacements of lines of the site file
        (a geo knob's body), each old bailing when it is not there."""
        self.dir = tempfile.mkdtemp(prefix="ld-site-")
        os.chmod(self.dir, 0o755)
        self.http_port = http_port or free_port_both()
        self.https_port = https_port or free_port_both()
        self.ipv6 = has_ipv6_loopback()
        self.cert, self.key = self_signed(self.dir)
        with open(os.path.join(SRC, "nginx", "luckydice-site.conf")) as f:
            self.shipped = f.read()
        v6 = lambda line: line if self.ipv6 else "# (no IPv6 loopback here) " + line
        extra_edits = list(edits)
        edits = [
            ("listen 80;", "listen 127.0.0.1:%d;" % self.http_port),
            ("listen [::]:80;", v6("listen [::1]:%d;" % self.http_port)),
            ("listen 443 ssl http2;", "listen 127.0.0.1:%d ssl http2;" % self.https_port),
            ("listen [::]:443 ssl http2;", v6("listen [::1]:%d ssl http2;" % self.https_port)),
            ("/etc/ssl/luckydice/fullchain.pem", self.cert),
            ("/etc/ssl/luckydice/privkey.pem", self.key),
            ("unix:/run/luckydice/fcgi.sock", "unix:" + os.path.join(stack.dir, "fcgi.sock")),
            ("unix:/run/luckydice/fcgi-writes.sock",
             "unix:" + os.path.join(stack.dir, "fcgi-writes.sock")),
            ("/usr/local/share/luckydice/www", os.path.join(SRC, "www")),
            ("/usr/local/etc/luckydice/nginx/luckydice-locations.conf",
             os.path.join(SRC, "nginx", "luckydice-locations.conf")),
            ("/var/log/nginx/luckydice.access.log", os.path.join(self.dir, "access.log")),
        ]
        edits.extend(extra_edits)
        for name, value in (knobs or {}).items():
            m = re.search(r"map \$\S+ \$%s \{ default ([^;]*); \}" % re.escape(name), self.shipped)
            if not m:
                bail("the shipped site has no map for $%s" % name)
            edits.append((m.group(0), m.group(0).replace(m.group(1), value)))
        conf = self.shipped
        for old, new in edits:
            if old not in conf:
                bail("the shipped site no longer has %r" % old)
            conf = conf.replace(old, new)
        site = os.path.join(self.dir, "site.conf")
        with open(site, "w") as f:
            f.write(conf)
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write("%sworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\n"
                    "events { worker_connections 256; }\nhttp {\n"
                    "  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n"
                    "%s  include %s;\n}\n"
                    % ("user root;\n" if os.getuid() == 0 else "", self.dir, self.dir,
                       "".join("  %s_temp_path %s/%s;\n" % (t, self.dir, t)
                               for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
                       site))
        atexit.register(self.stop)
        self.test = self._nginx("-t")
        if self.test.returncode != 0:
            bail("nginx -t refuses the shipped site: " + self.test.stderr)
        r = self._nginx()
        if r.returncode != 0:
            bail("nginx did not start the shipped site: " + r.stderr)
        for _ in range(100):
            try:
                if self.request("GET", "/healthz").status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            bail("the shipped site does not answer over https")

    def _nginx(self, *args):
        return subprocess.run(["nginx", "-p", self.dir, "-c", self.conf,
                               "-e", os.path.join(self.dir, "error.log")] + list(args),
                              capture_output=True, text=True, timeout=60)

    @property
    def base(self):
        return "https://127.0.0.1:%d" % self.https_port

    def request(self, method, path, body=None, headers=None, tls=True, host="127.0.0.1",
                source=None):
        """One request over https (tls) or plain http, on a fresh
        connection; the certificate is checked against the one made here.
        source: the local address to send from (127.0.0.2: another
        loopback address, which Linux routes)."""
        h = dict(headers or {})
        data = json.dumps(body).encode() if body is not None else None
        if data is not None or method == "POST":
            h.setdefault("Content-Type", "application/json")
        if tls:
            ctx = ssl.create_default_context(cafile=self.cert)
            c = http.client.HTTPSConnection(host, self.https_port, timeout=30, context=ctx,
                                            source_address=(source, 0) if source else None)
        else:
            c = http.client.HTTPConnection(host, self.http_port, timeout=30,
                                           source_address=(source, 0) if source else None)
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            return Response(r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace"))
        finally:
            c.close()

    def stop(self):
        if not self.dir:
            return
        pidfile = os.path.join(self.dir, "nginx.pid")
        if os.path.exists(pidfile):
            self._nginx("-s", "quit")
            for _ in range(50):
                if not os.path.exists(pidfile):
                    break
                time.sleep(0.1)
        if os.environ.get("LD_KEEP_TMP"):
            diag("kept " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
