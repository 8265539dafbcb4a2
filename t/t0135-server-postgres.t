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
