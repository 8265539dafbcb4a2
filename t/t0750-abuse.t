#!/usr/bin/env python3
# Abuse limits: a promotion's cap on credited invite claims per client per
# day. The client is the X-Device-ID the host app sets, else the address
# nginx passes. Past the cap a claim is refused with a typed reason, changes
# no balance, and is kept for review in `user show`.
import json
from harness import Stack, ok, is_, done, promo

P = "t-abuse"
s = Stack(promos=[promo(P, abuse={"claims_per_client_per_day": 2})])
a = s.token("farmer")
code = s.api("GET", P, "invite", token=a).json["code"]
toks = s.tokens("f1", "f2", "f3", "f4", "f5", "f6")


def claim(tok, device=None):
    return s.api("POST", P, "invite/claim", {"code": code}, token=tok,
                 headers={"X-Device-ID": device} if device else None)


rs = [claim(t, "device-1") for t in toks[:3]]
is_([r.status for r in rs], [200, 200, 429], "the same device: two claims credited, the third refused")
is_((rs[2].json["error"], rs[2].headers.get("Content-Type", "")[:16]), ("claim_limited", "application/json"),
    "the refusal is typed: claim_limited")
is_(s.api("GET", P, "balance", token=toks[2]).json["balance"], 0, "the refused claimer got nothing")
is_(s.api("GET", P, "balance", token=a).json["balance"], 2, "the inviter got two grants, not three")
is_(claim(toks[3], "device-2").status, 200, "another device is not affected")
# Without a device id the address counts: 127.0.0.1 has made no device-less claim yet.
is_([claim(t).status for t in toks[4:6]], [200, 200], "device-less claims count per address")
is_(claim(s.token("f7")).status, 429, "and the address is capped too")
is_(claim(s.token("f8"), "bad id!").status, 429,
    "an invalid device id falls back to the address (no way around the cap)")
rows = s.query("SELECT invitee, reason, client FROM claim_refusals WHERE promo=? ORDER BY id", P)
is_(rows, [("f3", "claim_limited", "device-1"), ("f7", "claim_limited", "127.0.0.1"),
           ("f8", "claim_limited", "127.0.0.1")], "each refusal is kept with its client")
r = s.ctl("user", "show", P, "f3")
ok("claim_limited" in r.stdout and "device-1" in r.stdout, "user show lists the refused claim and its client")
j = json.loads(s.ctl("user", "show", P, "f3", "--json").stdout)
is_([x["reason"] for x in j["refused_claims"]], ["claim_limited"], "and so does user show --json")
done()
