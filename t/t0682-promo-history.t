#!/usr/bin/env python3
# Loading a promotion again keeps every earlier version (when, by whom,
# the file as it was) and says what changed, field by field; a reload that
# would break the running campaign is refused with the reason and stores
# nothing, unless --force, which records what it overrode.
import json, os, subprocess
from datetime import date, timedelta
from harness import Stack, ok, is_, done, diag, promo, BUILD

P = "t-hist"
s = Stack(promos=[])
base = promo(P, days_back=1, prizes=[
    {"id": "gift", "name": "기프티콘", "daily_stock": 3, "probability": 1},
    {"id": "cake", "name": "케이크", "daily_stock": 10, "probability": 0}])


def load(d, *args, user="alice"):
    """promo load of d as a file, run by user (through sudo)."""
    path = os.path.join(s.dir, "%s.json" % P)
    with open(path, "w") as f:
        json.dump(d, f, ensure_ascii=False, indent=1)
    return subprocess.run([os.path.join(BUILD, "luckydicectl"), "promo", "load", path] + list(args),
                          env=dict(s.env, SUDO_USER=user), capture_output=True, text=True,
                          timeout=60)


def variant(**over):
    d = json.loads(json.dumps(base))
    for k, v in over.items():
        d[k] = v
    return d


def history():
    return json.loads(s.ctl("promo", "history", P, "--json").stdout)["versions"]


r = load(base)
is_(r.returncode, 0, "the first load") or diag(r.stderr)
# Two wins today: the gift's stock today has given out 2.
for u in ("w1", "w2"):
    t = s.token(u)
    s.api("POST", P, "visit", token=t)
    is_(s.api("POST", P, "draws", {"request_id": "req-%s-0001" % u}, token=t).json["draw"]["prize"]["id"],
        "gift", "%s wins the gift" % u)

# A harmless change: stored, with each field that changed.
d2 = variant(name="새 이름")
d2["prizes"][1]["daily_stock"] = 20
r = load(d2, user="bob")
is_(r.returncode, 0, "a reload that changes the name and a stock upward is stored")
ok('name: "test t-hist" -> "새 이름"' in r.stdout and "prizes[cake].daily_stock: 10 -> 20" in r.stdout,
   "promo load prints each field that changed") or diag(r.stdout)
v = history()
is_([(x["action"], x["by"], x.get("version")) for x in v], [("load", "alice", 1), ("load", "bob", 2)],
    "the history keeps both versions, by whom")
is_(json.loads(v[0]["content"])["name"], "test t-hist", "the first version's file is kept as it was")
is_(sorted((c["field"], c["from"], c["to"]) for c in v[1]["changes"]),
    [("name", "test t-hist", "새 이름"), ("prizes[cake].daily_stock", 10, 20)],
    "the second's changes, field by field")

# Refusals: each names its field and stores nothing.
stored = s.scalar("SELECT definition FROM promotions WHERE id=?", P)
refused = [
    ("time_zone", variant(name="새 이름", time_zone="Asia/Tokyo"), "time_zone:"),
    ("first_day", variant(name="새 이름", first_day=str(date.fromisoformat(base["first_day"]) -
                                                    timedelta(days=1))), "first_day:"),
]
low = variant(name="새 이름")
low["prizes"][0]["daily_stock"] = 1
refused.append(("a day's stock below what it gave", low, "prizes[gift]:"))
gone = variant(name="새 이름")
gone["prizes"] = [gone["prizes"][1]]
refused.append(("a prize with winners removed", gone, "'gift' is removed, and it has 2 winners"))
for what, d, says in refused:
    r = load(d)
    ok(r.returncode == 1 and says in r.stderr and "nothing was stored" in r.stderr,
       "refused: %s (exit 1, the reason)" % what) or diag(r.stderr)
is_(s.scalar("SELECT definition FROM promotions WHERE id=?", P), stored, "nothing was stored")
is_(len(history()), 2, "nor added to the history")

# --force stores it and records what it overrode.
r = load(low, "--force", user="carol")
ok(r.returncode == 0 and "warning:" in r.stdout and "prizes[gift]:" in r.stdout,
   "--force stores it, with the warning") or diag(r.stdout + r.stderr)
v = history()
is_((v[-1]["by"], v[-1]["version"]), ("carol", 3), "the forced version is in the history")
ok(v[-1]["note"].startswith("forced over: ") and "prizes[gift]" in v[-1]["note"],
   "with the refusals it overrode") or diag(v[-1]["note"])
r = s.ctl("promo", "history", P)
ok("version 3" in r.stdout and "by carol" in r.stdout and
   "prizes[gift].daily_stock: 3 -> 1" in r.stdout, "promo history in text") or diag(r.stdout)

# Before the first day, the time zone and the days may change freely.
F = "t-hist-later"
later = promo(F, days_back=-5, days_ahead=10)
path = os.path.join(s.dir, "later.json")
with open(path, "w") as f:
    json.dump(later, f)
s.ctl("promo", "load", path)
later["time_zone"] = "Asia/Tokyo"
later["first_day"] = str(date.fromisoformat(later["first_day"]) + timedelta(days=1))
with open(path, "w") as f:
    json.dump(later, f)
r = s.ctl("promo", "load", path, check=False)
is_(r.returncode, 0, "a promotion not started yet takes another time zone and first day")
r = s.ctl("promo", "history", "nosuch", check=False)
is_(r.returncode, 2, "the history of an unknown promotion exits 2")
done()
