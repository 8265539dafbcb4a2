#!/usr/bin/env python3
# script/server --detach serves the page and the API; --stop ends every
# process it started.
import os, re, signal, subprocess, tempfile, threading, time, urllib.request, json, shutil
from harness import SRC, BUILD, ok, is_, done, free_port, running, processes_of

state = tempfile.mkdtemp(prefix="ld-server-")
port = free_port()
env = dict(os.environ, LUCKYDICE_STATE_DIR=state, LD_SKIP_BUILD="1", LD_BUILDDIR=BUILD)
server = os.path.join(SRC, "script", "server")


def get(path, token=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def alive(pid):
    """Running: a zombie has ended (whoever adopted it may reap it late)."""
    return running(pid)


try:
    r = subprocess.run([server, "--detach", "--port", str(port)], env=env,
                       capture_output=True, text=True, timeout=120)
    is_(r.returncode, 0, "script/server --detach returns once healthy")
    ok("http://127.0.0.1:%d/?promo=demo" % port in r.stdout, "it prints the page URL")
    tok = re.search(r"API token for curl \(demo-alice\): (\S+)", r.stdout)
    ok(tok, "it prints a demo token")
    is_(get("/healthz")[0], 200, "/healthz answers")
    st, body = get("/")
    ok(st == 200 and "<html" in body.lower(), "the page is served at /")
    st, body = get("/i/abcdef2345?promo=demo")
    ok(st == 200 and "<html" in body.lower(), "an invite link serves the page")
    st, body = get("/api/promotions/demo/balance", tok.group(1) if tok else None)
    is_((st, json.loads(body)), (200, {"balance": 0}), "the API answers with the demo token")
    st, body = get("/api/promotions/lucky-dice-2024/me", tok.group(1) if tok else None)
    ok(st == 200 and json.loads(body)["promotion"]["first_day"] == "2024-07-08",
       "Lucky Dice 2024 is loaded")

    pids = {}
    for name in ("nginx", "fcgi", "redis"):
        with open(os.path.join(state, name + ".pid")) as f:
            pids[name] = int(f.read().strip())
    children = subprocess.run(["pgrep", "-P", str(pids["fcgi"])], capture_output=True,
                              text=True).stdout.split()
    nginx_workers = subprocess.run(["pgrep", "-P", str(pids["nginx"])], capture_output=True,
                                   text=True).stdout.split()
    all_pids = list(pids.values()) + [int(p) for p in children + nginx_workers]
    ok(len(children) >= 1, "FastCGI workers run under the supervisor (%d)" % len(children))

    # A worker that dies is replaced at once.
    os.kill(int(children[0]), 9)
    time.sleep(0.5)
    now = subprocess.run(["pgrep", "-P", str(pids["fcgi"])], capture_output=True,
                         text=True).stdout.split()
    ok(len(now) == len(children) and children[0] not in now,
       "a worker killed with SIGKILL is replaced within 0.5 s")
    all_pids += [int(p) for p in now]
    is_(get("/healthz")[0], 200, "and the service answers")

    r = subprocess.run([server, "--stop"], env=env, capture_output=True, text=True, timeout=60)
    is_(r.returncode, 0, "script/server --stop succeeds")
    time.sleep(0.3)
    is_([p for p in all_pids if alive(p)], [], "every process it started has ended")
    is_(processes_of(state), [], "no process with the state directory on its command line is left")
    try:
        get("/healthz")
        ok(False, "the port is closed")
    except OSError:
        ok(True, "the port is closed")

    # In the foreground, Ctrl-C (SIGINT to the script) stops everything.
    # Pressed once the script says so: bash runs its trap only after the
    # command in hand, and on a loaded machine the start (or the stop of
    # a start still running) can take longer than this test waits.
    # SIGINT as a terminal leaves it: a suite started in the background
    # inherits it ignored, and bash cannot trap a signal ignored at entry.
    fg = subprocess.Popen([server, "--port", str(port)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    ready = threading.Event()

    def watch():
        for line in fg.stdout:  # to the end, so the script never blocks on the pipe
            if line.startswith("Ctrl-C stops it."):
                ready.set()
    threading.Thread(target=watch, daemon=True).start()
    ok(ready.wait(120) and get("/healthz")[0] == 200,
       "a foreground script/server says when it is ready, and it is")
    with open(os.path.join(state, "fcgi.pid")) as f:
        sup = int(f.read().strip())
    t0 = time.monotonic()
    fg.send_signal(2)
    # The stop gives each of nginx, the supervisor and Redis up to 5 s
    # before SIGKILL; a suite running in parallel has made it take over
    # 30 s. A stop that never comes still fails, with what it left.
    try:
        fg.wait(timeout=120)
    except subprocess.TimeoutExpired:
        pass
    took = time.monotonic() - t0
    time.sleep(0.3)
    ok(not alive(sup) and fg.returncode == 0,
       "Ctrl-C on a foreground script/server stops it (%.1f s)" % took) or \
        print("# script/server: returncode %r, supervisor %s" %
              (fg.poll(), "alive" if alive(sup) else "gone"))
finally:
    subprocess.run([server, "--stop"], env=env, capture_output=True, timeout=60)
    shutil.rmtree(state, ignore_errors=True)
done()
