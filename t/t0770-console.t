#!/usr/bin/env python3
# The web console's doors (docs/console.md), tried against the real nginx
# stack: bad input, missing tickets, user tokens and forged sessions,
# another role, cross-site requests, wrong content types and methods,
# unknown promotions, users and events. Each gets a 4xx JSON error and
# changes nothing (the ledger is compared before and after); a disabled
# operator and a changed role hold at the next request; the answers carry
# the strict headers; the shipped site lets in only the addresses of its
# knob (loopback) and marks the cookie Secure over https; a service with
# no console secret has no console.
import base64, hashlib, hmac, json, os
from harness import Stack, Site, ok, is_, diag, done, promo

P = "t-con"
s = Stack(promos=[promo(P, prizes=[
    {"id": "coffee", "name": "coffee", "daily_stock": 100, "probability": 1.0}])])
ORIGIN = "http://127.0.0.1:%d" % s.port
EVIL = "https://evil.example"
alice, bob = s.tokens("alice", "bob")
s.api("POST", P, "visit", token=alice)
s.api("POST", P, "draws", {"request_id": "alice-roll-0001"}, token=alice)
s.api("POST", P, "visit", token=bob)
s.execute("UPDATE outbox SET state = 'dead', last_error = 'HTTP 404' WHERE kind = 'reward.issue'")
dead = s.scalar("SELECT id FROM outbox WHERE state = 'dead'")
pending = s.scalar("SELECT id FROM outbox WHERE state = 'pending'")
for name, role in (("vic", "viewer"), ("sue", "support"), ("own", "owner")):
    s.ctl("operator", "add", name, "--role", role)
TABLES = ("balances", "grants", "invites", "claim_refusals", "draws", "stock", "outbox",
          "promotions", "promotion_history", "operators", "operator_log")


def signin(token, **headers):
    """The session cookie a sign-in token is traded for ("" when refused),
    and the answer."""
    r = s.request("POST", "/console/api/session", {"token": token}, headers=headers)
    c = r.headers.get("Set-Cookie", "")
    return (c.split(";")[0] if r.status == 200 else ""), r


def token(name):
    return s.ctl("operator", "token", name).stdout.strip()


SUE, _ = signin(token("sue"))
VIC, _ = signin(token("vic"))
OWN, _ = signin(token("own"))
ok(SUE.startswith("ld_console=os.sue.") and VIC and OWN, "three operators signed in")

GRANT = "/console/api/promotions/%s/users/alice/grant" % P
RETRY = "/console/api/promotions/%s/outbox/%d/retry" % (P, dead)
PAUSE = "/console/api/promotions/%s/pause" % P
GOOD = {"amount": 1, "reason": "sorry", "ticket": "T-1"}


def refused(r, status, code, what):
    """r is status with error code, as JSON."""
    return is_((r.status, r.json and r.json.get("error"),
                r.headers.get("Content-Type", "").startswith("application/json")),
               (status, code, True), what)


before = s.dump(tables=TABLES)

# ---- bad input ----------------------------------------------------------
for raw, code, what in (
        ('{"amount": 1, "reason": "x", ', "bad_json", "malformed JSON"),
        ('{"amount": 1, "amount": 2, "reason": "x", "ticket": "T-1"}', "duplicate_field", "a field twice"),
        ('[1, 2]', "bad_json", "not an object"),
        ('{"amount": 1, "reason": "x", "ticket": "T-1", "by": "root"}', "unknown_field",
         "a field not in the table (who it is by comes from the session)"),
        ('{"amount": 1, "reason": "sorry"}', "missing_field", "a missing ticket"),
        ('{"amount": 1, "ticket": "T-1"}', "missing_field", "a missing reason"),
        ('{"reason": "sorry", "ticket": "T-1"}', "missing_field", "a missing amount"),
        ('{"amount": "1", "reason": "x", "ticket": "T-1"}', "invalid_field", "an amount as a string"),
        ('{"amount": 1.0, "reason": "x", "ticket": "T-1"}', "invalid_field", "an amount as a real"),
        ('{"amount": 0, "reason": "x", "ticket": "T-1"}', "invalid_field", "an amount of 0"),
        ('{"amount": 1000001, "reason": "x", "ticket": "T-1"}', "invalid_field", "an amount past the cap"),
        ('{"amount": 99999999999999999999, "reason": "x", "ticket": "T-1"}', "invalid_field",
         "an amount past 64 bits"),
        ('{"amount": 1, "reason": "x", "ticket": "T 1"}', "invalid_field", "a ticket with a space"),
        ('{"amount": 1, "reason": "x", "ticket": ""}', "invalid_field", "an empty ticket"),
        ('{"amount": 1, "reason": "a\\nb", "ticket": "T-1"}', "invalid_field", "a newline in the reason"),
        ('{"amount": 1, "reason": "%s", "ticket": "T-1"}' % ("x" * 201), "invalid_field",
         "a reason of 201 bytes"),
        ('{"amount": 1, "reason": "a\\u0000b", "ticket": "T-1"}', "bad_json", "an escaped NUL"),
):
    refused(s.request("POST", GRANT, raw=raw, headers={"Cookie": SUE}), 400, code,
            "grant with %s: 400 %s" % (what, code))
refused(s.request("POST", RETRY, {"reason": "fixed"}, headers={"Cookie": SUE}), 400,
        "missing_field", "retry without a ticket: 400")
refused(s.request("POST", PAUSE, {"reason": "down"}, headers={"Cookie": OWN}), 400,
        "missing_field", "pause without a ticket: 400")
refused(s.request("POST", "/console/api/session", {"token": "op.x y"}), 400, "invalid_field",
        "sign-in with a token that is not one: 400")
r = s.request("POST", GRANT, raw='{"reason": "%s"}' % ("x" * 5000), headers={"Cookie": SUE})
refused(r, 413, "body_too_large", "a body over 4 KiB: 413 from nginx")

# ---- who: user tokens, forged sessions, roles ------------------------------
refused(s.request("POST", GRANT, GOOD, headers={"Authorization": "Bearer " + alice}), 401,
        "unauthorized", "a user token as Bearer does not open the console")
refused(s.request("POST", GRANT, GOOD, headers={"Cookie": "ld_token=" + alice}), 401,
        "unauthorized", "nor as the page's cookie")
refused(s.request("POST", GRANT, GOOD, headers={"Cookie": "ld_console=" + alice}), 401,
        "unauthorized", "nor as the console's cookie")
refused(signin(alice)[1], 401, "unauthorized", "nor at the sign-in")
refused(s.request("GET", "/console/api/session", headers={"Cookie": "ld_console=" + token("sue")}),
        401, "unauthorized", "a sign-in token is not a session")


def forged(secret_file, kind="os", name="own", serial=1, expiry=4102444800):
    """A console cookie signed with the bytes of secret_file (as
    token_key_load reads them: one trailing newline dropped)."""
    with open(os.path.join(s.dir, secret_file), "rb") as f:
        key = f.read()
    key = key[:-1] if key.endswith(b"\n") else key
    msg = "%s.%s.%d.%d" % (kind, name, serial, expiry)
    sig = base64.urlsafe_b64encode(hmac.new(key, msg.encode(), hashlib.sha256).digest())
    return "ld_console=%s.%s" % (msg, sig.decode().rstrip("="))


ok(s.request("GET", "/console/api/session", headers={"Cookie": forged("console.secret")}).status == 200,
   "a session made here with the console secret is accepted (the forgery below is the real shape)")
refused(s.request("POST", PAUSE, {"ticket": "T-9", "reason": "x"},
                  headers={"Cookie": forged("token.secret")}), 401, "unauthorized",
        "a session signed with the user token secret is refused")
refused(s.request("GET", "/console/api/session", headers={"Cookie": forged("console.secret", expiry=1000)}),
        401, "unauthorized", "an expired session is refused")
refused(s.request("GET", "/console/api/session", headers={"Cookie": forged("console.secret", serial=2)}),
        401, "unauthorized", "a session with another serial is refused")
refused(s.request("GET", "/console/api/session", headers={"Cookie": forged("console.secret", name="nobody")}),
        401, "unauthorized", "a session of no operator is refused")
refused(s.request("GET", "/console/api/session"), 401, "unauthorized", "no cookie: 401")

for path, body, what in ((GRANT, GOOD, "grant"), (RETRY, {"ticket": "T-2", "reason": "x"}, "retry"),
                         (PAUSE, {"ticket": "T-3", "reason": "x"}, "pause")):
    refused(s.request("POST", path, body, headers={"Cookie": VIC}), 403, "forbidden",
            "a viewer's %s: 403 forbidden" % what)
for path in ("users/alice", "watch"):
    refused(s.request("GET", "/console/api/promotions/%s/%s" % (P, path), headers={"Cookie": VIC}),
            403, "forbidden", "a viewer's look at %s: 403" % path)
refused(s.request("POST", PAUSE, {"ticket": "T-3", "reason": "x"}, headers={"Cookie": SUE}), 403,
        "forbidden", "support's pause: 403 (owners only)")
r = s.request("GET", "/console/api/promotions/%s/outbox" % P, headers={"Cookie": VIC})
ok(r.status == 200 and "dead_events" not in r.json and r.json["dead"] == 1,
   "a viewer sees how many events are dead, not whose")

# ---- cross-site, content types, methods ------------------------------------
for h, what in (({"Origin": EVIL}, "Origin of another site"),
                ({"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site: cross-site"),
                ({"Origin": "null"}, "Origin: null"),
                ({"Origin": ORIGIN + ".evil.example"}, "an origin that only starts like ours")):
    refused(s.request("POST", GRANT, GOOD, headers=dict(h, Cookie=SUE)), 403, "cross_site_request",
            "grant with the session cookie and %s: 403" % what)
refused(s.request("POST", GRANT, GOOD, headers={"Cookie": SUE, "Origin": EVIL,
                                                "Authorization": "Bearer " + alice}),
        403, "cross_site_request", "an Authorization header does not excuse a console request")
refused(s.request("GET", "/console/api/promotions/%s/users/alice" % P,
                  headers={"Cookie": SUE, "Sec-Fetch-Site": "cross-site"}),
        403, "cross_site_request", "a cross-site GET of a user: 403")
refused(signin(token("sue"), Origin=EVIL)[1], 403, "cross_site_request",
        "a sign-in from another site (login CSRF): 403")
for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
              "application/jsonp", None):
    r = s.request("POST", GRANT, raw=json.dumps(GOOD), headers={"Cookie": SUE, "Content-Type": ctype})
    refused(r, 415, "unsupported_media_type", "grant sent as %s: 415" % ctype)
refused(s.request("POST", "/console/api/session", raw=json.dumps({"token": token("sue")}),
                  headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type",
        "a sign-in as text/plain: 415")
r = s.request("GET", GRANT, headers={"Cookie": SUE})
refused(r, 405, "method_not_allowed", "GET on grant: 405")
is_(r.headers.get("Allow"), "POST", "... Allow: POST")
refused(s.request("POST", "/console/api/promotions/%s/days" % P, {}, headers={"Cookie": SUE}),
        405, "method_not_allowed", "POST on days: 405")
r = s.request("DELETE", "/console/api/session", headers={"Cookie": SUE})
refused(r, 405, "method_not_allowed", "DELETE on the session: 405")
is_(r.headers.get("Allow"), "GET, POST", "... Allow: GET, POST")

# ---- unknown promotions, users, events --------------------------------------
for path, code in (("/console/api/promotions/nope/days", "unknown_promotion"),
                   ("/console/api/promotions/a.b/days", "unknown_promotion"),
                   ("/console/api/promotions/%s/users/nobody" % P, "unknown_user"),
                   ("/console/api/promotions/%s/users/%s" % (P, "u" * 65), "unknown_user"),
                   ("/console/api/promotions/%s/nothing" % P, "not_found")):
    refused(s.request("GET", path, headers={"Cookie": SUE}), 404, code, "GET %s: 404 %s" % (path[:60], code))
refused(s.request("POST", "/console/api/promotions/nope/users/alice/grant", GOOD, headers={"Cookie": SUE}),
        404, "unknown_promotion", "a grant in an unknown promotion: 404")
refused(s.request("POST", "/console/api/promotions/%s/users/nobody/grant" % P, GOOD, headers={"Cookie": SUE}),
        404, "unknown_user", "a grant to a user the promotion does not know: 404")
refused(s.request("POST", "/console/api/promotions/%s/outbox/999999/retry" % P,
                  {"ticket": "T-4", "reason": "x"}, headers={"Cookie": SUE}),
        404, "unknown_event", "a retry of no event: 404")
refused(s.request("POST", "/console/api/promotions/%s/outbox/0/retry" % P,
                  {"ticket": "T-4", "reason": "x"}, headers={"Cookie": SUE}),
        404, "unknown_event", "a retry of event 0: 404")
refused(s.request("POST", "/console/api/promotions/demo/outbox/%d/retry" % dead,
                  {"ticket": "T-4", "reason": "x"}, headers={"Cookie": SUE}),
        404, "unknown_event", "a retry of the event from another promotion: 404")
refused(s.request("POST", "/console/api/promotions/%s/outbox/%d/retry" % (P, pending),
                  {"ticket": "T-4", "reason": "x"}, headers={"Cookie": SUE}),
        409, "not_dead", "a retry of an event that is not dead: 409")
refused(s.request("GET", "/console/api/promotions/%s/users/al%%69ce" % P, headers={"Cookie": SUE}),
        400, "bad_path", "a path with an escape: 400 bad_path")
refused(s.request("POST", "/console/api/promotions/%s/resume" % P, {"ticket": "T-5", "reason": "x"},
                  headers={"Cookie": OWN}), 409, "not_paused", "resuming a running promotion: 409")
refused(s.request("POST", "/console/api/promotions/%s/users/bob/revoke" % P,
                  {"amount": 5, "reason": "x", "ticket": "T-6"}, headers={"Cookie": SUE}),
        409, "below_zero", "a revoke below zero: 409")

is_(s.dump(tables=TABLES), before, "none of the refused requests changed the ledger")

# ---- changes hold at the next request ----------------------------------------
r = s.request("POST", GRANT, GOOD, headers={"Cookie": SUE})
is_((r.status, r.json), (200, {"done": True, "balance": 1}), "sue's grant with a ticket works")
refused(s.request("POST", GRANT, dict(GOOD, amount=3), headers={"Cookie": SUE}), 409, "ticket_used",
        "the same ticket again: 409, once per ticket")
s.ctl("operator", "role", "sue", "viewer")
refused(s.request("POST", GRANT, dict(GOOD, ticket="T-7"), headers={"Cookie": SUE}), 403, "forbidden",
        "made a viewer, sue's same session is refused the next grant")
s.ctl("operator", "disable", "own")
refused(s.request("GET", "/console/api/session", headers={"Cookie": OWN}), 401, "unauthorized",
        "a disabled operator's session is refused at once")
s.ctl("operator", "enable", "own")
refused(s.request("GET", "/console/api/session", headers={"Cookie": OWN}), 401, "unauthorized",
        "and stays refused after it is enabled again")
is_(s.query("SELECT uid, reason, amount, ref, note FROM grants WHERE reason = 'support'"),
    [("alice", "support", 1, "T-1", "sorry (by sue)")], "one grant in the ledger, sue's, with its ticket")

# ---- headers, pages ----------------------------------------------------------
r = s.request("GET", "/console/api/session", headers={"Cookie": VIC})
h = r.headers
ok(h.get("Cache-Control") == "no-store" and h.get("X-Frame-Options") == "DENY" and
   "default-src 'none'" in h.get("Content-Security-Policy", "") and
   "frame-ancestors 'none'" in h.get("Content-Security-Policy", "") and
   h.get("X-Content-Type-Options") == "nosniff", "the API's answers: no-store, not framable, nothing runs", ) or diag(h)
for path in ("/console/", "/console/console.js", "/console/i18n.js"):
    r = s.request("GET", path)
    csp = r.headers.get("Content-Security-Policy", "")
    ok(r.status == 200 and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and
       "default-src 'none'" in csp and r.headers.get("X-Frame-Options") == "DENY" and
       r.headers.get("Referrer-Policy") == "no-referrer", "%s: a strict CSP, not framable" % path) or diag(r.headers)
r = s.request("GET", "/console")
is_((r.status, r.headers.get("Location", "").endswith("/console/")), (301, True), "/console goes to /console/")
r = signin(token("vic"))[1]
c = r.headers.get("Set-Cookie", "")
ok("HttpOnly" in c and "SameSite=Strict" in c and "Path=/console/" in c and "Secure" not in c,
   "over plain http the cookie is HttpOnly, SameSite=Strict, for /console/ only") or diag(c)

# ---- the shipped site: its allow list, and Secure over https ----------------
site = Site(s)
r = site.request("GET", "/console/")
ok(r.status == 200 and "frame-ancestors 'none'" in r.headers.get("Content-Security-Policy", ""),
   "the shipped site lets loopback in, with the strict CSP")
r = site.request("POST", "/console/api/session", {"token": token("vic")})
c = r.headers.get("Set-Cookie", "")
ok(r.status == 200 and "; Secure" in c and "HttpOnly" in c, "over https the cookie is Secure") or diag(c)
site.stop()
closed = Site(s, edits=[("geo $ld_console_denied { default 1; 127.0.0.1 0; ::1 0; }",
                         "geo $ld_console_denied { default 1; 10.9.9.0/24 0; }")])
for path in ("/console/", "/console/api/session", "/console", "/console/console.js"):
    r = closed.request("GET", path)
    refused(r, 403, "forbidden", "an address the knob does not list gets 403 for %s" % path)
ok(closed.request("GET", "/").status == 200, "the promotion page is not behind the knob")
closed.stop()

# ---- no console secret: no console ------------------------------------------
s.stop_services()
s.edit_config(console_secret_file=None)
s.start()
refused(s.request("GET", "/console/api/session", headers={"Cookie": VIC}), 404, "not_found",
        "without \"console_secret_file\" the console's API is 404")
ok(s.api("GET", P, "balance", token=alice).status == 200, "and the user API works as before")
done()
