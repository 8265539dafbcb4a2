#!/usr/bin/env python3
# Visit grants, balance, tokens and the error answers of the API, against a
# real stack (nginx + FastCGI workers + Redis + SQLite).
import base64, hashlib, hmac, os, time
from concurrent.futures import ThreadPoolExecutor
from harness import Stack, ok, is_, done, promo

s = Stack(promos=[promo("t-visit")])
P = "t-visit"

r = s.request("GET", "/healthz")
is_(r.status, 200, "healthz answers 200")

a = s.token("alice")
r = s.api("POST", P, "visit", token=a)
is_((r.status, r.json), (200, {"granted": True, "balance": 1}), "first visit grants 1")
r = s.api("POST", P, "visit", token=a)
is_((r.status, r.json), (200, {"granted": False, "balance": 1}), "second visit grants nothing")
r = s.api("GET", P, "balance", token=a)
is_((r.status, r.json), (200, {"balance": 1}), "balance shows 1")
is_(r.headers.get("Cache-Control"), "no-store", "API answers are not cached")
is_(r.headers.get("X-Content-Type-Options"), "nosniff", "API answers carry nosniff")
ok(r.headers.get("Content-Type", "").startswith("application/json"), "API answers are JSON")

# The cookie works like the header.
r = s.api("GET", P, "balance", headers={"Cookie": "theme=dark; ld_token=" + a})
is_((r.status, r.json), (200, {"balance": 1}), "the ld_token cookie signs in too")

# 50 parallel first visits of one user: exactly one grant.
b = s.token("bob")
with ThreadPoolExecutor(50) as ex:
    rs = list(ex.map(lambda _: s.api("POST", P, "visit", token=b), range(50)))
is_(sorted(set(r.status for r in rs)), [200], "50 parallel visits all answer 200")
is_(sum(1 for r in rs if r.json["granted"]), 1, "exactly one of them granted")
is_(set(r.json["balance"] for r in rs), {1}, "all of them show balance 1")
is_(s.scalar("SELECT count(*) FROM grants WHERE promo=? AND uid='bob'", P), 1,
    "the ledger has one grant for bob")
is_(s.query("SELECT granted, spent FROM balances WHERE promo=? AND uid='bob'", P), [(1, 0)],
    "bob's balance row is granted 1, spent 0")

# Error answers change nothing.
before = s.dump()
secret = open(os.path.join(s.dir, "token.secret"), "rb").read().strip()


def make_token(uid, expiry, key=secret):
    msg = ("%s.%d" % (uid, expiry)).encode()
    sig = base64.urlsafe_b64encode(hmac.new(key, msg, hashlib.sha256).digest()).rstrip(b"=")
    return msg.decode() + "." + sig.decode()


good = make_token("carol", int(time.time()) + 3600)
r = s.api("GET", P, "balance", token=good)
is_(r.status, 200, "a token made with the secret by another HMAC implementation is accepted")

cases = [
    ("missing token", "POST", P, "visit", None, None, 401, "unauthorized"),
    ("forged token", "POST", P, "visit", make_token("carol", int(time.time()) + 3600, b"x" * 32), None, 401, "unauthorized"),
    ("expired token", "POST", P, "visit", make_token("carol", int(time.time()) - 1), None, 401, "unauthorized"),
    ("garbage token", "POST", P, "visit", "not-a-token", None, 401, "unauthorized"),
    ("unknown promotion", "POST", "no-such-promo", "visit", good, None, 404, "unknown_promotion"),
    ("malformed JSON", "POST", P, "visit", good, "{", 400, "bad_json"),
    ("trailing garbage", "POST", P, "visit", good, "{}x", 400, "bad_json"),
    ("unknown field", "POST", P, "visit", good, '{"x":1}', 400, "unknown_field"),
    ("wrong method on visit", "GET", P, "visit", good, None, 405, "method_not_allowed"),
    ("wrong method on balance", "POST", P, "balance", good, None, 405, "method_not_allowed"),
    ("not active (lucky-dice-2024 ended)", "POST", "lucky-dice-2024", "visit", good, None, 403, "promotion_not_active"),
]
for desc, method, pid, ep, tok, raw, status, code in cases:
    r = s.api(method, pid, ep, token=tok, raw=raw)
    ok(r.status == status and r.json and r.json.get("error") == code and r.json.get("message"),
       "%s -> %d %s" % (desc, status, code)) or print("# got %r" % r)
r = s.request("GET", "/api/nothing/here", token=good)
is_((r.status, r.json and r.json["error"]), (404, "not_found"), "unknown path -> 404 JSON")
r = s.request("PUT", "/api/promotions/%s/visit" % P, token=good)
is_((r.status, r.headers.get("Allow")), (405, "POST"), "405 names the allowed method")
r = s.api("POST", P, "visit", token=good, raw="{" + '"a":' * 0 + " " * 5000 + "}")
is_((r.status, r.json and r.json["error"]), (413, "body_too_large"), "a body over 4 KiB -> 413 JSON")
is_(s.dump(), before, "the ledger is unchanged by all the refused requests")

r = s.api("GET", "lucky-dice-2024", "balance", token=a)
is_((r.status, r.json), (200, {"balance": 0}), "balance still answers after a promotion ended")
r = s.api("GET", P, "me", token=a)
ok(r.status == 200 and r.json["balance"] == 1 and r.json["grants"][0]["reason"] == "visit",
   "me lists the visit grant")
done()
