#!/usr/bin/env python3
# export winners: RFC 4180 CSV that Python's csv module reads back into
# exactly the winners, with their delivery state; --bom for Excel.
import csv, io, os, re, subprocess
from datetime import timedelta
from harness import Stack, ok, is_, done, promo, seoul_today, BUILD

P = "t-export"
# The first draw is made while coffee always wins, so a coffee (whose name
# needs quoting) is always exported; the others draw coffee or cake.
coffee = {"id": "coffee", "name": "Coffee, \"large\"", "daily_stock": 2, "probability": 0.5}
cake = {"id": "cake", "name": "케이크", "daily_stock": 10, "probability": 0.5}
s = Stack(promos=[promo(P, prizes=[dict(coffee, probability=1.0), dict(cake, probability=0)])])
uids = ["w%d" % i for i in range(6)]
toks = s.tokens(*uids)
for t in toks:
    s.api("POST", P, "visit", token=t)
draws = [s.api("POST", P, "draws", {"request_id": "req-%08d" % 0}, token=toks[0]).json["draw"]]
is_((draws[0]["prize"] or {}).get("id"), "coffee", "the first draw wins a coffee")
s.load_promo(promo(P, prizes=[coffee, cake]))
draws += [s.api("POST", P, "draws", {"request_id": "req-%08d" % i}, token=t).json["draw"]
          for i, t in enumerate(toks) if i > 0]
wins = [(u, d) for u, d in zip(uids, draws) if d["prize"]]
s.ctl("revoke-reward", P, wins[0][1]["id"], "--reason", "test", "--ticket", "EXP-1")


def export(*extra):
    return subprocess.run([os.path.join(BUILD, "luckydicectl"), "export", "winners", P, *extra],
                          env=s.env, capture_output=True, timeout=60)


r = export()
is_(r.returncode, 0, "export winners exits 0")
raw = r.stdout
ok(raw.endswith(b"\r\n") and raw.count(b"\r\n") >= len(wins) + 1, "records end with CRLF")
ok(b',"Coffee, ""large""",' in raw, "a field with a comma and quotes is quoted, quotes doubled")
rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
is_(rows[0], ["user", "prize_id", "prize_name", "day", "time", "draw_id", "delivery"], "the header row")
names = {"coffee": "Coffee, \"large\"", "cake": "케이크"}
today = str(seoul_today())
want = [[u, d["prize"]["id"], names[d["prize"]["id"]], today, "", str(d["id"]),
         "revoked" if i == 0 else "pending"] for i, (u, d) in enumerate(wins)]
got = [r[:4] + [""] + r[5:] for r in rows[1:]]
is_(got, want, "one row per win, in draw order, with the delivery state (%d wins of 6)" % len(wins))
ok(all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+09:00$", r[4]) for r in rows[1:]),
   "times are local ISO-8601")
ok(all(len(r) == 7 for r in rows), "every record has 7 fields")
is_(r.stderr.decode().strip(), "<6>%d winners" % len(wins),
    "the count goes to stderr (with its syslog priority, info), not into the CSV")

r = export("--day", today)
is_(len(list(csv.reader(io.StringIO(r.stdout.decode(), newline="")))) - 1, len(wins), "--day today: the same rows")
r = export("--day", str(seoul_today() - timedelta(days=1)))
is_(r.stdout, b"user,prize_id,prize_name,day,time,draw_id,delivery\r\n", "--day yesterday: only the header")
r = export("--bom")
ok(r.stdout.startswith(b"\xef\xbb\xbfuser,prize_id,") and r.stdout[3:] == raw,
   "--bom: the UTF-8 byte order mark (for Excel), then the same CSV")
ok(not raw.startswith(b"\xef\xbb\xbf"), "without --bom, none (for programs)")
is_(r.stdout.decode("utf-8-sig").count("케이크"), raw.decode().count("케이크"),
    "the Korean names read back from the BOM'd file")
r = export("--day", "2001-01-01")
ok(r.returncode == 2 and b"not a day of promotion" in r.stderr, "a day outside the promotion is refused")
done()
