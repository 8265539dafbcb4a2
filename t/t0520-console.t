#!/usr/bin/env python3
# The web console in a real browser: Debian's Chromium driven by
# t/browser/console-test.mjs (playwright-core) against a real stack. A
# viewer (in Korean), a support agent and a campaign owner (in English)
# sign in and do their work: the campaign's charts and numbers, updating
# while users play; a user found and the balance explained; a grant
# refused without a ticket and made with one; a dead reward sent again;
# pause and resume. The Node script reports each check as a JSON line;
# this turns them into TAP points, then checks the charts' numbers
# against `luckydicectl stats --json` and the ledger against what was
# done. Screenshots go to t/t0520-console.screenshots/ in the build tree
# (docs/images/ has two of them).
import json
import os
import shutil
import signal
import subprocess
import tempfile
from datetime import timedelta
from harness import Stack, ok, is_, diag, done, promo, seoul_today, SRC, BUILD

CHROMIUM = os.environ.get("LD_CHROMIUM", "/usr/bin/chromium")
NODE_DIR = os.path.join(SRC, "t", "browser")
SHOTS = os.path.join(BUILD, "t", "t0520-console.screenshots")

missing = [what for what, there in (
    ("chromium (%s)" % CHROMIUM, os.access(CHROMIUM, os.X_OK)),
    ("node", shutil.which("node")),
    ("playwright-core (npm ci --prefix t/browser)",
     os.path.isdir(os.path.join(NODE_DIR, "node_modules", "playwright-core"))),
) if not there]
if missing:
    print("1..0 # SKIP missing: " + ", ".join(missing), flush=True)
    raise SystemExit(0)

P = "t-console"
s = Stack(promos=[promo(P, days_back=3, days_ahead=4, prizes=[
    {"id": "coffee", "name": "Coffee", "daily_stock": 40, "probability": 0.5, "release": "even"},
    {"id": "cake", "name": "Cake", "daily_stock": 3, "probability": 0.3},
])])
today = seoul_today()
yesterday = str(today - timedelta(days=1))

# ---- a campaign in progress -------------------------------------------------
users = ["alice", "bob", "carol", "dan", "erin", "frank", "gina", "hal"]
tok = dict(zip(users, s.tokens(*users)))
s.api("POST", P, "visit", token=tok["alice"])
code = s.api("GET", P, "invite", token=tok["alice"]).json["code"]
for u in ("bob", "carol", "dan"):
    s.api("POST", P, "invite/claim", {"code": code}, token=tok[u])
s.api("POST", P, "invite/claim", {"code": code}, token=tok["alice"])  # self invite: refused
s.api("POST", P, "invite/claim", {"code": code}, token=tok["bob"])    # already credited
for u in ("erin", "frank", "gina"):
    s.api("POST", P, "visit", token=tok[u])
for u in ("alice", "bob", "carol", "erin", "frank"):
    for k in range(2):
        s.api("POST", P, "draws", {"request_id": "%s-roll-%04d" % (u, k)}, token=tok[u])
# yesterday's players (the test's own rows: the API only ever writes today)
for i in range(4):
    uid = "early%d" % i
    s.execute("INSERT INTO balances (promo, uid, granted, spent, version, first_seen)"
              " VALUES (?, ?, 1, 1, 2, 0)", P, uid)
    s.execute("INSERT INTO grants (promo, uid, reason, amount, created_at, day)"
              " VALUES (?, ?, 'visit', 1, 0, ?)", P, uid, yesterday)
    s.execute("INSERT INTO draws (promo, uid, request_id, created_at, day, rand)"
              " VALUES (?, ?, 'early-roll-01', 0, ?, 999999999)", P, uid, yesterday)
# a winner's reward the reward service refused: dead, for support to send again
win = s.query("SELECT id, uid FROM draws WHERE promo = ? AND prize IS NOT NULL ORDER BY id", P)
ok(len(win) > 0, "the campaign has a winner (%d wins)" % len(win))
dead_draw, dead_uid = win[0]
s.execute("UPDATE outbox SET state = 'dead', attempts = 12, last_status = 404,"
          " last_error = 'HTTP 404: unknown coupon', done_at = created_at"
          " WHERE kind = 'reward.issue' AND key LIKE ?", "%%/draw/%d/reward" % dead_draw)
dead_event = s.scalar("SELECT id FROM outbox WHERE state = 'dead'")
ok(dead_event is not None, "a dead reward event (draw %d of %s)" % (dead_draw, dead_uid))

for name, role in (("vera", "viewer"), ("sam", "support"), ("olga", "owner"), ("gone", "support")):
    s.ctl("operator", "add", name, "--role", role)
optok = {n: s.ctl("operator", "token", n).stdout.strip() for n in ("vera", "sam", "olga", "gone")}
s.ctl("operator", "disable", "gone")

shutil.rmtree(SHOTS, ignore_errors=True)
os.makedirs(SHOTS)
work = tempfile.mkdtemp(prefix="ld-browser-")
config = os.path.join(work, "config.json")
with open(config, "w") as f:
    json.dump({
        "base": "http://127.0.0.1:%d" % s.port,
        "chromium": CHROMIUM,
        "shots": SHOTS,
        "promo": P,
        "operators": optok,
        "user_token": tok["alice"],
        "player": {"uid": "hal", "token": tok["hal"]},
        "support_user": "alice",
        "dead": {"uid": dead_uid, "event": dead_event},
    }, f, ensure_ascii=False)

proc = subprocess.Popen(["node", os.path.join(NODE_DIR, "console-test.mjs"), config],
                        cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True, env=dict(os.environ, TMPDIR=work), start_new_session=True)
shown = {}
try:
    out, _ = proc.communicate(timeout=180)
except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    ok(False, "the browser test finished within 180 s")
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
        shown[msg["shown"]] = msg["value"]
    elif "diag" in msg:
        diag(msg["diag"])
is_(proc.returncode, 0, "the browser test ran to its end")

# ---- the charts' numbers are the ledger's (luckydicectl stats --json) ------
st = json.loads(s.ctl("stats", P, "--json").stdout)
tables = shown.get("tables") or {}
bars = shown.get("bars") or {}
want_tables, want_bars = {}, {}
for d in st["days"]:
    day = d["day"]
    row = {"draws": d["draws"], "invites": d["invites"]}
    for r, g in d["grants"].items():
        row["dice-" + r] = g["dice"]
    for r, n in d["refused"].items():
        row["refused-" + r] = n
    for z, v in d["prizes"].items():
        for k in ("won", "stock", "left", "open"):
            row["%s.%s" % (z, k)] = v[k]
    want_tables[day] = row
    want_bars[day] = {"draws": d["draws"], "visit": d["grants"]["visit"]["dice"],
                      "inviter": d["grants"]["inviter"]["dice"], "credited": d["invites"],
                      "coffee.won": d["prizes"]["coffee"]["won"],
                      "cake.stock": d["prizes"]["cake"]["stock"]}
# a paced prize opens through the day: the page read it a moment before stats
for day, row in tables.items():
    if "coffee.open" in row and day in want_tables and \
            want_tables[day]["coffee.open"] - row["coffee.open"] in (0, 1):
        row["coffee.open"] = want_tables[day]["coffee.open"]
is_(tables, want_tables, "every number of the campaign tables is what stats --json says"
    " (%d days, %d numbers a day)" % (len(want_tables), len(next(iter(want_tables.values())))))
is_(bars, want_bars, "the bars drawn say the same numbers")
is_((want_tables[str(today)]["draws"], want_tables[yesterday]["draws"]),
    (s.scalar("SELECT count(*) FROM draws WHERE promo = ? AND day = ?", P, str(today)), 4),
    "the numbers are not empty: today's draws (the player's too) and yesterday's 4")

# ---- what the ledger kept of the changes -------------------------------------
grants = s.query("SELECT uid, reason, amount, ref, note FROM grants WHERE promo = ?"
                 " AND reason IN ('support', 'revoke') ORDER BY id", P)
is_(grants, [("alice", "support", 2, "T-1001", "compensation for a lost roll (by sam)")],
    "one support grant, by sam with its ticket; the refused ones left nothing")
is_(s.scalar("SELECT state FROM outbox WHERE id = ?", dead_event), "pending",
    "the dead reward is pending again")
is_(s.query("SELECT actor, action, subject, ticket FROM operator_log WHERE action = 'outbox.retry'"),
    [("sam", "outbox.retry", str(dead_event), "T-1002")],
    "the operator log has sam's retry with its ticket")
is_(s.scalar("SELECT count(*) FROM grants WHERE promo = ? AND uid = 'hal'", P), 1,
    "the player's visit while the page watched is in the ledger")
is_(s.query("SELECT action, actor, note FROM promotion_history WHERE promo = ?"
            " AND action <> 'load' ORDER BY id", P),
    [("pause", "olga", "the reward service is down (ticket T-2001)"),
     ("resume", "olga", "the reward service is back (ticket T-2001)")],
    "the promotion's history has olga's pause and resume, each with its ticket")
is_(s.query("SELECT request_id FROM draws WHERE promo = ? AND uid = 'hal' ORDER BY id", P),
    [("player-roll-0001",)], "the roll refused while paused left nothing")
done()
