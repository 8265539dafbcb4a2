#!/usr/bin/env python3
# Races across application hosts (script/cluster: three hosts on one
# PostgreSQL primary with a synchronous standby): the same thing asked of
# every host at once is done once. 50 parallel first visits of one user,
# spread over the hosts, grant once; one draw request_id sent to every
# host at once is one draw and one dice spent; parallel claims of one
# inviter's code through different hosts credit the inviter exactly up to
# the cap; the per-client claim cap holds across hosts, counting the
# client's own address (passed on by the front), not the front's.
import threading
from clusterlib import Cluster, check_invariants
from harness import ok, is_, diag, done, promo

P = "t-races"
CAP, CLIENT_CAP = 5, 4
c = Cluster(hosts=3, promos=[
    promo(P, grants={"visit": 3, "inviter": 1, "invitee": 1},
          invites={"max_credited_per_inviter": CAP, "invitee_new_within_hours": 24},
          prizes=[{"id": "gift", "name": "gift", "daily_stock": 1000, "probability": 0.5}]),
    promo(P + "-cc", abuse={"claims_per_client_per_day": CLIENT_CAP})])
N = len(c.hosts)


def parallel(calls):
    """Runs every call at once (a barrier before each); their results."""
    out = [None] * len(calls)
    gate = threading.Barrier(len(calls))

    def run(k):
        gate.wait()
        try:
            out[k] = calls[k]()
        except OSError as e:
            out[k] = e
    ts = [threading.Thread(target=run, args=(k,)) for k in range(len(calls))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return out


# 1. One user's first visit, 50 times at once over every host.
tok = c.token("racer")
rs = parallel([lambda k=k: c.api("POST", P, "visit", token=tok, host=k % N) for k in range(50)])
statuses = sorted(set(getattr(r, "status", None) for r in rs))
is_(statuses, [200], "50 parallel first visits of one user over %d hosts all answer 200" % N)
granted = [r for r in rs if getattr(r, "json", None) and r.json["granted"]]
is_(len(granted), 1, "exactly one of them says granted")
is_(sorted(set(r.json["balance"] for r in rs if getattr(r, "json", None))), [3],
    "every answer shows the balance of one grant")
is_(c.scalar("SELECT count(*) FROM grants WHERE promo=? AND uid='racer' AND reason='visit'", P), 1,
    "the ledger has one visit grant")

# 2. One draw request_id sent to every host at once, several times each.
rs = parallel([lambda k=k: c.api("POST", P, "draws", {"request_id": "same-draw"}, token=tok,
                                 host=k % N) for k in range(4 * N)])
is_(sorted(set(getattr(r, "status", None) for r in rs)), [200],
    "%d copies of one draw over %d hosts all answer 200" % (4 * N, N))
ids = set(r.json["draw"]["id"] for r in rs if getattr(r, "json", None))
is_(len(ids), 1, "all with the same draw id")
is_(c.scalar("SELECT count(*) FROM draws WHERE promo=? AND uid='racer' AND request_id='same-draw'",
             P), 1, "one draw in the ledger")
is_(c.scalar("SELECT spent FROM balances WHERE promo=? AND uid='racer'", P), 1, "one dice spent")
r = c.api("GET", P, "balance", token=tok)
is_((r.status, r.json), (200, {"balance": 2}), "the balance says 2 through the front")

# 3. One inviter's code claimed by 30 new users at once over every host.
itok = c.token("inviter")
code = c.api("GET", P, "invite", token=itok).json["code"]
invitees = ["inv%d" % k for k in range(30)]
toks = c.tokens(*invitees)
rs = parallel([lambda k=k: c.api("POST", P, "invite/claim", {"code": code}, token=toks[k],
                                 host=k % N) for k in range(len(toks))])
is_(sorted(set(getattr(r, "status", None) for r in rs)), [200],
    "30 parallel claims of one code over %d hosts all answer 200 (every invitee is credited)" % N)
is_(c.scalar("SELECT count(*) FROM invites WHERE promo=? AND inviter='inviter'", P), 30,
    "30 invites rows")
is_(c.scalar("SELECT count(*) FROM grants WHERE promo=? AND uid='inviter' AND reason='inviter'", P),
    CAP, "the inviter got exactly the cap's %d grants" % CAP)
is_(c.scalar("SELECT invites_credited FROM balances WHERE promo=? AND uid='inviter'", P), CAP,
    "and their counter says %d" % CAP)
is_(c.scalar("SELECT count(*) FROM invites WHERE promo=? AND inviter='inviter'"
             " AND inviter_granted=1", P), CAP, "exactly %d invites say they granted" % CAP)

# 4. The per-client cap: 12 claims from one client (this machine) at once
#    through the front, which spreads them over the hosts.
PC = P + "-cc"
itok2 = c.token("inviter2")
code2 = c.api("GET", PC, "invite", token=itok2).json["code"]
toks = c.tokens(*["cc%d" % k for k in range(12)])
rs = parallel([lambda k=k: c.api("POST", PC, "invite/claim", {"code": code2}, token=toks[k])
               for k in range(len(toks))])
by_status = sorted(getattr(r, "status", None) for r in rs)
is_((by_status.count(200), by_status.count(429)), (CLIENT_CAP, 12 - CLIENT_CAP),
    "12 parallel claims from one client: %d credited, the rest 429 claim_limited" % CLIENT_CAP)
per_host = []
for h in c.hosts:
    with open("%s/log/access.log" % h["dir"]) as f:
        per_host.append(sum(1 for line in f if "/invite/claim" in line and PC in line))
diag("claims per host: %s" % per_host)
ok(all(n > 0 for n in per_host), "the front spread them over every host")
is_(c.query("SELECT DISTINCT client FROM invites WHERE promo=?", PC), [("127.0.0.1",)],
    "the cap counted the client's address, passed on by the front")
is_(c.scalar("SELECT count(*) FROM invites WHERE promo=?", PC), CLIENT_CAP,
    "the ledger has %d credited claims" % CLIENT_CAP)

check_invariants(c, P, cap=CAP, stocks={"gift": 1000})
check_invariants(c, PC, cap=30)
done()
