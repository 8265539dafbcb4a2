#!/usr/bin/env python3
# The journal at campaign load: with the shipped defaults, 10,000 routine
# requests (visits, balance reads, draws: nginx's access log has each)
# write at most 1 % as many lines, so journald's rate limit never drops
# the ones that matter. Those are logged with their syslog priority: a
# refusal (<5>), a slow request (<4>), an error (<3>, its cause on the
# line before); a missing token or a paused promotion is routine.
# "log_sample" logs one routine request in N (<6>). The
# programs prefix their lines only when stderr is not a terminal.
import concurrent.futures, os, pty, re, sqlite3, subprocess, threading, time
from harness import Stack, ok, is_, done, promo, diag, skip, BACKEND, BUILD

P = "t-logvol"
s = Stack(workers=2, promos=[promo(P, prizes=[
    {"id": "coffee", "name": "Coffee", "daily_stock": 100000, "probability": 0.5}])])
LOG = os.path.join(s.dir, "log", "fcgi.log")


def log_size():
    return os.path.getsize(LOG)


def log_since(offset):
    """The lines the workers wrote since offset (a moment for them to
    finish writing first)."""
    time.sleep(0.3)
    with open(LOG, errors="replace") as f:
        f.seek(offset)
        return f.read().splitlines()


start = open(LOG, errors="replace").read()
ok(re.search(r"^<6>luckydice-fcgi: 2 workers on ", start, re.M),
   "the supervisor's start line is info (<6>): its stderr is a file, not a terminal")

# 2,000 participants, five routine requests each: visit, balance, a
# draw (of the one die the visit gave), balance, visit again.
USERS = 2000
uids = ["lv%05d" % i for i in range(USERS)]
toks = s.tokens(*uids)


def participant(tok, i):
    statuses = [s.api("POST", P, "visit", token=tok).status,
                s.api("GET", P, "balance", token=tok).status,
                s.api("POST", P, "draws", {"request_id": "lv-%08d" % i}, token=tok).status,
                s.api("GET", P, "balance", token=tok).status,
                s.api("POST", P, "visit", token=tok).status]
    return statuses


before = log_size()
t0 = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(8) as ex:
    statuses = [st for sts in ex.map(participant, toks, range(USERS)) for st in sts]
secs = time.monotonic() - t0
is_((len(statuses), statuses.count(200)), (10000, 10000),
    "10,000 routine requests, each answered 200 (%.1f s, %.0f/s)" % (secs, 10000 / secs))
lines = log_since(before)
ok(len(lines) <= 100, "they wrote %d journal lines: at most 1 %% of the requests" % len(lines)) or \
    diag("\n".join(lines[:20]))
others = [l for l in lines if not l.startswith("<4>request ")]
is_(others, [], "and any line there is, is a slow request (<4>)")

# A refusal of a rule, a routine 4xx and a bad body.
before = log_size()
r = s.api("POST", P, "draws", {"request_id": "lv-no-dice-1"}, token=toks[0])
is_(r.status, 409, "a draw without dice: 409 no_tickets")
code = s.api("GET", P, "invite", token=toks[1]).json["code"]
r = s.api("POST", P, "invite/claim", {"code": code}, token=toks[1])
is_(r.status, 422, "a claim of one's own code: 422 self_invite")
is_(s.api("GET", P, "balance").status, 401, "a balance read without a token: 401")
is_(s.api("POST", P, "visit", token=toks[2], raw="{bad").status, 400, "a body that is not JSON: 400")
lines = log_since(before)
ok(any(re.match(r"^<5>request route=draws status=409 user=lv00000 promo=%s ms=\d+\.\d+ outcome=no_tickets$"
                % P, l) for l in lines), "no_tickets is logged as a notice (<5>)") or diag("\n".join(lines))
ok(any(re.match(r"^<5>request route=claim status=422 user=lv00001 .* outcome=self_invite$", l)
       for l in lines), "a claim refused by a rule too")
ok(any(re.match(r"^<5>request route=visit status=400 user=lv00002 .* outcome=\w+$", l) for l in lines),
   "and a body the page would never send")
ok(not any("status=401" in l for l in lines), "a missing token is routine: not logged")
ok(not any("route=invite " in l for l in lines), "nor the invite link read between them")

# A paused promotion: every page open asks, so its 403 is routine too.
s.ctl("promo", "pause", P, "--reason", "log test")
time.sleep(1.2)  # the workers see it within a second
before = log_size()
is_(s.api("POST", P, "visit", token=toks[3]).status, 403, "a visit while paused: 403 promotion_paused")
ok(not any("route=visit" in l for l in log_since(before)), "not logged")
s.ctl("promo", "resume", P)
time.sleep(1.2)

if BACKEND == "sqlite":
    # The database locked by someone else: a write waits for it (slow:
    # <4>), or past busy_timeout_ms (2 s) gets 503 (an error: <3>).
    def locked_visit(tok, hold):
        holder = sqlite3.connect(os.path.join(s.dir, "luckydice.db"), isolation_level=None, timeout=5)
        holder.execute("BEGIN EXCLUSIVE")
        out = []
        t = threading.Thread(target=lambda: out.append(s.api("POST", P, "visit", token=tok).status))
        t.start()
        time.sleep(hold)
        holder.execute("ROLLBACK")
        holder.close()
        t.join(30)
        return out[0] if out else None

    slow, failed = s.tokens("lv-slow", "lv-failed")
    before = log_size()
    is_(locked_visit(slow, 0.4), 200, "a visit that waited 0.4 s for the database lock: 200")
    lines = log_since(before)
    m = [re.match(r"^<4>request route=visit status=200 user=lv-slow .* ms=(\d+\.\d+) outcome=granted$", l)
         for l in lines]
    m = [x for x in m if x]
    ok(m and float(m[0].group(1)) >= 100, "it is logged as slow (<4>), past log_slow_ms 100") or \
        diag("\n".join(lines))
    before = log_size()
    is_(locked_visit(failed, 3.0), 503, "a visit locked out past the busy timeout: 503")
    lines = log_since(before)
    ok(any(re.match(r"^<3>error: path=/api/promotions/%s/visit user=lv-failed promo=%s: database is busy"
                    % (P, P), l) for l in lines), "the error's cause is logged as an error (<3>)") or \
        diag("\n".join(lines))
    ok(any(re.match(r"^<3>request route=visit status=503 user=lv-failed ", l) for l in lines),
       "and so is the request")
else:
    skip("a slow request and an error logged", "they lock the SQLite file")

# "log_sample": 50 logs one routine request in 50, as info.
s.stop_services()
s.edit_config(log_sample=50)
s.start()
before = log_size()
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    codes = list(ex.map(lambda t: s.api("GET", P, "balance", token=t).status, toks[:1000]))
is_(codes.count(200), 1000, "1,000 balance reads")
lines = [l for l in log_since(before) if "route=balance" in l]
# each worker counts its own: 2 workers, 1,000 reads, so 19 or 20 of them
ok(19 <= len(lines) <= 20 and all(l.startswith("<6>request route=balance status=200 ") for l in lines),
   "with log_sample 50, %d of them are logged, as info (<6>)" % len(lines)) or diag("\n".join(lines))

# luckydicectl's errors: prefixed on a pipe, plain on a terminal, even
# when JOURNAL_STREAM came along from a terminal started under systemd.
ctl = os.path.join(BUILD, "luckydicectl")
r = subprocess.run([ctl, "frobnicate"], env=s.env, capture_output=True, text=True, timeout=30)
is_(r.stderr, "<3>error: unknown command 'frobnicate' (see 'luckydicectl --help')\n",
    "luckydicectl's error on a pipe: <3>")
master, slave = pty.openpty()
p = subprocess.Popen([ctl, "frobnicate"], env=dict(s.env, JOURNAL_STREAM="8:12345"),
                     stdout=subprocess.DEVNULL, stderr=slave)
os.close(slave)
p.wait(30)
out = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:  # EIO: the terminal's other end is closed
        break
    if not chunk:
        break
    out += chunk
os.close(master)
is_(out.decode(), "error: unknown command 'frobnicate' (see 'luckydicectl --help')\r\n",
    "on a terminal, no prefix (JOURNAL_STREAM alone changes nothing)")
r = subprocess.run([os.path.join(BUILD, "luckydice-dispatch"), "--config", "/nonexistent.json"],
                   capture_output=True, text=True, timeout=30)
ok(r.returncode == 2 and r.stderr.startswith("<3>luckydice-dispatch: "),
   "luckydice-dispatch's error too: %s" % r.stderr.strip())
done()
