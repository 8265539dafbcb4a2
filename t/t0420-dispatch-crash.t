#!/usr/bin/env python3
# luckydice-dispatch under crashes and overlap: kill -9 in the middle of a
# batch loses nothing (the lease runs out, the rows go again with the same
# key); two dispatchers started at once deliver each event once.
import os, re, signal, subprocess, time
from collections import Counter
from harness import BACKEND, ok, is_, done, diag, BUILD
from dispatchlib import Receiver, stack_for, make_wins, dispatch, dispatch_until_done

P = "t-crash"
rv = Receiver("slow", delay=0.2)
s = stack_for(rv, P, dispatch={"concurrency": 2, "batch": 40, "lease_seconds": 3})
make_wins(s, P, ["k%02d" % i for i in range(30)])
events = {k for (k,) in s.query("SELECT key FROM outbox")}
is_(len(events), 60, "30 wins wrote 60 events")

# kill -9 while the first batch of 40 is being sent (2 at a time, 0.2 s each).
p = subprocess.Popen([os.path.join(BUILD, "luckydice-dispatch")], env=s.env,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
end = time.time() + 10
while len(rv.requests()) < 6 and time.time() < end:
    time.sleep(0.05)
p.send_signal(signal.SIGKILL)
p.wait()
killed_at = time.time()
sent_before = set(rv.keys())
ok(len(sent_before) >= 6, "the receiver got %d events before the kill" % len(sent_before))
leased = s.scalar("SELECT count(*) FROM outbox WHERE state = 'pending' AND lease_until > ?",
                  int(time.time() * 1000))
is_(leased, 40, "the killed run's batch of 40 is still leased")
is_(s.scalar("SELECT count(*) FROM outbox WHERE state = 'delivered'"), 0,
    "nothing was marked delivered (outcomes are recorded after the batch)")

# A run while the lease holds: the lock was freed by the kill (on
# PostgreSQL there is none), the leased rows are left alone, the other 20
# go.
rv.mode("ok")
r = dispatch(s)
is_(r.returncode, 0, "the next run gets the lock (kill -9 released it)" if BACKEND == "sqlite"
    else "the next run exits 0")
leased_keys = {k for (k,) in s.query("SELECT key FROM outbox WHERE state = 'pending'")}
is_(len(leased_keys), 40, "it sent only the 20 unleased events")
ok(not (leased_keys & set(rv.keys({"ok"}))), "none of the leased ones")

# After the lease: everything goes, the repeats with their keys.
time.sleep(max(0, killed_at + 3.2 - time.time()))
r = dispatch_until_done(s)
is_(r.returncode, 0, "after the lease a run exits 0")
is_(s.query("SELECT state, count(*) FROM outbox GROUP BY state"), [("delivered", 60)],
    "all 60 events are delivered: nothing lost")
is_(set(rv.keys()), events, "the receiver saw exactly the set of events")
c = Counter(rv.keys())
repeats = {k for k, n in c.items() if n > 1}
ok(repeats and repeats <= sent_before,
   "the repeats (%d) are the events sent before the kill" % len(repeats))
ok(all(c[k] == 2 for k in repeats), "each sent twice, with the same key both times")

# Two dispatchers started at the same moment: each event delivered once.
# On SQLite one runs and the other finds it running; on PostgreSQL both
# run, in batches of 5, and share the events.
make_wins(s, P, ["m%02d" % i for i in range(20)])
new = {k for (k,) in s.query("SELECT key FROM outbox WHERE state = 'pending'")}
rv.mode("slow", delay=0.05 if BACKEND == "sqlite" else 0.1)
n0 = len(rv.requests())
args = [] if BACKEND == "sqlite" else ["--batch", "5"]
procs = [subprocess.Popen([os.path.join(BUILD, "luckydice-dispatch")] + args, env=s.env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
         for _ in range(2)]
outs = [pr.communicate(timeout=60) for pr in procs]
is_([pr.returncode for pr in procs], [0, 0], "both runs exit 0")
if BACKEND == "sqlite":
    is_(sorted("another dispatcher is running" in o for o, _ in outs), [False, True],
        "one ran, the other found it running")
else:
    shares = [int(re.match(r"dispatch: delivered (\d+),", o).group(1)) for o, _ in outs]
    ok(all(n > 0 for n in shares) and sum(shares) == 40,
       "both ran and shared the 40 events (%d + %d)" % tuple(shares)) or diag(outs)
got = Counter(q["headers"]["idempotency-key"] for q in rv.requests()[n0:])
is_(set(got), new, "the receiver got all 40 new events")
is_(set(got.values()), {1}, "each exactly once")
is_(s.scalar("SELECT count(*) FROM outbox WHERE state <> 'delivered'"), 0, "all delivered")
done()
