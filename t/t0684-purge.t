#!/usr/bin/env python3
# purge: client identifiers (device ids, addresses) of credited invites and
# refused claims older than "retention_days" become keyed-hash pseudonyms;
# recent ones stay; one client's rows still group together; the rows and
# every report (stats, export winners, user show) stay as they were but
# for those identifiers; running it again does nothing more.
import hashlib, json, re, time
from harness import Stack, ok, is_, done, diag, promo

P = "t-purge"
s = Stack(stack_args=["--trust-device-id"], extra_config={"retention_days": 30},
          promos=[promo(P, days_back=60, prizes=[
              {"id": "gift", "name": "기프티콘", "daily_stock": 100, "probability": 1}])])
ann = s.token("ann")
s.api("POST", P, "visit", token=ann)
code = s.api("GET", P, "invite", token=ann).json["code"]
# Credited claims from two devices, refusals from them and from a third.
for u, dev in (("i1", "dev-one"), ("i2", "dev-one"), ("i3", "dev-two"), ("i4", "dev-new")):
    r = s.api("POST", P, "invite/claim", {"code": code}, token=s.token(u),
              headers={"X-Device-ID": dev})
    is_(r.status, 200, "%s claims from %s" % (u, dev))
for u, dev in (("i1", "dev-one"), ("ann", "dev-two"), ("i2", "dev-new")):
    r = s.api("POST", P, "invite/claim", {"code": code}, token=s.token(u),
              headers={"X-Device-ID": dev})
    ok(r.status in (409, 422), "%s's claim from %s is refused" % (u, dev))
for u in ("i1", "i3"):
    t = s.token(u)
    s.api("POST", P, "draws", {"request_id": "req-%s-00001" % u}, token=t)

# Everything but dev-new's rows becomes 45 days old.
old = int((time.time() - 45 * 86400) * 1000)
for t in ("invites", "claim_refusals"):
    s.execute("UPDATE %s SET created_at = ? WHERE client <> 'dev-new'" % t, old)


def reports():
    st = json.loads(s.ctl("stats", P, "--json").stdout)
    ex = s.ctl("export", "winners", P).stdout
    us = {u: json.loads(s.ctl("user", "show", P, u, "--json").stdout) for u in ("ann", "i1", "i2")}
    return st, ex, us


def clients(table):
    return s.query("SELECT client FROM %s ORDER BY created_at, client" % table)


st0, ex0, us0 = reports()
inv0, ref0 = clients("invites"), clients("claim_refusals")
r = s.ctl("purge", "--json")
got = json.loads(r.stdout)
is_((got["retention_days"], got["clients"], got["invites"], got["claim_refusals"]), (30, 2, 3, 2),
    "purge: 2 clients in 3 invites and 2 refused claims past 30 days")
inv, ref = clients("invites"), clients("claim_refusals")
is_(len(inv), len(inv0), "every invite row is kept")
is_(len(ref), len(ref0), "every refused claim is kept")
rows = [c for (c,) in inv + ref]
ok("dev-one" not in rows and "dev-two" not in rows, "no old client identifier is left")
is_(rows.count("dev-new"), 2, "the recent ones are kept as they came")
pseudo = [c for c in rows if c.startswith("~")]
ok(all(re.match(r"^~[0-9a-f]{32}$", c) for c in pseudo), "the others are pseudonyms: ~ and 32 hex digits")
is_(len(set(pseudo)), 2, "one pseudonym per client: dev-one's rows still group together")
one = s.scalar("SELECT client FROM invites WHERE invitee='i1'")
is_(s.scalar("SELECT client FROM invites WHERE invitee='i2'"), one, "i1's and i2's claims share dev-one's")
ok(one != "~" + hashlib.sha256(b"dev-one").hexdigest()[:32] and
   one != "~" + hashlib.blake2b(b"dev-one", digest_size=16).hexdigest(),
   "and it is keyed: not a plain hash anyone can test a guess against")

st1, ex1, us1 = reports()
is_(st1, st0, "stats are the same")
is_(ex1, ex0, "export winners is the same")
for u in us0:
    for rr in us0[u].get("refused_claims", []) + us1[u].get("refused_claims", []):
        rr.pop("client", None)
is_(us1, us0, "user show is the same but for the client identifiers")
r = s.ctl("purge")
ok("0 clients" in r.stdout, "purge again: nothing more to do") or diag(r.stdout)
for t in ("invites", "claim_refusals"):
    s.execute("UPDATE %s SET created_at = ? WHERE client = 'dev-new'" % t,
              int((time.time() - 2 * 86400) * 1000))
r = s.ctl("purge", "--days", "1")
ok("1 clients" in r.stdout, "--days 1 reaches a client of two days ago") or diag(r.stdout)
ok("dev-new" not in [c for (c,) in clients("invites") + clients("claim_refusals")],
   "and replaces it")
done()
