#!/usr/bin/env python3
# Invite codes and claims: the invite rules (docs/architecture.md, "Rules made precise"), each
# refusal with its status, the cap, the new-user window, and concurrency.
import time
from concurrent.futures import ThreadPoolExecutor
from harness import Stack, ok, is_, done, promo

P = "t-invite"
s = Stack(promos=[
    promo(P),
    promo("t-cap", invites={"max_credited_per_inviter": 2, "invitee_new_within_hours": 24}),
    # a window of 1.8 seconds, so "not new" can be tested without a clock
    promo("t-window", invites={"max_credited_per_inviter": 30, "invitee_new_within_hours": 0.0005}),
])
a, b, c = s.tokens("A", "B", "C")


def balance(tok, pid=P):
    return s.api("GET", pid, "balance", token=tok).json["balance"]


r = s.api("GET", P, "invite", token=a)
ok(r.status == 200 and len(r.json["code"]) >= 6, "GET invite makes a code")
code = r.json["code"]
ok(r.json["url"].endswith("/i/%s?promo=%s" % (code, P)), "the invite url links to /i/CODE")
is_(s.api("GET", P, "invite", token=a).json["code"], code, "the code is the same on a second call")

s.api("POST", P, "visit", token=a)
r = s.api("POST", P, "invite/claim", {"code": code}, token=b)
is_((r.status, r.json), (200, {"granted": True, "balance": 2}),
    "B claims A's code: B gets the visit and the invite grant")
is_(balance(a), 2, "A got one more dice")
is_(s.query("SELECT reason, amount, ref FROM grants WHERE promo=? AND uid='A' ORDER BY id", P),
    [("visit", 1, None), ("inviter", 1, "B")], "A's grants: visit, inviter for B")
is_(s.scalar("SELECT count(*) FROM outbox WHERE kind='notify.invite' AND uid='A'"), 1,
    "a notify.invite event for A was written with the credit")
r = s.api("POST", P, "invite/claim", {"code": code}, token=b)
is_((r.status, r.json["error"]), (409, "already_credited"), "B again -> 409 already_credited")
r = s.api("POST", P, "invite/claim", {"code": code}, token=a)
is_((r.status, r.json["error"]), (422, "self_invite"), "A's own code -> 422 self_invite")
r = s.api("POST", P, "invite/claim", {"code": "nosuchcode"}, token=c)
is_((r.status, r.json["error"]), (404, "unknown_code"), "unknown code -> 404 unknown_code")
r = s.api("POST", P, "invite/claim", {"code": "bad code!"}, token=c)
is_((r.status, r.json["error"]), (400, "invalid_field"), "a malformed code -> 400 invalid_field")
r = s.api("POST", P, "invite/claim", {}, token=c)
is_((r.status, r.json["error"]), (400, "missing_field"), "no code -> 400 missing_field")
r = s.api("POST", P, "invite/claim", {"code": 12}, token=c)
is_((r.status, r.json["error"]), (400, "invalid_field"), "a number for code -> 400 invalid_field")
is_((balance(a), balance(b), balance(c)), (2, 2, 0), "refusals changed no balance")
is_(s.scalar("SELECT count(*) FROM claim_refusals WHERE promo=?", P), 2,
    "the two refusals by rule are kept for review")

# Claim before visit, then visit: the visit is not granted twice.
d = s.token("D")
r = s.api("POST", P, "invite/claim", {"code": code}, token=d)
is_(r.json, {"granted": True, "balance": 2}, "D claims first (visit done by the claim)")
r = s.api("POST", P, "visit", token=d)
is_(r.json, {"granted": False, "balance": 2}, "D's visit afterwards grants nothing more")

# The cap: past it the invitee is credited, the inviter is not.
cap_code = s.api("GET", "t-cap", "invite", token=a).json["code"]
toks = s.tokens("cap1", "cap2", "cap3")
rs = [s.api("POST", "t-cap", "invite/claim", {"code": cap_code}, token=t) for t in toks]
is_([r.json for r in rs], [{"granted": True, "balance": 2}] * 3,
    "three invitees under a cap of 2 are all credited")
is_(balance(a, "t-cap"), 2, "the inviter got only 2 grants (the cap)")
is_(s.scalar("SELECT count(*) FROM invites WHERE promo='t-cap' AND inviter_granted=0"), 1,
    "the third credit is recorded without an inviter grant")

# Not new: first seen longer ago than the window.
w_code = s.api("GET", "t-window", "invite", token=a).json["code"]
old = s.token("oldtimer")
s.api("POST", "t-window", "visit", token=old)
time.sleep(2.2)
r = s.api("POST", "t-window", "invite/claim", {"code": w_code}, token=old)
is_((r.status, r.json["error"]), (422, "not_new_user"), "a user first seen too long ago -> 422 not_new_user")
is_(balance(old, "t-window"), 1, "and keeps only the visit dice")

# Concurrency: 20 invitees claim A's code at once, each 5 times.
inv = s.tokens(*["par%d" % i for i in range(20)])
with ThreadPoolExecutor(32) as ex:
    rs = list(ex.map(lambda t: s.api("POST", P, "invite/claim", {"code": code}, token=t), inv * 5))
is_(sum(1 for r in rs if r.status == 200), 20, "100 concurrent claims by 20 invitees: 20 credited")
is_(sum(1 for r in rs if r.status == 409), 80, "and 80 already_credited")
is_(s.scalar("SELECT count(*) FROM grants WHERE promo=? AND uid='A' AND reason='inviter'", P), 22,
    "A has one inviter grant per credited invitee (B, D and the 20)")
is_(balance(a), 23, "A's balance is visit + 22")
bad = s.query("SELECT promo, uid FROM balances WHERE granted <> (SELECT coalesce(sum(amount),0)"
              " FROM grants g WHERE g.promo=balances.promo AND g.uid=balances.uid)")
is_(bad, [], "every balance equals the sum of its grants")
done()
