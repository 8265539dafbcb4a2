#!/usr/bin/env python3
# luckydicectl stats (the ledger per local day, table and --json) and
# promo simulate (a dry run of a promotion file that writes nothing).
import json, os, re
from harness import Stack, ok, is_, done, promo, seoul_today, SRC

P = "t-stats"
s = Stack(promos=[promo(P, grants={"visit": 2, "inviter": 1, "invitee": 1}, prizes=[
    {"id": "sure", "name": "sure thing", "daily_stock": 3, "probability": 1},
])])
today = str(seoul_today())

# ---- stats -----------------------------------------------------------------
a, b, c = s.tokens("sa", "sb", "sc")
s.api("POST", P, "visit", token=a)
code = s.api("GET", P, "invite", token=a).json["code"]
s.api("POST", P, "invite/claim", {"code": code}, token=b)   # b: visit 2 + invitee 1
s.api("POST", P, "visit", token=c)
for tok, uid, n in ((a, "sa", 3), (b, "sb", 2)):
    for k in range(n):
        r = s.api("POST", P, "draws", {"request_id": "stat-%s-%d" % (uid, k)}, token=tok)
        ok(r.status == 200, "draw %d of %s answers 200" % (k, uid))

r = s.ctl("stats", P, "--json")
st = json.loads(r.stdout)
days = {d["day"]: d for d in st["days"]}
is_(len(st["days"]), 32, "stats --json lists every day of the promotion")
is_((days[today]["visits"], days[today]["invites"], days[today]["draws"]), (3, 1, 5),
    "today: 3 visits, 1 invite credited, 5 draws")
is_(days[today]["prizes"]["sure"], {"won": 3, "stock": 3, "left": 0, "open": 3},
    "today: 3 of 3 'sure' won, 0 left, all 3 open since midnight")
is_((days[today]["grants"]["visit"], days[today]["grants"]["invitee"],
     days[today]["grants"]["inviter"]),
    ({"count": 3, "dice": 6}, {"count": 1, "dice": 1}, {"count": 1, "dice": 1}),
    "today's grants by reason: 3 visits of 2 dice, an invitee and an inviter of 1")
is_((st["today"], st["pending"], days[today]["finished"]), (1, 0, False),
    "today is day 1, not finished; no day is pending")
is_(days[today]["draws"], s.scalar("SELECT count(*) FROM draws WHERE promo=?", P),
    "draws agree with the ledger")
other = [d for d in st["days"] if d["day"] != today]
ok(all(d["draws"] == 0 and d["prizes"]["sure"] == {"won": 0, "stock": 3, "left": 3,
                                                    "open": 3 if d["day"] < today else 0}
       for d in other),
   "every other day: nothing drawn, full stock left; yesterday's was open, none to come")
t = s.ctl("stats", P).stdout
ok(re.search(r"^%s\s+3\s+1\s+5\s+3/0$" % today, t, re.M), "the table shows today's row") or print(t)
ok(re.search(r"^total\s+3\s+1\s+5\s+3/93$", t, re.M), "and a total row (93 left over 32 days)")
r = s.ctl("stats", "no-such-promo", check=False)
ok(r.returncode == 2 and "no promotion 'no-such-promo'" in r.stderr, "stats of an unknown promotion exits 2")

# ---- promo simulate --------------------------------------------------------
LD = os.path.join(SRC, "promotions", "lucky-dice-2024.json")
before = s.dump()
files = sorted(os.listdir(s.dir))
r = s.ctl("promo", "simulate", LD, "--participants", 300000)
out = r.stdout
rows = re.findall(r"^(2024-07-\d\d)\s", out, re.M)
is_(len(rows), 24, "simulate prints the 24 days")
is_((rows[0], rows[-1]), ("2024-07-08", "2024-07-31"), "from 07-08 to 07-31")
ok("total stock 128,401" in out, "total stock is 128,401") or print(out)
ok(re.search(r"^total\s+600,000\s+72,000/96,000\s+18,000/24,000\s+6,000/7,200\s+1,200/1,200\s+1/1",
             out, re.M), "300,000 participants x 2 dice: the expected totals per prize")
ok(re.search(r"^2024-07-31 .* 1/1 09:35$", out, re.M), "the grand prize exists only on 07-31")
is_(s.dump(), before, "simulate wrote nothing to the database")
is_(sorted(os.listdir(s.dir)), files, "and made no file")

r1 = s.ctl("promo", "simulate", LD, "--participants", 300000, "--seed", 42).stdout
r2 = s.ctl("promo", "simulate", LD, "--participants", 300000, "--seed", 42).stdout
ok(r1 == r2 and "one sampled run" in r1, "a seeded run is repeatable")
ok(r1 != s.ctl("promo", "simulate", LD, "--participants", 300000, "--seed", 43).stdout,
   "and another seed samples differently")
h = s.ctl("promo", "simulate", LD, "--participants", 300000, "--hourly").stdout
is_(len(re.findall(r"^    \d\d:00 ", h, re.M)), 24 * 24, "--hourly prints 24 hours for each day")
ok(re.search(r"^    11:00\s+1,042\s+1,500/2,000\s+375/500$", h, re.M),
   "by noon half of the paced stock is open")
k = s.ctl("promo", "simulate", LD, "--participants", 1000, "--draws-per-user", 10).stdout
ok(re.search(r"^total\s+10,000\s", k, re.M), "--draws-per-user sets the draws")
r = s.ctl("promo", "simulate", LD, check=False)
ok(r.returncode == 2 and "usage" in r.stderr, "--participants is required")
r = s.ctl("promo", "simulate", LD, "--participants", "many", check=False)
ok(r.returncode == 2 and "--participants: 'many'" in r.stderr, "a bad number is named")
bad = os.path.join(s.dir, "bad.json")
with open(bad, "w") as f:
    json.dump(promo("bad", prizes=[{"id": "x", "name": "x", "daily_stock": 1, "probability": 2}]), f)
r = s.ctl("promo", "simulate", bad, "--participants", 10, check=False)
ok(r.returncode == 2 and "prizes[0].probability" in r.stderr, "an invalid file is refused naming the field")
done()
