#!/usr/bin/env python3
# The kill switch through the real stack: promo pause makes visit, invite
# claim and draws answer 403 promotion_paused within a second on every
# worker and the writer, changing nothing; balance, me, the invite link and
# a draw already made (its request_id again) keep answering; /metrics shows
# the gauge; promo resume undoes it; both are in the promotion's history.
import re, time
from harness import Stack, ok, is_, done, diag, promo

P = "t-pause"
s = Stack(workers=4, promos=[promo(P, prizes=[
    {"id": "gift", "name": "기프티콘", "daily_stock": 100, "probability": 1}])])
ann, bob, cat = s.tokens("ann", "bob", "cat")
is_(s.api("POST", P, "visit", token=ann).status, 200, "ann visits before the pause")
code = s.api("GET", P, "invite", token=ann).json["code"]
r = s.api("POST", P, "draws", {"request_id": "req-ann-0001"}, token=ann)
is_(r.status, 200, "ann rolls before the pause")
drawn = r.json["draw"]


def gauge():
    r = s.request("GET", "/metrics")
    m = re.search(r'^luckydice_promotion_paused\{promo="%s"\} (\d)$' % P, r.raw, re.M)
    return int(m.group(1)) if m else None


is_(gauge(), 0, "/metrics: luckydice_promotion_paused is 0")
probe = s.token("probe")
r = s.ctl("promo", "pause", P, "--reason", "vendor outage")
ok("paused promotion" in r.stdout, "promo pause says what it did")
t0 = time.monotonic()
# Every worker (and the writer) must see it: ask until all of several say so.
while time.monotonic() - t0 < 5:
    got = [s.api("POST", P, "visit", token=probe).status for _ in range(8)]
    if set(got) == {403}:
        break
    time.sleep(0.05)
took = time.monotonic() - t0
ok(took < 1.5, "the workers refuse within a second of the pause (%.2f s)" % took)
LEDGER = ("balances", "grants", "invites", "invite_codes", "draws", "stock", "outbox")
before = s.dump(LEDGER)
r = s.api("POST", P, "visit", token=bob)
is_((r.status, r.json.get("error")), (403, "promotion_paused"), "visit: 403 promotion_paused")
ok(r.json.get("message"), "with a message")
r = s.api("POST", P, "invite/claim", {"code": code}, token=cat)
is_((r.status, r.json.get("error")), (403, "promotion_paused"), "invite claim: 403 promotion_paused")
r = s.api("POST", P, "draws", {"request_id": "req-ann-0002"}, token=ann)
is_((r.status, r.json.get("error")), (403, "promotion_paused"), "a new draw: 403 promotion_paused")
r = s.api("POST", P, "draws", {"request_id": "req-ann-0001"}, token=ann)
is_((r.status, r.json["draw"]), (200, drawn), "a draw already made answers as before")
is_(s.api("GET", P, "balance", token=ann).status, 200, "balance keeps answering")
r = s.api("GET", P, "me", token=ann)
is_((r.status, r.json["promotion"]["paused"], r.json["promotion"]["active"]), (200, True, False),
    "me says paused (and not active)")
is_(s.api("GET", P, "invite", token=ann).status, 200, "the invite link keeps answering")
is_(s.dump(LEDGER), before, "the paused promotion changed nothing in the ledger")
is_(gauge(), 1, "/metrics: luckydice_promotion_paused is 1")
r = s.ctl("promo", "list")
ok(re.search(r"^%s .* paused " % P, r.stdout, re.M), "promo list says paused") or diag(r.stdout)
r = s.ctl("promo", "show", P)
ok("vendor outage" in r.stdout, "promo show gives the reason")

s.ctl("promo", "resume", P)
t0 = time.monotonic()
while time.monotonic() - t0 < 5:
    if {s.api("GET", P, "balance", token=bob).status for _ in range(1)} and \
       s.api("POST", P, "visit", token=bob).status == 200:
        break
    time.sleep(0.05)
ok(time.monotonic() - t0 < 1.5, "resumed within a second")
r = s.api("POST", P, "draws", {"request_id": "req-ann-0002"}, token=ann)
is_(r.status, 409, "ann rolls again (no dice left: the rule answers, not the pause)")
is_(s.api("POST", P, "invite/claim", {"code": code}, token=cat).status, 200, "cat's claim works")
# each worker re-reads the promotions at most once a second
t0 = time.monotonic()
while gauge() != 0 and time.monotonic() - t0 < 3:
    time.sleep(0.1)
is_(gauge(), 0, "/metrics: back to 0 within a second or two")
hist = s.query("SELECT action, actor, note FROM promotion_history WHERE promo=? ORDER BY id", P)
is_([h[0] for h in hist], ["load", "pause", "resume"], "the history: load, pause, resume")
is_(hist[1][2], "vendor outage", "the pause's reason is kept")
ok(all(h[1] for h in hist), "with who did each")
r = s.ctl("promo", "history", P)
ok("pause" in r.stdout and "vendor outage" in r.stdout and "resume" in r.stdout,
   "promo history shows the pause and the resume") or diag(r.stdout)
r = s.ctl("promo", "pause", "nosuch", "--reason", "x", check=False)
ok(r.returncode == 2 and "no promotion 'nosuch'" in r.stderr, "pausing an unknown promotion exits 2")
r = s.ctl("promo", "pause", P, check=False)
ok(r.returncode == 2 and "--reason" in r.stderr, "a pause without --reason exits 2")
done()
