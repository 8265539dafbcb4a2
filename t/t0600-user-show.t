#!/usr/bin/env python3
# luckydicectl user show explains one user exactly: a visit, two credited
# friends, a refused claim, a draw with its reward events, and the balance
# in the ledger beside the cache (with DRIFT when they differ).
import json, re
from harness import Stack, ok, is_, done, promo

P = "t-show"
s = Stack(promos=[promo(P, prizes=[
    {"id": "coffee", "name": "Coffee", "daily_stock": 10, "probability": 1.0}])])
u, f1, f2 = s.tokens("U", "F1", "F2")

s.api("POST", P, "visit", token=u)
code = s.api("GET", P, "invite", token=u).json["code"]
is_(s.api("POST", P, "invite/claim", {"code": code}, token=f1).status, 200, "F1 claims U's code")
is_(s.api("POST", P, "invite/claim", {"code": code}, token=f2).status, 200, "F2 claims U's code")
is_(s.api("POST", P, "invite/claim", {"code": code}, token=u).status, 422, "U's own code is refused")
r = s.api("POST", P, "draws", {"request_id": "req-00000001"}, token=u)
is_(r.json["draw"]["prize"]["id"], "coffee", "U rolls and wins coffee")
draw_id = r.json["draw"]["id"]

h = json.loads(s.ctl("user", "show", P, "U", "--json").stdout)
is_((h["user"], h["balance"], h["granted"], h["spent"], h["version"]), ("U", 2, 3, 1, 4),
    "json: balance 2 = granted 3 - spent 1, version 4")
is_(sorted((g["reason"], g["amount"], g["ref"]) for g in h["grants"]),
    [("inviter", 1, "F1"), ("inviter", 1, "F2"), ("visit", 1, None)],
    "json: grants are the visit and one inviter grant per friend")
ok(all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+09:00$", g["at"]) for g in h["grants"]),
   "json: grant times are in the promotion's local time (+09:00)")
is_(sorted((i["invitee"], i["inviter_granted"]) for i in h["invites"]),
    [("F1", True), ("F2", True)], "json: two credited invites, both granted to U")
is_([(c["reason"], c["inviter"], c["code"]) for c in h["refused_claims"]],
    [("self_invite", "U", code)], "json: one refused claim, self_invite")
ok("invited_by" not in h, "json: U was invited by nobody")
is_([(d["id"], d["request_id"], d["prize"]["id"]) for d in h["draws"]],
    [(draw_id, "req-00000001", "coffee")], "json: the draw with its request_id and outcome")
is_(sorted((e["kind"], e["state"], e["attempts"]) for e in h["events"]),
    [("notify.invite", "pending", 0)] * 2 + [("notify.win", "pending", 0), ("reward.issue", "pending", 0)],
    "json: two invite notifications, the reward and its notification, pending, no attempt yet")
is_(h["cache"], {"state": "hit", "version": 4, "balance": 2, "drift": False},
    "json: the cache holds the same version and balance")

h1 = json.loads(s.ctl("user", "show", P, "F1", "--json").stdout)
is_((h1["invited_by"]["inviter"], h1["invited_by"]["code"]), ("U", code), "json: F1 was invited by U")
is_(sorted((g["reason"], g["ref"]) for g in h1["grants"]), [("invitee", "U"), ("visit", None)],
    "json: F1 has the visit and the invitee grant from U")

out = s.ctl("user", "show", P, "U").stdout
lines = out.splitlines()


def has(pattern, desc):
    ok(any(re.search(pattern, l) for l in lines), desc) or print("# output:\n# " + out.replace("\n", "\n# "))


has(r"^balance\s+ledger: 2 \(granted 3, spent 1, version 4\)$", "text: the ledger balance line")
has(r"^\s+cache:\s+2 \(version 4\)\s+same as the ledger$", "text: the cache line says same")
has(r"^grants \(3\):$", "text: three grants")
has(r"\+09:00\s+visit\s+\+1\s+first visit$", "text: the visit grant")
has(r"inviter\s+\+1\s+for inviting F1$", "text: the inviter grant for F1")
has(r"inviter\s+\+1\s+for inviting F2$", "text: the inviter grant for F2")
has(r"^invited by: nobody", "text: invited by nobody")
has(r"^invites credited as inviter \(2, 2 with a grant\):$", "text: two credited invites")
has(r"\s+F1\s+inviter granted$", "text: F1 credited with a grant")
has(r"^refused claims \(1\):$", "text: one refused claim")
has(r"self_invite\s+code %s of U" % code, "text: why it was refused")
has(r"draw %d\s+request req-00000001\s+won coffee \(Coffee\)$" % draw_id, "text: the draw")
has(r"reward\.issue\s+pending\s+attempts 0", "text: the reward event is pending")
ok("DRIFT" not in out, "text: no DRIFT while cache and ledger agree")
out1 = s.ctl("user", "show", P, "F1").stdout
ok(re.search(r"^invited by: U \(code %s\)" % code, out1, re.M), "text: F1 shows who invited it")

s.redis_cli("SET", s.cache_key(P, "U"), "9:7")
out = s.ctl("user", "show", P, "U").stdout
ok(re.search(r"cache:\s+7 \(version 9\)\s+DRIFT", out), "text: a wrong cached value is marked DRIFT")
h = json.loads(s.ctl("user", "show", P, "U", "--json").stdout)
is_(h["cache"], {"state": "hit", "version": 9, "balance": 7, "drift": True}, "json: drift true")
s.redis_cli("DEL", s.cache_key(P, "U"))
ok(re.search(r"cache:\s+miss", s.ctl("user", "show", P, "U").stdout), "text: no key is a miss")

r = s.ctl("user", "show", P, "bad uid!", check=False)
is_(r.returncode, 2, "a malformed uid is refused with exit 2")
r = s.ctl("user", "show", "no-such", "U", check=False)
ok(r.returncode == 2 and "no promotion 'no-such'" in r.stderr, "an unknown promotion is named")
h = json.loads(s.ctl("user", "show", P, "nobody", "--json").stdout)
is_((h["balance"], h["grants"], h["draws"]), (0, [], []), "a user never seen shows empty history")
done()
