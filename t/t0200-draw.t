#!/usr/bin/env python3
# Draws against a real stack: 300 concurrent rolls on a stock of 20 never
# oversell, a request_id sent 10 times at once is one draw, bad bodies and
# refusals change nothing, and GET me lists the draws and prizes.
import time
from concurrent.futures import ThreadPoolExecutor
from harness import Stack, ok, is_, done, promo, diag

P, IDEM, ENDED = "t-draw", "t-idem", "t-ended"
GOLD = {"id": "gold", "name": "gold prize", "daily_stock": 20, "probability": 1}
s = Stack(workers=4, promos=[
    promo(P, grants={"visit": 3, "inviter": 1, "invitee": 1}, prizes=[GOLD]),
    promo(IDEM, grants={"visit": 3, "inviter": 1, "invitee": 1},
          prizes=[dict(GOLD, daily_stock=5)]),
    promo(ENDED, days_back=10, days_ahead=-3, prizes=[GOLD]),
])

# ---- 300 concurrent draws by 100 users holding 3 dice each --------------
uids = ["u%03d" % i for i in range(100)]
toks = dict(zip(uids, s.tokens(*uids)))
with ThreadPoolExecutor(32) as ex:
    vs = list(ex.map(lambda u: s.api("POST", P, "visit", token=toks[u]), uids))
is_(set((r.status, r.json["balance"]) for r in vs), {(200, 3)}, "100 users visit and hold 3 dice")

jobs = [(u, "roll-%s-%d" % (u, k)) for k in range(3) for u in uids]
t0 = time.monotonic()
with ThreadPoolExecutor(64) as ex:
    rs = list(ex.map(lambda j: (j[0], s.api("POST", P, "draws", {"request_id": j[1]},
                                              token=toks[j[0]])), jobs))
diag("300 draws from 64 threads in %.2f s" % (time.monotonic() - t0))
is_(sum(1 for _, r in rs if r.status == 200), 300, "300 concurrent draws all answer 200")
if any(r.status != 200 for _, r in rs):
    diag([r for _, r in rs if r.status != 200][:3])
    s.dump_logs()
wins = [(u, r.json["draw"]) for u, r in rs if r.status == 200 and r.json["draw"]["prize"]]
is_(len(wins), 20, "exactly 20 of them win (stock 20, probability 1)")
is_(set(d["prize"]["id"] for _, d in wins), {"gold"}, "every win is the gold prize")
ok(all(r.json["balance"] >= 0 for _, r in rs if r.status == 200), "no answer shows a balance below 0")
is_(sorted(r.json["balance"] for _, r in rs if r.status == 200),
    sorted([0, 1, 2] * 100), "each user's three answers show balances 2, 1 and 0")
is_(len(set(r.json["draw"]["id"] for _, r in rs)), 300, "300 distinct draw ids")

more = list(ThreadPoolExecutor(32).map(
    lambda u: s.api("POST", P, "draws", {"request_id": "more-" + u}, token=toks[u]), uids))
is_(set((r.status, r.json["error"]) for r in more), {(409, "no_tickets")},
    "a fourth draw of every user answers 409 no_tickets")

is_(s.scalar("SELECT count(*) FROM draws WHERE promo=?", P), 300, "the ledger has 300 draws")
is_(s.scalar("SELECT count(*) FROM draws WHERE promo=? AND prize='gold'", P), 20,
    "20 of them won gold")
is_(s.scalar("SELECT count(*) FROM draws WHERE promo=? AND picked='gold' AND prize IS NULL"
             " AND stock_left=0", P), 280, "280 picked gold after it was gone: misses with 0 left")
is_(s.query("SELECT taken FROM stock WHERE promo=?", P), [(20,)], "stock taken is 20")
is_(s.query("SELECT kind, count(*) FROM outbox WHERE promo=? GROUP BY kind ORDER BY kind", P),
    [("notify.win", 20), ("reward.issue", 20)], "20 reward.issue and 20 notify.win events")
is_(s.scalar("SELECT count(*) FROM outbox o WHERE promo=? AND NOT EXISTS (SELECT 1 FROM draws d"
             " WHERE d.prize IS NOT NULL AND o.draw_id = d.id)", P), 0,
    "every event belongs to a winning draw")
is_(s.query("SELECT min(granted), max(granted), min(spent), max(spent) FROM balances"
            " WHERE promo=?", P), [(3, 3, 3, 3)], "every user: granted 3, spent 3, balance 0")
is_(s.query("SELECT uid FROM balances b WHERE promo=? AND (granted <> (SELECT sum(amount)"
            " FROM grants g WHERE g.promo=b.promo AND g.uid=b.uid) OR spent <> (SELECT count(*)"
            " FROM draws d WHERE d.promo=b.promo AND d.uid=b.uid))", P), [],
    "per user, granted = sum of grants and spent = draws recorded")
won_by = {}
for u, d in wins:
    won_by.setdefault(u, []).append(d["id"])
is_(sorted(s.query("SELECT uid, id FROM draws WHERE promo=? AND prize='gold'", P)),
    sorted((u, i) for u, ids in won_by.items() for i in ids), "the ledger's winners are the answered ones")

# ---- GET me lists the user's draws and prizes ----------------------------
u = wins[0][0]
me = s.api("GET", P, "me", token=toks[u])
is_(me.status, 200, "GET me answers 200")
is_(len(me.json["draws"]), 3, "me lists the user's 3 draws")
is_(sorted(d["id"] for d in me.json["draws"] if d["prize"]), sorted(won_by[u]),
    "me shows the prizes won on the right draws")
is_([d["prize"] for d in me.json["draws"] if d["prize"]][0], {"id": "gold", "name": "gold prize"},
    "a prize in me has its id and name")
is_(sorted(d["id"] for d in me.json["prizes"]), sorted(won_by[u]), "me lists the prizes won")
is_(set(d["prize"]["id"] for d in me.json["prizes"]), {"gold"}, "each with its prize")
loser = next(x for x in uids if x not in won_by)
is_(s.api("GET", P, "me", token=toks[loser]).json["prizes"], [], "a user who won nothing has no prizes")
is_((me.json["balance"], me.json["spent"]), (0, 3), "me shows balance 0 and spent 3")

# ---- the same request_id 10 times at once ----------------------------------
t = s.token("idem")
s.api("POST", IDEM, "visit", token=t)
with ThreadPoolExecutor(10) as ex:
    rs = list(ex.map(lambda _: s.api("POST", IDEM, "draws", {"request_id": "same-req-1"}, token=t),
                     range(10)))
is_([r.status for r in rs], [200] * 10, "10 concurrent sends of one request_id all answer 200")
is_(len(set(r.raw for r in rs)), 1, "and the ten answers are identical")
is_(rs[0].json["balance"], 2, "the answer shows one ticket spent")
is_(s.scalar("SELECT count(*) FROM draws WHERE promo=? AND uid='idem'", IDEM), 1, "one draw row")
is_(s.query("SELECT granted, spent FROM balances WHERE promo=? AND uid='idem'", IDEM), [(3, 1)],
    "one ticket spent in the ledger")
is_(s.scalar("SELECT count(*) FROM outbox WHERE promo=? AND kind='reward.issue'", IDEM), 1,
    "one reward event for the one win")
r = s.api("POST", IDEM, "draws", {"request_id": "same-req-1"}, token=t)
is_(r.raw, rs[0].raw, "an eleventh send later answers the same")

# ---- bad bodies: 400 JSON, nothing spent ------------------------------------
b = s.token("badbody")
s.api("POST", IDEM, "visit", token=b)
bad = [
    (None, "missing_field", "no body"),
    ("{}", "missing_field", "an empty object"),
    ('{"request_id": 12345678}', "invalid_field", "a number"),
    ('{"request_id": null}', "invalid_field", "null"),
    ('{"request_id": ["abcdefgh"]}', "invalid_field", "an array"),
    ('{"request_id": true}', "invalid_field", "a boolean"),
    ('{"request_id": "%s"}' % ("a" * 65), "invalid_field", "65 characters"),
    ('{"request_id": "abcdefg"}', "invalid_field", "7 characters"),
    ('{"request_id": ""}', "invalid_field", "an empty string"),
    ('{"request_id": "abcd efgh"}', "invalid_field", "a space"),
    ('{"request_id": "abcdefg!"}', "invalid_field", "a '!'"),
    ('{"request_id": "abc/defgh"}', "invalid_field", "a '/'"),
    ('{"request_id": "\u00e4bcdefgh"}', "invalid_field", "a non-ASCII letter"),
    ('{"request_id": "abcdefgh\\u0000"}', "bad_json", "an escaped NUL (strict JSON refuses \\u0000)"),
    ('{"request_id": "abcdefgh", "x": 1}', "unknown_field", "an extra field"),
    ('{"request_id": "abcdefgh"', "bad_json", "an unterminated object"),
    ('{"request_id": "abcdefgh"} x', "bad_json", "trailing garbage"),
    ("request_id=abcdefgh", "bad_json", "a form body"),
    ('["abcdefgh"]', "bad_json", "an array body"),
    ('"abcdefgh"', "bad_json", "a string body"),
    ("{'request_id': 'abcdefgh'}", "bad_json", "single quotes"),
    (b'{"request_id": "abc\xffdefgh"}', "bad_json", "invalid UTF-8"),
]
before = s.dump()
for body, code, desc in bad:
    r = s.api("POST", IDEM, "draws", token=b, raw=body)
    ok(r.status == 400 and r.json is not None and r.json.get("error") == code and
       r.json.get("message"), "%s -> 400 %s" % (desc, code)) or diag(r)
is_(s.dump(), before, "the ledger is unchanged after %d bad bodies" % len(bad))
r = s.api("POST", IDEM, "draws", {"request_id": "A" * 64}, token=b)
is_(r.status, 200, "64 characters is accepted")
r = s.api("POST", IDEM, "draws", {"request_id": "a-b_C-9z"}, token=b)
is_(r.status, 200, "8 characters of A-Z a-z 0-9 _ - is accepted")

# ---- refusals record nothing ---------------------------------------------
before = s.dump()
n = s.token("nodice")
r = s.api("POST", IDEM, "draws", {"request_id": "no-dice-1"}, token=n)
is_((r.status, r.json["error"]), (409, "no_tickets"), "a user who never visited -> 409 no_tickets")
r = s.api("POST", ENDED, "draws", {"request_id": "ended-123"}, token=toks["u000"])
is_((r.status, r.json["error"]), (403, "promotion_not_active"),
    "a draw in an ended promotion -> 403 promotion_not_active")
r = s.api("POST", "no-such-promo", "draws", {"request_id": "nope-123"}, token=n)
is_(r.status, 404, "an unknown promotion -> 404")
r = s.api("POST", IDEM, "draws", {"request_id": "no-token-1"})
is_(r.status, 401, "no token -> 401")
r = s.api("GET", IDEM, "draws", token=t)
is_(r.status, 405, "GET draws -> 405")
is_(s.dump(), before, "the refusals changed nothing in the ledger")
done()
