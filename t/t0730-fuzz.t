#!/usr/bin/env python3
# The libFuzzer harnesses (fuzz/), each run for a bounded time
# (LD_FUZZ_SECONDS, 10 by default) over its committed seed corpus: one
# TAP point per harness. `make fuzz` runs them for longer.
import os, shutil, subprocess, tempfile
from harness import SRC, ok, diag, done

NAMES = ("token", "promo", "config", "json-body", "route", "arrival")
seconds = os.environ.get("LD_FUZZ_SECONDS", "10")
why = ("clang is not installed" if not shutil.which("clang") else
       "run once, in the main build" if os.environ.get("LD_FUZZ_SKIP") else None)
if why:
    for n in NAMES:
        print("ok - fuzz-%s # SKIP %s" % (n, why))
    print("1..%d" % len(NAMES))
    raise SystemExit(0)
build = tempfile.mkdtemp(prefix="ld-fuzz-")
for n in NAMES:
    r = subprocess.run([os.path.join(SRC, "fuzz", "run"), "--time", seconds, "--build", build, n],
                       capture_output=True, text=True, timeout=600)
    ok(r.returncode == 0, "%s" % ((r.stdout.strip() or r.stderr.strip()).splitlines()[0]
                                            if (r.stdout or r.stderr) else "fuzz-" + n))
    if r.returncode != 0:
        diag(r.stdout + r.stderr)
        log = os.path.join(build, "fuzz-%s.log" % n)
        if os.path.exists(log):
            diag("".join(open(log, errors="replace").readlines()[-40:]))
if os.environ.get("LD_KEEP_TMP"):
    diag("kept " + build)
else:
    shutil.rmtree(build, ignore_errors=True)
done()
