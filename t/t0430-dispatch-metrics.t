#!/usr/bin/env python3
# What /metrics tells about the dispatcher, read from the ledger at each
# scrape (luckydice-dispatch is a cron job with no metrics of its own):
# the outcomes by kind as counters (delivered, retried, dead) that agree
# with the outbox rows and never go back, the last delivery of each kind,
# the backlog and how long its oldest event has been due, the dead ones
# now; one kind failing while the other is delivered is told apart.
import re, time
from harness import ok, is_, done, diag
from dispatchlib import Receiver, stack_for, make_wins, dispatch, dispatch_until_done

P = "t-dmet"
rv = Receiver()
s = stack_for(rv, P, dispatch={"max_attempts": 3})
KINDS = ("reward.issue", "notify.win", "notify.invite")


def scrape():
    r = s.request("GET", "/metrics")
    assert r.status == 200, r
    vals = {}
    for line in r.raw.splitlines():
        if line and not line.startswith("#"):
            name, v = line.rsplit(" ", 1)
            vals[name] = float(v)
    return vals


def outcome(m, kind, what):
    return m['luckydice_dispatch_outcomes_total{kind="%s",outcome="%s"}' % (kind, what)]


def last_delivery(m, kind):
    return m['luckydice_dispatch_last_delivery_timestamp_seconds{kind="%s"}' % kind]


m = scrape()
ok(all(outcome(m, k, o) == 0 for k in KINDS for o in ("delivered", "retried", "dead")),
   "before any event: every kind's outcomes are there, at 0")
ok(all(last_delivery(m, k) == 0 for k in KINDS), "and no delivery yet (0)")
is_((m["luckydice_outbox_due"], m["luckydice_outbox_oldest_due_age_seconds"]), (0, 0),
    "nothing due, and so no age")

make_wins(s, P, ["d1", "d2", "d3"])
time.sleep(1.2)
m = scrape()
is_(m["luckydice_outbox_due"], 6, "three wins: six events due")
ok(1.0 <= m["luckydice_outbox_oldest_due_age_seconds"] < 60,
   "the oldest has been due for %.3f s" % m["luckydice_outbox_oldest_due_age_seconds"])

# The services fail: each event is retried.
rv.mode("fail500")
dispatch(s)
m = scrape()
is_([outcome(m, k, "retried") for k in KINDS], [3, 3, 0], "a 500 each: 3 retries of each kind of a win")
is_([outcome(m, k, "delivered") for k in KINDS], [0, 0, 0], "nothing delivered")
ok(m["luckydice_outbox_due"] + s.scalar("SELECT count(*) FROM outbox WHERE state = 'pending'"
                                        " AND next_at > ?", int(time.time() * 1000)) == 6,
   "each one pending, due now or after its backoff")

# They come back: everything is delivered.
rv.mode("ok")
t0 = time.time()
time.sleep(2.1)  # past the longest backoff (backoff_max_seconds 2)
dispatch_until_done(s)
m = scrape()
is_([outcome(m, k, "delivered") for k in KINDS], [3, 3, 0], "then all six are delivered")
ok(all(t0 - 1 <= last_delivery(m, k) <= time.time() + 1 for k in KINDS[:2]),
   "each kind's last delivery is now: %s" % [last_delivery(m, k) for k in KINDS[:2]])
is_(last_delivery(m, "notify.invite"), 0, "a kind never delivered stays at 0")
is_((m["luckydice_outbox_due"], m["luckydice_outbox_oldest_due_age_seconds"]), (0, 0),
    "nothing due any more")
rows = dict(s.query("SELECT kind, count(*) FROM outbox WHERE state = 'delivered' GROUP BY kind"))
is_({k: outcome(m, k, "delivered") for k in KINDS[:2]}, {k: float(rows[k]) for k in KINDS[:2]},
    "the counters agree with the delivered rows")

# A refusal: dead at once; an operator's retry makes it pending again,
# and the counter of dead outcomes does not go back.
make_wins(s, P, ["d4"])
rv.mode("fail400")
dispatch(s)
m = scrape()
is_([outcome(m, k, "dead") for k in KINDS], [1, 1, 0], "a 400: one dead of each kind of a win")
is_(m["luckydice_outbox_dead"], 2, "two dead now")
s.ctl("outbox", "retry", "--all-dead")
m = scrape()
is_((m["luckydice_outbox_dead"], outcome(m, "reward.issue", "dead")), (0, 1),
    "after outbox retry --all-dead: none dead now, the dead outcome still counted")
rv.mode("ok")
dispatch_until_done(s)

# One kind's service down while the other answers: the rewards are
# retried and their last delivery stays behind; the notifications go.
s.stop_services()
s.edit_config(reward_url="http://127.0.0.1:9/reward")  # nothing listens there
s.start()
before = scrape()
is_([outcome(before, k, "delivered") for k in KINDS], [4, 4, 0],
    "the counts outlive a restart of the service: they are the ledger's")
make_wins(s, P, ["d5", "d6"])
dispatch(s)
m = scrape()
is_(outcome(m, "notify.win", "delivered") - outcome(before, "notify.win", "delivered"), 2,
    "with the reward service refusing connections, the notifications are delivered")
# (each of the two at least once; twice when the run outlasted a backoff)
tries = s.scalar("SELECT sum(attempts) FROM outbox WHERE kind = 'reward.issue' AND state = 'pending'")
ok(tries >= 2 and outcome(m, "reward.issue", "retried") - outcome(before, "reward.issue", "retried") == tries,
   "and the rewards retried, the counter as the rows say (%s)" % tries)
ok(last_delivery(m, "reward.issue") == last_delivery(before, "reward.issue") <
   last_delivery(m, "notify.win"), "the rewards' last delivery stays where it was")
counters = [(k, o, outcome(m, k, o)) for k in KINDS for o in ("delivered", "retried", "dead")]
ok(all(outcome(m, k, o) >= outcome(before, k, o) for k, o, _ in counters),
   "no counter went back")
done()
