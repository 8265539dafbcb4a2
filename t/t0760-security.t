#!/usr/bin/env python3
# The doors a security review found, each tried again the way it was
# found, against the real nginx stack (docs/security-review.md):
#   1. CSRF: a page elsewhere posting with the victim's ld_token cookie
#      (Origin of another site, Content-Type text/plain: what fetch with
#      mode "no-cors" and sendBeacon send) - refused, and the host app's
#      Bearer requests still work;
#   2. clickjacking: every page location says frame-ancestors 'none' and
#      X-Frame-Options DENY, on every answer; the operator's knob works;
#   4. demo sign-in links: the page is told they are off unless the run
#      turns them on (the page itself: t0500);
#   5. GET me shows a user public text only: no support note, ticket or
#      operator, no other user's id;
#   7. token rotation: the previous secret's tokens keep working, new ones
#      are signed with the new secret, and dropping the previous secret
#      ends its tokens;
#   8. the shipped site over TLS: nginx -t, https with HTTP/2, the
#      redirect from http, HSTS, [::] listeners, no cookie without Secure.
# (3, X-Device-ID: t0750; 6, outbox signatures: t0400.)
import base64, hashlib, hmac, json, os, re, shutil, subprocess, time
from harness import Stack, Site, ok, is_, diag, done, skip, promo, SRC, BUILD

P = "t-sec"
s = Stack(promos=[promo(P, prizes=[
    {"id": "coffee", "name": "coffee", "daily_stock": 1000, "probability": 1.0}])])
ORIGIN = "http://127.0.0.1:%d" % s.port  # public_url's origin: the page's own
EVIL = "https://evil.example"
victim, attacker, fresh = s.tokens("victim", "attacker", "fresh-user")
is_(s.api("POST", P, "visit", token=victim).json, {"granted": True, "balance": 1},
    "the victim has visited: 1 dice")
code = s.api("GET", P, "invite", token=attacker).json["code"]
TABLES = ("balances", "grants", "invites", "claim_refusals", "draws", "stock", "outbox")


def cookie(tok, **more):
    """Headers of a browser request signed in by the ld_token cookie."""
    h = {"Cookie": "ld_token=" + tok}
    h.update({k.replace("_", "-"): v for k, v in more.items()})
    return h


# ---- 1. CSRF ---------------------------------------------------------------
before = s.dump(tables=TABLES)
attack = [("visit", {}), ("draws", {"request_id": "csrf-draw-0001"}), ("invite/claim", {"code": code})]
for who, tok in (("the victim", victim), ("a new user", fresh)):
    for ep, body in attack:
        r = s.api("POST", P, ep, raw=json.dumps(body),
                  headers=cookie(tok, Origin=EVIL, Content_Type="text/plain"))
        is_((r.status, r.json and r.json.get("error")), (403, "cross_site_request"),
            "%s's cookie, Origin %s, text/plain: %s is refused 403" % (who, EVIL, ep))
for ep, body in attack:
    r = s.api("POST", P, ep, raw=json.dumps(body),
              headers=cookie(fresh, Sec_Fetch_Site="cross-site", Sec_Fetch_Mode="no-cors",
                             Origin=EVIL, Content_Type="text/plain;charset=UTF-8"))
    is_(r.status, 403, "a beacon (Sec-Fetch-Site: cross-site, text/plain;charset=UTF-8): %s refused" % ep)
    r = s.api("POST", P, ep, body, headers=cookie(fresh, Sec_Fetch_Site="cross-site"))
    is_(r.status, 403, "Sec-Fetch-Site: cross-site alone, even with a JSON body: %s refused" % ep)
    r = s.api("POST", P, ep, body, headers=cookie(fresh, Origin="null"))
    is_(r.status, 403, "Origin: null (a sandboxed frame): %s refused" % ep)
    r = s.api("POST", P, ep, body, headers=cookie(fresh, Origin=ORIGIN + ".evil.example"))
    is_(r.status, 403, "an Origin that only starts like ours: %s refused" % ep)
    r = s.api("POST", P, ep, raw=json.dumps(body), headers=cookie(fresh, Content_Type="text/plain"))
    is_((r.status, r.json and r.json.get("error")), (415, "unsupported_media_type"),
        "no Origin at all, text/plain: %s refused 415" % ep)
    r = s.api("POST", P, ep, raw=json.dumps(body), headers=cookie(fresh, Origin=ORIGIN, Content_Type=None))
    is_(r.status, 415, "our own Origin without a Content-Type: %s refused 415" % ep)
for ep in ("me", "balance", "invite"):
    r = s.api("GET", P, ep, headers=cookie(victim, Sec_Fetch_Site="cross-site"))
    is_((r.status, r.json and r.json.get("error")), (403, "cross_site_request"),
        "GET %s with the cookie from another site: 403" % ep)
ok(all(h not in r.headers for h in ("Access-Control-Allow-Origin", "Access-Control-Allow-Credentials")),
   "no answer opens CORS")
is_(s.dump(tables=TABLES), before, "no visit granted, no dice spent, no invite credited")
is_(s.api("GET", P, "balance", token=attacker).json["balance"], 0, "the attacker got nothing")

# The page itself: same origin, JSON, with or without a charset.
r = s.api("POST", P, "visit", raw="{}", headers=cookie(
    fresh, Origin=ORIGIN, Sec_Fetch_Site="same-origin", Content_Type="application/json; charset=utf-8"))
is_((r.status, r.json), (200, {"granted": True, "balance": 1}),
    "the page's own POST (our Origin, application/json; charset=utf-8) is served")
r = s.api("POST", P, "draws", raw='{"request_id":"page-draw-0001"}', headers=cookie(
    fresh, Origin=ORIGIN, Content_Type="Application/JSON"))
is_(r.status, 200, "Content-Type in another case is still JSON")
r = s.api("GET", P, "me", headers=cookie(fresh, Sec_Fetch_Site="same-origin"))
is_(r.status, 200, "a same-origin GET with the cookie is served")
r = s.api("GET", P, "balance", headers=cookie(fresh, Sec_Fetch_Site="none"))
is_(r.status, 200, "a GET the user typed (Sec-Fetch-Site: none) is served")

# The host app: a Bearer token is never sent by a browser on its own.
host = s.token("host-app-user")
r = s.api("POST", P, "visit", token=host, headers={"Origin": "https://app.example",
                                                    "Sec-Fetch-Site": "cross-site"})
is_((r.status, r.json), (200, {"granted": True, "balance": 1}),
    "Bearer, from the host app's origin (cross-site): served")
r = s.api("POST", P, "draws", {"request_id": "host-draw-0001"}, token=host,
          headers={"Cookie": "ld_token=" + victim, "Origin": EVIL})
is_((r.status, s.scalar("SELECT uid FROM draws WHERE request_id='host-draw-0001'")),
    (200, "host-app-user"), "Bearer beside another user's cookie: the Bearer user, the cookie unread")
r = s.api("POST", P, "visit", raw="{}", token=host, headers={"Content-Type": "text/plain"})
is_(r.status, 415, "Bearer with text/plain: 415 all the same")
r = s.api("GET", P, "me", token=host)
is_(r.status, 200, "Bearer GET without any of those headers: served")

# An operator's list of origins replaces the default.
s2 = Stack(promos=[promo(P)], extra_config={"allowed_origins": ["https://app.example"]},
           stack_args=["--frame-ancestors", "https://app.example"])
t2 = s2.token("listed")
r = s2.api("POST", P, "visit", headers=cookie(t2, Origin="https://app.example"))
is_(r.status, 200, "allowed_origins: a listed Origin may use the cookie")
r = s2.api("POST", P, "visit", headers=cookie(t2, Origin="http://127.0.0.1:%d" % s2.port))
is_(r.status, 403, "and public_url's origin, not listed, may not")

# ---- 2. Clickjacking -----------------------------------------------------------
pages = ["/", "/?promo=" + P, "/index.html", "/i/%s?promo=%s" % (code, P), "/i/%s" % code,
         "/app.js", "/app.css"]


def frame_headers(r):
    csp = r.headers.get("Content-Security-Policy", "")
    m = re.search(r"frame-ancestors ([^;]*)", csp)
    return m and m.group(1).strip(), r.headers.get("X-Frame-Options")


for path in pages:
    r = s.request("GET", path)
    is_((r.status,) + frame_headers(r), (200, "'none'", "DENY"),
        "GET %s: frame-ancestors 'none' and X-Frame-Options DENY" % path)
r = s.request("GET", "/i/%s?promo=%s" % (code, P))
ok("script-src 'self'" in r.headers.get("Content-Security-Policy", ""),
   "the invite link's page has the page's whole CSP")
# Answers that are not 200 carry them too (add_header ... always).
r = s.request("GET", "/", headers={"Range": "bytes=99999999-"})
is_((r.status,) + frame_headers(r), (416, "'none'", "DENY"), "a 416 of the page carries them too")
last = s.request("GET", "/index.html").headers.get("Last-Modified")
r = s.request("GET", "/index.html", headers={"If-Modified-Since": last})
is_((r.status,) + frame_headers(r), (304, "'none'", "DENY"), "a 304 of the page carries them too")
for path in ("/", "/i/%s" % code):
    r = s2.request("GET", path)
    is_((r.status,) + frame_headers(r), (200, "https://app.example", None),
        "the operator's knob: %s may be framed by the host app only, no X-Frame-Options" % path)
site = open(os.path.join(SRC, "nginx", "luckydice-site.conf")).read()
ok(re.search(r"""map \$host \$ld_frame_ancestors \{ default "'none'"; \}""", site),
   "the shipped site's default is frame-ancestors 'none'")
s2.stop()

# ---- 4. Demo sign-in links: off unless the run says so ---------------------------
r = s.request("GET", "/page-config.js")
is_((r.status, r.raw.strip(), r.headers.get("Content-Type", "").split(";")[0]),
    (200, "export const tokenLinks = false;", "application/javascript"),
    "by default the page is told: demo sign-in links are off")
ok(re.search(r"map \$host \$ld_token_links \{ default false; \}", site),
   "the shipped site says false")
ok("export const tokenLinks = false;" in open(os.path.join(SRC, "www", "page-config.js")).read(),
   "and so does the page's own file, for any other server")
server = open(os.path.join(SRC, "script", "server")).read()
ok(re.search(r"script/stack start .*--token-links", server), "script/server turns them on")

# ---- 5. GET me: public text only -------------------------------------------------
inviter, invitee = s.tokens("alice-the-inviter", "bob-the-invitee")
s.api("POST", P, "visit", token=inviter)
icode = s.api("GET", P, "invite", token=inviter).json["code"]
is_(s.api("POST", P, "invite/claim", {"code": icode}, token=invitee).status, 200, "bob claims alice's invite")
env = dict(s.env, USER="oper-kim")
env.pop("SUDO_USER", None)
for args in (("revoke", P, "alice-the-inviter", 1, "--reason", "suspected farm ring 7", "--ticket", "SUP-20240708-1"),
             ("grant", P, "alice-the-inviter", 2, "--reason", "vip apology from kim", "--ticket", "SUP-20240708-2")):
    r = subprocess.run([os.path.join(BUILD, "luckydicectl")] + [str(a) for a in args],
                       env=env, capture_output=True, text=True, timeout=60)
    ok(r.returncode == 0, "support: luckydicectl %s" % args[0]) or diag(r.stderr)
me = s.api("GET", P, "me", token=inviter)
is_(me.status, 200, "alice's GET me")
for secret in ("suspected farm ring", "vip apology", "SUP-20240708", "oper-kim", "bob-the-invitee"):
    ok(secret not in me.raw, "alice's me does not show %r" % secret)
is_([sorted(g) for g in me.json["grants"] if "ref" in g or "note" in g], [], "no grant has a ref or a note")
is_(sorted((g["reason"], g.get("text")) for g in me.json["grants"]),
    [("inviter", None), ("revoke", "adjusted by support"), ("support", "adjusted by support"), ("visit", None)],
    "support's changes say only \"adjusted by support\"")
is_([(i["invitee"], i["inviter_granted"]) for i in me.json["invites"]], [("bo***", True)],
    "the invitee alice credited is shown masked")
me_b = s.api("GET", P, "me", token=invitee)
ok(me_b.status == 200 and "alice-the-inviter" not in me_b.raw, "bob's me does not name his inviter")
is_([sorted(g) for g in me_b.json["grants"] if "ref" in g or "note" in g], [], "nor has a ref or a note")
sup = json.loads(s.ctl("user", "show", P, "alice-the-inviter", "--json").stdout)
ok(any(g.get("note") == "suspected farm ring 7 (by oper-kim)" and g.get("ref") == "SUP-20240708-1"
       for g in sup["grants"]), "support's own view still has the reason, the ticket and the operator")

# ---- 7. Token rotation -------------------------------------------------------------
secret_path = os.path.join(s.dir, "token.secret")
old_secret = open(secret_path, "rb").read().strip()
old_tok = s.token("rot-user")
old_kid = old_tok.split(".")[2]


def legacy_token(uid, expiry, key):
    """The older shape, uid.expiry.signature, as host apps made it."""
    msg = ("%s.%d" % (uid, expiry)).encode()
    sig = base64.urlsafe_b64encode(hmac.new(key, msg, hashlib.sha256).digest()).rstrip(b"=")
    return msg.decode() + "." + sig.decode()


legacy = legacy_token("rot-legacy", int(time.time()) + 3600, old_secret)
is_([s.api("GET", P, "balance", token=t).status for t in (old_tok, legacy)], [200, 200],
    "before the rotation: a token and an older-shape token")
# The rotation as an operator does it: the old secret moves to the
# previous file, a new secret takes its place, the service restarts.
shutil.copy(secret_path, os.path.join(s.dir, "token-previous.secret"))
with open(secret_path, "w") as f:
    f.write(os.urandom(32).hex())
s.edit_config(token_previous_secret_file="token-previous.secret")
s.stop_services()
s.start()
new_tok = s.token("rot-user")
ok(new_tok.split(".")[2] != old_kid, "luckydicectl token now signs with the new key (kid %s, was %s)"
   % (new_tok.split(".")[2], old_kid))
is_([s.api("GET", P, "balance", token=t).status for t in (old_tok, legacy, new_tok)], [200, 200, 200],
    "after the rotation the old token, the older-shape one and a new one all work")
forged = legacy_token("rot-user", int(time.time()) + 3600, b"not-the-secret" * 3)
is_(s.api("GET", P, "balance", token=forged).status, 401, "a token under neither key does not")
s.edit_config(token_previous_secret_file=None)
s.stop_services()
s.start()
r = s.api("GET", P, "balance", token=old_tok)
is_((r.status, r.json and r.json["error"]), (401, "unauthorized"),
    "once the previous secret is dropped, its tokens stop working")
ok("no longer accepted" in r.json["message"], "and say why: %s" % r.json["message"])
is_(s.api("GET", P, "balance", token=legacy).status, 401, "so do its older-shape tokens")
is_(s.api("GET", P, "balance", token=new_tok).status, 200, "the new key's tokens work")

# ---- 8. The shipped site over TLS ----------------------------------------------------
tls = Site(s)
ok(tls.test.returncode == 0 and "test is successful" in tls.test.stderr,
   "nginx -t accepts the shipped site with a certificate made here")
r = tls.request("GET", "/healthz")
is_((r.status, r.headers.get("Strict-Transport-Security")), (200, "max-age=63072000"),
    "https: the service answers, with HSTS")
for path, status in (("/?promo=" + P, 200), ("/i/%s" % code, 200), ("/page-config.js", 200),
                     ("/api/promotions/%s/balance" % P, 401), ("/nope", 404)):
    r = tls.request("GET", path)
    is_((r.status, r.headers.get("Strict-Transport-Security")), (status, "max-age=63072000"),
        "https GET %s: %d with HSTS" % (path, status))
r = tls.request("GET", "/")
is_(frame_headers(r), ("'none'", "DENY"), "the shipped site's page cannot be framed")
r = tls.request("GET", "/page-config.js")
is_(r.raw.strip(), "export const tokenLinks = false;", "the shipped site's page takes no demo links")
r = tls.request("POST", "/api/promotions/%s/visit" % P, {}, headers={"Authorization": "Bearer " + new_tok})
is_(r.status, 200, "a visit over https")
r = tls.request("GET", "/?promo=%s&x=1" % P, tls=False)
is_((r.status, r.headers.get("Location")), (301, "https://luckydice.example/?promo=%s&x=1" % P),
    "plain http is redirected to https, path and query kept")
ok("Strict-Transport-Security" not in r.headers, "no HSTS over plain http")
is_(s.request("GET", "/").headers.get("Strict-Transport-Security"), None,
    "nor on the local stack's plain http")
out = subprocess.run(["curl", "-sS", "--http2", "--cacert", tls.cert, "-o", "/dev/null",
                      "-w", "%{http_version}", tls.base + "/healthz"],
                     capture_output=True, text=True, timeout=30)
is_(out.stdout, "2", "HTTP/2 over TLS")
ok(re.search(r"listen \[::\]:80;", site) and re.search(r"listen \[::\]:443 ssl http2;", site),
   "the shipped site listens on [::] beside IPv4")
if tls.ipv6:
    is_(tls.request("GET", "/healthz", host="::1").status, 200, "https on [::1] answers")
    is_(tls.request("GET", "/", tls=False, host="::1").status, 301, "http on [::1] redirects")
else:
    skip("https on [::1] answers", "no IPv6 loopback on this machine")
    skip("http on [::1] redirects", "no IPv6 loopback on this machine")
cookies = [r for r in (tls.request("GET", p) for p in ("/", "/healthz", "/api/promotions/%s/me" % P))
           if "Set-Cookie" in r.headers and "Secure" not in r.headers["Set-Cookie"]]
is_(cookies, [], "no answer sets a cookie without Secure")
tls.stop()
done()
