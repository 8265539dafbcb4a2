#!/usr/bin/env python3
# The performance tools (bench/) work and hold what is not a timing:
# the whole-campaign replay checks its invariants (and fails when one
# breaks), and one short bench/run against the real stack and the
# reference responder answers every request with a 2xx, keeps every
# process within 10 MB and leaves a ledger whose wins each have their
# reward.issue event. The speed goals themselves are printed by
# bench/run, not tested: they are not timings a test can hold on a
# shared machine. Not in the sanitizer run (its RSS and its speed are the
# sanitizers').
import os, re, subprocess
from harness import SRC, BUILD, ok, is_, diag, done

ENDPOINTS = ("balance", "visit", "claim", "draws")
if os.environ.get("LD_BENCH_SKIP"):
    print("ok - bench/replay and bench/run # SKIP run once, in the main build")
    print("1..1")
    raise SystemExit(0)

# The replay: a small campaign, every invariant checked.
r = subprocess.run([os.path.join(BUILD, "bench", "replay"), "--participants", "3000"],
                   capture_output=True, text=True, timeout=300)
is_(r.returncode, 0, "bench/replay of 3,000 participants exits 0") or diag(r.stderr)
checks = re.findall(r"^  (ok|FAIL) ", r.stdout, re.M)
ok(len(checks) >= 10 and set(checks) == {"ok"},
   "every one of its %d invariant checks holds" % len(checks)) or diag(r.stdout)
ok("invariants: all hold" in r.stdout, "and it says so")
ok(re.search(r"users in the ledger\s+3000 \(want 3000\)", r.stdout),
   "all 3,000 participants are in its ledger")

# One short round of bench/run: the stack, the reference, wrk.
env = dict(os.environ, LD_BUILDDIR=BUILD, BENCH_DURATION="1", BENCH_ROUNDS="1",
           BENCH_LOG_COMPARE="0", BENCH_ENDPOINTS=" ".join(ENDPOINTS))
r = subprocess.run([os.path.join(SRC, "bench", "run")], env=env, capture_output=True,
                   text=True, timeout=600)
is_(r.returncode, 0, "bench/run (1 s per endpoint) exits 0") or diag(r.stderr[-2000:])
rows = {}
for line in r.stdout.splitlines():
    m = re.match(r"(\w+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)%\s+[\d.]+MB\s+([\d.]+)MB", line)
    if m:
        rows[m.group(1)] = dict(rps=int(m.group(2)), non2xx=int(m.group(5)),
                                rss_max=float(m.group(7)))
is_(sorted(k for k in rows if k in ENDPOINTS + ("reference",)), sorted(ENDPOINTS + ("reference",)),
    "it prints a row for the reference and each endpoint") or diag(r.stdout)
ok(all(rows[k]["rps"] > 0 for k in rows), "each served requests: %s"
   % {k: v["rps"] for k, v in rows.items()})
is_({k: v["non2xx"] for k, v in rows.items() if v["non2xx"]}, {},
    "no endpoint answered anything but 2xx")
big = {k: v["rss_max"] for k, v in rows.items() if v["rss_max"] > 10}
is_(big, {}, "no process of the stack grew past 10 MB")
for e in ENDPOINTS:
    ok(re.search(r"^%s\s.*(pass|MISS) ratio >= \d+%%" % e, r.stdout, re.M),
       "%s: its goal is printed against the reference" % e)
m = re.search(r"ledger after the run: (\d+) fresh visit grants, (\d+) credited invitees,"
              r" (\d+) draws \((\d+) wins, (\d+) reward.issue events in all\)", r.stdout)
ok(m and all(int(x) > 0 for x in m.groups()[:3]),
   "its writes reached the ledger: %s" % (m.group(0) if m else r.stdout[-500:]))
ok(m and m.group(4) == m.group(5), "each win has its reward.issue event")
done()
