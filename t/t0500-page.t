#!/usr/bin/env python3
# The promotion page in a real browser: Debian's Chromium, driven by
# t/browser/page-test.mjs (playwright-core), against a real stack, and
# over https through the shipped nginx site in front of it: demo sign-in
# links (?token=) sign in only where they are turned on, and the cookie
# they set is Secure over https. The Node script reports each check as a
# JSON line; this turns them into TAP points and then checks that the API
# agrees with what the page showed.
# Screenshots of each step go to t/t0500-page.screenshots/ in the build tree.
import json
import os
import shutil
import signal
import subprocess
import tempfile
from harness import Stack, Site, ok, is_, diag, done, promo, free_port, free_port_both, SRC, BUILD

CHROMIUM = os.environ.get("LD_CHROMIUM", "/usr/bin/chromium")
NODE_DIR = os.path.join(SRC, "t", "browser")
SHOTS = os.path.join(BUILD, "t", "t0500-page.screenshots")
PRIZE = "커피 기프티콘"

missing = [what for what, there in (
    ("chromium (%s)" % CHROMIUM, os.access(CHROMIUM, os.X_OK)),
    ("node", shutil.which("node")),
    ("playwright-core (npm ci --prefix t/browser)",
     os.path.isdir(os.path.join(NODE_DIR, "node_modules", "playwright-core"))),
) if not there]
if missing:
    print("1..0 # SKIP missing: " + ", ".join(missing), flush=True)
    raise SystemExit(0)

P = "t-page"
# The local stack takes demo sign-in links (as script/server's does); in
# front of it, the shipped site over https twice: with demo links turned
# on, and as shipped (off). The page's own Origin is each of the three.
port, on_port, off_port = free_port(), free_port_both(), free_port_both()
s = Stack(port=port, stack_args=["--token-links"], extra_config={"allowed_origins": [
    "http://127.0.0.1:%d" % port, "https://127.0.0.1:%d" % on_port,
    "https://127.0.0.1:%d" % off_port]}, promos=[
    # One prize that always wins while its stock of 1 lasts: the first
    # roll wins, every later one is a miss.
    promo(P, prizes=[{"id": "coffee", "name": PRIZE, "daily_stock": 1, "probability": 1}]),
    promo("t-page-future", days_back=-3, days_ahead=10),
    promo("t-page-over", days_back=10, days_ahead=-2),
    promo("t-page-paused"),
])
uids = ["A", "B", "C", "D", "E", "G", "H", "I", "J", "K", "L"]
tokens = dict(zip(uids, s.tokens(*uids)))
# I holds 2 dice before opening the page, so that what it shows tells
# I's sign-in from J's.
s.ctl("grant", P, "I", 2, "--reason", "page test", "--ticket", "T-PAGE-I")
# L holds 2 dice in a promotion an operator then pauses (the page resumes it).
s.ctl("grant", "t-page-paused", "L", 2, "--reason", "page test", "--ticket", "T-PAGE-L")
s.ctl("promo", "pause", "t-page-paused", "--reason", "page test: vendor outage")
tls_on = Site(s, knobs={"ld_token_links": "true"}, https_port=on_port)
tls_off = Site(s, https_port=off_port)

shutil.rmtree(SHOTS, ignore_errors=True)
os.makedirs(SHOTS)
work = tempfile.mkdtemp(prefix="ld-browser-")
config = os.path.join(work, "config.json")
with open(config, "w") as f:
    json.dump({
        "base": "http://127.0.0.1:%d" % s.port,
        "tls_on": tls_on.base,
        "tls_off": tls_off.base,
        "chromium": CHROMIUM,
        "shots": SHOTS,
        "prize_name": PRIZE,
        "promos": {"active": P, "future": "t-page-future", "over": "t-page-over",
                   "paused": "t-page-paused"},
        "tokens": tokens,
        "ctl": {"program": os.path.join(BUILD, "luckydicectl"), "config": s.config},
    }, f, ensure_ascii=False)

# The browser's profile and temp files live in `work` (TMPDIR), removed at
# the end. The Node program runs in its own process group so that a hang
# can be ended with everything it started.
proc = subprocess.Popen(["node", os.path.join(NODE_DIR, "page-test.mjs"), config],
                        cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True, env=dict(os.environ, TMPDIR=work),
                        start_new_session=True)
shown = []
try:
    out, _ = proc.communicate(timeout=120)
except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    ok(False, "the browser test finished within 120 s")
finally:
    shutil.rmtree(work, ignore_errors=True)

for line in out.splitlines():
    try:
        msg = json.loads(line)
    except ValueError:
        diag(line)
        continue
    if "ok" in msg:
        ok(msg["ok"], msg["name"])
    elif "shown" in msg:
        shown.append(msg["shown"])
    elif "diag" in msg:
        diag(msg["diag"])
is_(proc.returncode, 0, "the browser test ran to its end")

# The API and the ledger agree with what the page showed.
for sh in shown:
    r = s.api("GET", sh["promo"], "balance", token=tokens[sh["uid"]])
    is_((r.status, r.json), (200, {"balance": sh["balance"]}),
        "the API agrees with the %s dice %s's page showed" % (sh["balance"], sh["uid"]))
is_([u for (u,) in s.query("SELECT uid FROM draws WHERE promo=? ORDER BY id", P)],
    ["B", "C", "D"], "the ledger holds exactly one draw each for B, C and D (none for the refused roll or the retry)")
is_(s.scalar("SELECT count(*) FROM draws WHERE promo=? AND prize='coffee'", P), 1,
    "one prize won, B's")
is_([a for (a,) in s.query("SELECT action FROM promotion_history WHERE promo='t-page-paused'"
                           " ORDER BY id")], ["load", "pause", "resume"],
    "the pause and the page's resume are in the promotion's history")
is_(s.scalar("SELECT count(*) FROM grants WHERE promo IN ('t-page-future', 't-page-over')"), 0,
    "promotions outside their days granted nothing")
is_(s.query("SELECT uid, reason FROM grants WHERE uid IN ('I', 'J', 'K') ORDER BY uid, reason"),
    [("I", "support"), ("I", "visit"), ("K", "visit")],
    "the ignored link did nothing for J; I and K visited as themselves")
shots = sorted(os.listdir(SHOTS))
ok(len(shots) >= 10, "screenshots of each step saved (%d in %s)" % (len(shots), SHOTS))
done()
