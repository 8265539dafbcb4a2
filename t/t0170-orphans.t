#!/usr/bin/env python3
# Children end with their supervisor. After kill -9 of luckydice-fcgi its
# workers, writer and checkpointer end too, within a short wait: the
# kernel tells them (PR_SET_PDEATHSIG), as the supervisor cannot. And
# script/server: after such a kill, a new --detach refuses to start beside
# what is left of the old run (its nginx and Redis) and says so; --stop
# then leaves no process of the state directory running, Redis included.
import os, shutil, signal, subprocess, tempfile, time
from harness import SRC, BUILD, ok, is_, done, diag, free_port, running, processes_of

state = tempfile.mkdtemp(prefix="ld-orphans-")
env = dict(os.environ, LUCKYDICE_STATE_DIR=state, LD_SKIP_BUILD="1", LD_BUILDDIR=BUILD)
server = os.path.join(SRC, "script", "server")


def pidfile(name):
    with open(os.path.join(state, name + ".pid")) as f:
        return int(f.read().strip())


def children(pid):
    return [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                           text=True).stdout.split()]


def run(*args):
    return subprocess.run([server] + list(args), env=env, capture_output=True, text=True,
                          timeout=120)


try:
    r = run("--detach", "--port", str(free_port()))
    is_(r.returncode, 0, "script/server --detach starts a stack") or diag(r.stderr)
    sup, nginx, redis = pidfile("fcgi"), pidfile("nginx"), pidfile("redis")
    kids = children(sup)
    everything = [sup, nginx, redis] + kids + children(nginx)
    ok(len(kids) >= 3, "the supervisor has its children (%d)" % len(kids))
    ok({sup, nginx, redis} | set(kids) <= set(processes_of(state)),
       "each is found by the state directory on its command line")

    os.kill(sup, signal.SIGKILL)
    for _ in range(30):
        if not any(running(k) for k in kids):
            break
        time.sleep(0.1)
    is_([k for k in kids if running(k)], [],
        "kill -9 of the supervisor: none of its children is left after a short wait")

    r = run("--detach", "--port", str(free_port()))
    ok(r.returncode != 0 and "processes of an earlier run still use" in r.stderr,
       "a new --detach refuses to start beside what is left of the old run: %s"
       % r.stderr.strip().splitlines()[-1:])
    ok(running(redis), "and leaves the old Redis to --stop")

    r = run("--stop")
    is_(r.returncode, 0, "script/server --stop succeeds") or diag(r.stderr)
    time.sleep(0.3)
    is_(processes_of(state), [], "no process of the state directory is left")
    is_([p for p in everything if running(p)], [],
        "none of the processes it started either (nginx's workers, Redis)")
finally:
    subprocess.run([os.path.join(SRC, "script", "stack"), "stop", state], capture_output=True,
                   timeout=60)
    shutil.rmtree(state, ignore_errors=True)
done()
