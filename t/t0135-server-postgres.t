#!/usr/bin/env python3
# script/server --postgres: the ledger on a PostgreSQL cluster of its own
# in the state directory; what a user was granted survives --stop and a
# start without the option (the state directory keeps its engine); --stop
# leaves nothing running, the cluster's server included; a SQLite state
# directory is not silently turned into a PostgreSQL one.
import glob, json, os, re, shutil, subprocess, tempfile, time, urllib.request
from harness import SRC, BUILD, ok, is_, done, free_port, processes_of, diag

if not glob.glob("/usr/lib/postgresql/*/bin/postgres"):
    print("1..0 # SKIP PostgreSQL is not installed")
    raise SystemExit(0)

state = tempfile.mkdtemp(prefix="ld-server-pg-")
port = free_port()
env = dict(os.environ, LUCKYDICE_STATE_DIR=state, LD_SKIP_BUILD="1", LD_BUILDDIR=BUILD)
server = os.path.join(SRC, "script", "server")


def call(method, path, token, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Authorization", "Bearer " + token)
    if method == "POST":
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def postgres_of(directory):
    return [p for p in processes_of(directory)
            if open("/proc/%d/comm" % p).read().strip() in ("postgres", "postmaster")]


try:
    r = subprocess.run([server, "--postgres", "--detach", "--port", str(port)], env=env,
                       capture_output=True, text=True, timeout=180)
    is_(r.returncode, 0, "script/server --postgres --detach returns once healthy") or diag(r.stderr)
    with open(os.path.join(state, "luckydice.json")) as f:
        db = json.load(f)["db"]
    ok(db.startswith("postgresql:") and os.path.join(state, "pg") in db,
       "the config's ledger is the cluster in the state directory (%s)" % db)
    ok(postgres_of(state), "its PostgreSQL server runs")
    tok = re.search(r"API token for curl \(demo-alice\): (\S+)", r.stdout).group(1)
    is_(call("POST", "/api/promotions/demo/visit", tok), (200, {"granted": True, "balance": 1}),
        "a visit is granted")
    st, body = call("POST", "/api/promotions/demo/draws", tok, {"request_id": "pg-roll-0001"})
    is_((st, body["balance"]), (200, 0), "a draw spends the dice")

    r = subprocess.run([server, "--stop"], env=env, capture_output=True, text=True, timeout=120)
    is_(r.returncode, 0, "--stop")
    t0 = time.time()
    while processes_of(state) and time.time() - t0 < 10:
        time.sleep(0.2)
    is_(processes_of(state), [], "--stop leaves nothing running, PostgreSQL included")

    r = subprocess.run([server, "--detach", "--port", str(port)], env=env,
                       capture_output=True, text=True, timeout=180)
    is_(r.returncode, 0, "started again without --postgres")
    st, body = call("GET", "/api/promotions/demo/me", tok)
    ok(st == 200 and len(body["draws"]) == 1 and body["draws"][0]["request_id"] == "pg-roll-0001",
       "the draw is still in the ledger: the state directory kept its engine")

    # The database away: the workers killed meanwhile wait for it instead
    # of failing to start (which would make the supervisor give up), and
    # serve once it is back.
    def fcgi():
        procs = {}
        for pid in processes_of(state):
            try:
                with open("/proc/%d/stat" % pid) as f:
                    st_ = f.read()
            except OSError:
                continue
            comm = st_[st_.index("(") + 1:st_.rindex(")")]
            procs[pid] = (comm, int(st_[st_.rindex(")") + 2:].split()[1]))
        sup = [p for p, (c, pp) in procs.items() if c == "luckydice-fcgi" and pp not in procs]
        return sup, [p for p, (c, pp) in procs.items() if sup and pp == sup[0]]

    pgc = os.path.join(SRC, "script", "pgcluster")
    sup, kids = fcgi()
    subprocess.run([pgc, "stop", os.path.join(state, "pg")], capture_output=True, timeout=60)
    for k in kids:
        os.kill(k, 9)
    time.sleep(8)
    sup2, kids2 = fcgi()
    ok(sup and sup2 == sup and len(kids2) == len(kids),
       "database stopped, %d workers killed: 8 s later the supervisor still runs with %d"
       % (len(kids), len(kids2)))
    st, body = call("POST", "/api/promotions/demo/visit", tok)
    ok(st in (502, 503, 504), "meanwhile a request is refused (%d)" % st)
    subprocess.run([pgc, "start", os.path.join(state, "pg")], capture_output=True, timeout=60)
    t0, st = time.time(), 0
    while time.time() - t0 < 20:
        st, body = call("GET", "/api/promotions/demo/me", tok)
        if st == 200:
            break
        time.sleep(0.2)
    is_(st, 200, "the database back, the workers serve (after %.1f s)" % (time.time() - t0))
    with open(os.path.join(state, "log", "fcgi.log")) as f:
        log = f.read()
    ok("giving up" not in log and "waiting for the database" in log,
       "the workers said they waited for the database; the supervisor never gave up") \
        or diag(log[-2000:])
    subprocess.run([server, "--stop"], env=env, capture_output=True, timeout=120)

    sqlite_state = tempfile.mkdtemp(prefix="ld-server-sq-")
    with open(os.path.join(sqlite_state, "luckydice.json"), "w") as f:
        json.dump({"db": "luckydice.db", "token_secret_file": "token.secret"}, f)
    r = subprocess.run([server, "--postgres", "--detach", "--port", str(port)],
                       env=dict(env, LUCKYDICE_STATE_DIR=sqlite_state),
                       capture_output=True, text=True, timeout=60)
    ok(r.returncode == 2 and "SQLite ledger" in r.stderr,
       "--postgres on a SQLite state directory is refused, with the reason")
    shutil.rmtree(sqlite_state, ignore_errors=True)
finally:
    subprocess.run([server, "--stop"], env=env, capture_output=True, timeout=120)
    shutil.rmtree(state, ignore_errors=True)
done()
