#!/usr/bin/env python3
# Support actions: grant and revoke by ticket (idempotent, never below
# zero, recorded, published to the cache) and revoking an undelivered
# reward so the dispatcher never sends it.
import json, os, re, sqlite3, threading, subprocess
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from harness import Stack, ok, is_, done, promo, diag, BUILD

# A stand-in reward/notify service that records the Idempotency-Keys it got.
got = []


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        got.append(self.headers.get("Idempotency-Key"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


srv = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = "http://127.0.0.1:%d" % srv.server_address[1]

P = "t-support"
s = Stack(promos=[promo(P, prizes=[
    {"id": "coffee", "name": "Coffee", "daily_stock": 10, "probability": 1.0}])],
    extra_config={"reward_url": url + "/reward", "notify_url": url + "/notify"})
u = s.token("U")
s.api("POST", P, "visit", token=u)


def bal(uid="U"):
    return s.query("SELECT granted, spent, version FROM balances WHERE promo=? AND uid=?", P, uid)[0]


r = s.ctl("grant", P, "U", 3, "--reason", "lost dice, sorry", "--ticket", "SUP-1")
ok(r.returncode == 0 and "granted 3 to 'U'" in r.stdout and "balance 4" in r.stdout,
   "grant prints what it did") or diag(r.stdout + r.stderr)
is_(bal(), (4, 0, 2), "the ledger has 3 more, version bumped")
is_(s.redis_cli("GET", s.cache_key(P, "U")), "2:4", "the cache got the new version and balance")
r = s.ctl("grant", P, "U", 3, "--reason", "lost dice, sorry", "--ticket", "SUP-1")
ok(r.returncode == 0 and "already granted by ticket SUP-1" in r.stdout,
   "the same ticket again says already granted") or diag(r.stdout + r.stderr)
is_(bal(), (4, 0, 2), "and changes nothing")

with ThreadPoolExecutor(10) as ex:
    rs = list(ex.map(lambda _: s.ctl("grant", P, "U", 5, "--reason", "x", "--ticket", "SUP-2",
                                     check=False), range(10)))
is_(sorted(r.returncode for r in rs), [0] * 10, "10 concurrent runs of one ticket all succeed")
is_(sum("granted 5" in r.stdout for r in rs), 1, "exactly one of them granted")
is_(s.scalar("SELECT count(*) FROM grants WHERE promo=? AND ref='SUP-2'", P), 1,
    "the ledger has one grant for the ticket")
is_(bal(), (9, 0, 3), "balance 9")

note = s.scalar("SELECT note FROM grants WHERE promo=? AND ref='SUP-1'", P)
ok(re.match(r"^lost dice, sorry \(by \S+\)$", note or ""), "the grant notes reason and operator: %r" % note)

before = s.dump()
r = s.ctl("revoke", P, "U", 100, "--reason", "too many", "--ticket", "REV-1", check=False)
ok(r.returncode == 1 and "never goes below zero" in r.stderr and "balance is 9" in r.stderr,
   "revoking 100 of 9 is refused with a clear message") or diag(r.stdout + r.stderr)
is_(s.dump(), before, "and changes nothing")
r = s.ctl("revoke", P, "U", 2, "--reason", "double compensation", "--ticket", "REV-1")
ok("revoked 2 from 'U'" in r.stdout and "balance 7" in r.stdout, "revoking 2 works") or diag(r.stdout)
is_(bal(), (7, 0, 4), "granted goes down by 2, version bumped")
is_(s.redis_cli("GET", s.cache_key(P, "U")), "4:7", "the cache follows")
r = s.ctl("revoke", P, "U", 2, "--reason", "double compensation", "--ticket", "REV-1")
ok("already revoked by ticket REV-1" in r.stdout, "the same revoke ticket again: already revoked")
is_(bal(), (7, 0, 4), "and changes nothing")
is_(s.scalar("SELECT sum(amount) FROM grants WHERE promo=? AND uid='U'", P), 7,
    "the balance is still the sum of the grants (a revoke is a negative grant)")

# Revokes with different tickets at once are checked one after the other:
# 7 dice, ten revokes of 2, three take them and seven are refused.
s.ctl("grant", P, "M", 7, "--reason", "x", "--ticket", "SUP-M")
with ThreadPoolExecutor(10) as ex:
    rs = list(ex.map(lambda i: s.ctl("revoke", P, "M", 2, "--reason", "x", "--ticket", "REV-M%d" % i,
                                     check=False), range(10)))
is_(sorted(r.returncode for r in rs), [0] * 3 + [1] * 7,
    "10 concurrent revokes of 2 from 7: three done, seven refused") or diag([r.stderr for r in rs])
is_(sum("never goes below zero" in r.stderr for r in rs), 7, "each refusal says why")
is_(bal("M")[:2], (1, 0), "balance 1")
try:
    s.execute("UPDATE balances SET spent = granted + 1 WHERE promo=? AND uid='U'", P)
    ok(False, "the schema refuses a balance below zero")
except (sqlite3.IntegrityError, RuntimeError) as e:
    ok("CHECK constraint failed" in str(e) or 'violates check constraint "balances_check"' in str(e),
       "the schema refuses a balance below zero (CHECK granted >= spent)") or diag(str(e))

before = s.dump()
for args, desc in [((P, "U", 0), "N = 0"), ((P, "U", "abc"), "N not a number"),
                   ((P, "U", 10 ** 7), "N too large"), ((P, "bad uid", 1), "a malformed uid"),
                   (("nope", "U", 1), "an unknown promotion")]:
    r = s.ctl("grant", *args, "--reason", "x", "--ticket", "T-1", check=False)
    is_(r.returncode, 2, "grant with %s exits 2" % desc)
r = s.ctl("grant", P, "U", 1, "--ticket", "T-1", check=False)
is_(r.returncode, 2, "grant without --reason exits 2")
r = s.ctl("grant", P, "U", 1, "--reason", "x", "--ticket", "bad ticket", check=False)
ok(r.returncode == 2 and "--ticket" in r.stderr, "a malformed ticket is named")
r = s.ctl("grant", P, "U", 1, "--reason", "bad\nline", "--ticket", "T-1", check=False)
is_(r.returncode, 2, "a reason with a newline is refused")
is_(s.dump(), before, "refused commands change nothing")

h = json.loads(s.ctl("user", "show", P, "U", "--json").stdout)
is_(sorted((g["reason"], g["amount"], g["ref"]) for g in h["grants"] if g["reason"] in ("support", "revoke")),
    [("revoke", -2, "REV-1"), ("support", 3, "SUP-1"), ("support", 5, "SUP-2")],
    "user show lists the support grants and the revoke with their tickets")
out = s.ctl("user", "show", P, "U").stdout
ok(re.search(r"revoke\s+-2\s+ticket REV-1: double compensation \(by \S+\)", out),
   "user show text: the revoke with ticket, reason and operator")

# Rewards: two wins; one is revoked before the dispatcher runs.
d1 = s.api("POST", P, "draws", {"request_id": "draw-0000001"}, token=u).json["draw"]["id"]
d2 = s.api("POST", P, "draws", {"request_id": "draw-0000002"}, token=u).json["draw"]["id"]
r = s.ctl("revoke-reward", P, d1, "--reason", "fraud ring", "--ticket", "REV-R1")
ok(r.returncode == 0 and "2 event(s) will not be sent" in r.stdout, "revoke-reward of draw 1") or diag(r.stdout + r.stderr)
is_(s.query("SELECT kind, state FROM outbox WHERE key LIKE ? ORDER BY kind", "%s/%s/draw/%d/%%" % (P, s.ledger_id(), d1)),
    [("notify.win", "revoked"), ("reward.issue", "revoked")], "both events of draw 1 are revoked")
note = s.scalar("SELECT last_error FROM outbox WHERE key=?", s.event_key(P, d1))
ok(re.match(r"^revoked by ticket REV-R1: fraud ring \(by \S+\)$", note or ""), "the revoke is noted: %r" % note)
is_(s.query("SELECT state FROM outbox WHERE key=?", s.event_key(P, d2)), [("pending",)],
    "draw 2's reward is untouched")
r = s.ctl("revoke-reward", P, d1, "--reason", "fraud ring", "--ticket", "REV-R1")
ok("already revoked" in r.stdout, "revoking again: already revoked")
r = s.ctl("revoke", "--reward", d1, P, "--reason", "x", "--ticket", "REV-R1")
ok("already revoked" in r.stdout, "revoke --reward DRAW_ID PROMO is the same command")
out = s.ctl("user", "show", P, "U").stdout
ok(re.search(r"reward\.issue\s+revoked.*revoked by ticket REV-R1", out), "user show shows the revoked reward")
r = s.ctl("revoke-reward", P, 99999, "--reason", "x", "--ticket", "REV-R2", check=False)
ok(r.returncode == 1 and "no draw 99999" in r.stderr, "an unknown draw is refused")
s.execute("UPDATE outbox SET lease_until=? WHERE key=?", 2 ** 50, s.event_key(P, d2))
r = s.ctl("revoke-reward", P, d2, "--reason", "x", "--ticket", "REV-R3", check=False)
ok(r.returncode == 1 and "being sent right now" in r.stderr, "a reward under a dispatcher lease is not revoked")
s.execute("UPDATE outbox SET lease_until=0, state='delivered' WHERE key=?", s.event_key(P, d2))
r = s.ctl("revoke-reward", P, d2, "--reason", "x", "--ticket", "REV-R3", check=False)
ok(r.returncode == 1 and "delivered" in r.stderr, "a delivered reward cannot be revoked")
s.execute("UPDATE outbox SET state='pending' WHERE key=?", s.event_key(P, d2))

# The dispatcher only claims pending rows: it delivers the reward that
# was not revoked, and never sends the revoked one or its notification.
dispatch = os.path.join(BUILD, "luckydice-dispatch")
subprocess.run([dispatch], env=s.env, capture_output=True, timeout=120)
ok(s.event_key(P, d2) in got, "the dispatcher delivered the reward that was not revoked")
ok(not any(k and k.startswith("%s/%s/draw/%d/" % (P, s.ledger_id(), d1)) for k in got),
   "the dispatcher never sent the revoked reward or its notification")
is_(s.query("SELECT state FROM outbox WHERE key LIKE ?", "%s/%s/draw/%d/%%" % (P, s.ledger_id(), d1)),
    [("revoked",), ("revoked",)], "the revoked rows stay revoked")
done()
