#!/usr/bin/env python3
# Abuse limits: a promotion's cap on credited invite claims per client per
# day. The client is the X-Device-ID header only where the operator trusts
# it (the host app's proxy sets it: $ld_device_id in the site file,
# script/stack --trust-device-id); everywhere else nginx drops the header
# and the client is the address. Past the cap a claim is refused with a
# typed reason, changes no balance, and is kept for review in `user show`.
import json
from harness import Stack, ok, is_, done, promo

P = "t-abuse"

# ---- The default: X-Device-ID is not trusted. A farm that makes up a
# device id for each claim gets no more than the address's cap.
u = Stack(promos=[promo(P, abuse={"claims_per_client_per_day": 1})])
a = u.token("farmer")
code = u.api("GET", P, "invite", token=a).json["code"]
toks = u.tokens("g1", "g2", "g3", "g4")


def claim(s, tok, device=None):
    return s.api("POST", P, "invite/claim", {"code": code}, token=tok,
                 headers={"X-Device-ID": device} if device else None)


is_(claim(u, toks[0]).status, 200, "untrusted: the address's one claim of the day is credited")
rs = [claim(u, t, "made-up-device-%d" % i) for i, t in enumerate(toks[1:])]
is_([r.status for r in rs], [429, 429, 429],
    "three more claims, each with a made-up X-Device-ID, are all refused")
is_({r.json["error"] for r in rs}, {"claim_limited"}, "as claim_limited")
is_(u.api("GET", P, "balance", token=a).json["balance"], 1, "the inviter got one grant, not four")
is_(u.scalar("SELECT count(*) FROM invites WHERE promo=?", P), 1, "one invite is credited")
is_(u.query("SELECT client FROM claim_refusals WHERE promo=? ORDER BY id", P),
    [("127.0.0.1",)] * 3, "each refusal counts the address; no made-up id reached the handler")
u.stop()

# ---- A deployment behind the host app's proxy trusts the header.
code = None
s = Stack(promos=[promo(P, abuse={"claims_per_client_per_day": 2})],
          stack_args=["--trust-device-id"])
a = s.token("farmer")
code = s.api("GET", P, "invite", token=a).json["code"]
toks = s.tokens("f1", "f2", "f3", "f4", "f5", "f6")

rs = [claim(s, t, "device-1") for t in toks[:3]]
is_([r.status for r in rs], [200, 200, 429], "trusted: the same device: two claims credited, the third refused")
is_((rs[2].json["error"], rs[2].headers.get("Content-Type", "")[:16]), ("claim_limited", "application/json"),
    "the refusal is typed: claim_limited")
is_(s.api("GET", P, "balance", token=toks[2]).json["balance"], 0, "the refused claimer got nothing")
is_(s.api("GET", P, "balance", token=a).json["balance"], 2, "the inviter got two grants, not three")
is_(claim(s, toks[3], "device-2").status, 200, "another device is not affected")
# Without a device id the address counts: 127.0.0.1 has made no device-less claim yet.
is_([claim(s, t).status for t in toks[4:6]], [200, 200], "device-less claims count per address")
is_(claim(s, s.token("f7")).status, 429, "and the address is capped too")
is_(claim(s, s.token("f8"), "bad id!").status, 429,
    "an invalid device id falls back to the address (no way around the cap)")
rows = s.query("SELECT invitee, reason, client FROM claim_refusals WHERE promo=? ORDER BY id", P)
is_(rows, [("f3", "claim_limited", "device-1"), ("f7", "claim_limited", "127.0.0.1"),
           ("f8", "claim_limited", "127.0.0.1")], "each refusal is kept with its client")
r = s.ctl("user", "show", P, "f3")
ok("claim_limited" in r.stdout and "device-1" in r.stdout, "user show lists the refused claim and its client")
j = json.loads(s.ctl("user", "show", P, "f3", "--json").stdout)
is_([x["reason"] for x in j["refused_claims"]], ["claim_limited"], "and so does user show --json")
done()
