#!/usr/bin/env python3
# Least privilege: the database, its journal, the secrets and the state
# directory are not readable by others; every API answer (the workers' and
# nginx's own: 400, 404, 405, 413, 429, 503) carries nosniff and no-store
# with a JSON body; and no token or secret reaches any log, even when a
# token comes in the page's query string or a Referer.
import glob, os, stat, time
from harness import Stack, ok, is_, diag, done, promo

P = "t-priv"
s = Stack(rate_limit=True, promos=[promo(P, prizes=[
    {"id": "coffee", "name": "coffee", "daily_stock": 100, "probability": 0.5}])])

a, b = s.tokens("priv-a", "priv-b")
old = s.tokens("priv-old", ttl=1)[0]
time.sleep(1.2)

# Traffic carrying the tokens every way a client sends them.
s.api("POST", P, "visit", token=a)
code = s.api("GET", P, "invite", token=a).json["code"]
s.api("POST", P, "invite/claim", {"code": code}, headers={"Cookie": "ld_token=" + b})
s.api("POST", P, "draws", {"request_id": "priv-draw-1"}, token=b)
s.api("GET", P, "balance", token=old)  # expired: 401
s.api("GET", P, "balance", token=a[:-3] + "xyz")  # forged: 401
s.request("GET", "/?promo=%s&token=%s" % (P, a))  # the page's sign-in link
s.request("GET", "/app.js", headers={"Referer": "http://x/?promo=%s&token=%s" % (P, b)})
s.request("GET", "/api/promotions/%s/balance?token=%s" % (P, a))  # token in a query: 401
s.request("GET", "/nope?token=" + a)  # 404 from nginx

# nginx's own JSON answers carry the headers too.
hdr = lambda r: (r.headers.get("Cache-Control"), r.headers.get("X-Content-Type-Options"),
                 r.headers.get("Content-Type", "").split(";")[0], bool(r.json and r.json.get("error")))
want = ("no-store", "nosniff", "application/json", True)
c = s.tokens(*["priv-r%d" % i for i in range(1)])[0]
rs = [s.api("POST", P, "invite/claim", {"code": "nosuchcode"}, token=c) for _ in range(20)]
lim = [r for r in rs if r.status == 429]
ok(lim, "20 claims at once from one address meet the rate limit (%d answered 429)" % len(lim))
is_(lim and (hdr(lim[0]), lim[0].json["error"], lim[0].headers.get("Retry-After")),
    (want, "rate_limited", "1"), "nginx's 429 is JSON with Retry-After, nosniff and no-store")
r = s.api("POST", P, "visit", token=a, raw="x" * 5000)
is_((r.status, hdr(r)), (413, want), "nginx's 413 is JSON with nosniff and no-store")
r = s.request("TRACE", "/api/promotions/%s/visit" % P)
is_((r.status, hdr(r)), (405, want), "nginx's 405 is JSON with nosniff and no-store")
r = s.api("GET", P, "balance", token=a)
is_((r.status, hdr(r)[:3]), (200, want[:3]), "a 200 answer carries nosniff and no-store")

# File modes.
for name in ("luckydice.db", "luckydice.db-wal", "luckydice.db-shm", "token.secret",
             "signing.secret", "luckydice.json"):
    p = os.path.join(s.dir, name)
    if os.path.exists(p):
        mode = stat.S_IMODE(os.stat(p).st_mode)
        is_(oct(mode & 0o077 if name.endswith("secret") else mode & 0o007), oct(0),
            "%s is not readable by others (%s)" % (name, oct(mode)))
for d in (s.dir, os.path.join(s.dir, "log")):
    mode = stat.S_IMODE(os.stat(d).st_mode)
    is_(oct(mode & 0o007), oct(0), "the %s directory is closed to others (%s)"
        % ("state" if d == s.dir else "log", oct(mode)))

# The workers stopped: nginx answers 503 JSON.
os.kill(int(open(os.path.join(s.dir, "fcgi.pid")).read()), 15)
time.sleep(1.0)
r = s.api("GET", P, "balance", token=a)
is_((r.status, hdr(r), r.headers.get("Retry-After")), (503, want, "1"),
    "with the workers gone nginx answers 503 JSON with Retry-After, nosniff and no-store")

# Nothing secret in any log.
secrets = {"token " + t[:12]: t for t in (a, b, old)}
secrets.update({"signature of " + t[:12]: t.rsplit(".", 1)[1] for t in (a, b)})
for name in ("token.secret", "signing.secret"):
    secrets[name] = open(os.path.join(s.dir, name)).read().strip()
logs = [p for p in glob.glob(os.path.join(s.dir, "**", "*"), recursive=True)
        if os.path.isfile(p) and (p.endswith(".log") or "/log/" in p)]
ok(len(logs) >= 3, "there are logs to search (%s)" % ", ".join(os.path.relpath(p, s.dir) for p in logs))
text = {p: open(p, "rb").read().decode("utf-8", "replace") for p in logs}
ok(any("/api/promotions/%s/visit" % P in t for t in text.values()), "the requests were logged")
for what, value in secrets.items():
    found = [os.path.relpath(p, s.dir) for p, t in text.items() if value in t]
    is_(found, [], "no log holds the %s" % what)
done()
