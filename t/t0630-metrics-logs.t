#!/usr/bin/env python3
# GET /metrics: Prometheus text whose counters move with the requests
# served by all the worker processes, that promtool finds clean; the
# version; today's stock of each prize as the ledger has it, with when one
# sold out and when the promotion's local day began; localhost only
# (t0430 has the dispatcher's). Logs: with
# log_level "debug" one line per request (so that every request is in the
# logs searched), and no token ever reaches a log.
import calendar, datetime, os, re, shutil, subprocess, time
from harness import BACKEND, Stack, ok, is_, done, promo, diag, skip, seoul_today, SRC

W, M, O = "t-met-win", "t-met-miss", "t-met-out"
# wal_restart_frames at its minimum: a few dozen visits make the writer
# start the WAL over.
s = Stack(balance_read="cache", workers=4,
          extra_config={"wal_restart_frames": 100, "log_level": "debug"}, promos=[
    promo(W, prizes=[{"id": "coffee", "name": "Coffee", "daily_stock": 10, "probability": 1.0}]),
    promo(M),
    promo(O, prizes=[{"id": "car", "name": "Car", "daily_stock": 1, "probability": 1.0},
                     {"id": "pen", "name": "Pen", "daily_stock": 0, "probability": 0.0,
                      "stock_by_day": {str(seoul_today()): 7}}])])


def scrape():
    r = s.request("GET", "/metrics")
    assert r.status == 200, r
    vals = {}
    for line in r.raw.splitlines():
        if line and not line.startswith("#"):
            name, v = line.rsplit(" ", 1)
            vals[name] = float(v)
    return r, vals


# The one car of today is won (before the counting below starts).
t_out = time.time()
tok = s.token("driver")
s.api("POST", O, "visit", token=tok)
is_(s.api("POST", O, "draws", {"request_id": "req-out-0001"}, token=tok).json["draw"]["prize"]["id"],
    "car", "the one car of the day is won")
r, before = scrape()
ok(r.headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
   "/metrics is Prometheus text 0.0.4")
ok("# TYPE luckydice_request_duration_seconds histogram" in r.raw, "it has a latency histogram")
VERSION = re.search(r"AC_INIT\(\[luckydice\], \[([^]]+)\]",
                    open(os.path.join(SRC, "configure.ac")).read()).group(1)
is_(before.get('luckydice_build_info{version="%s"}' % VERSION), 1.0, "build info: the version, %s" % VERSION)

# Today's stock, in the promotion's time zone (Asia/Seoul).
day = str(seoul_today())
lab = lambda prize: '{promo="%s",prize="%s",day="%s"}' % (O, prize, day)
is_([before.get("luckydice_prize_stock" + lab(z)) for z in ("car", "pen")], [1, 7],
    "each prize's stock for today, %s (stock_by_day counted)" % day)
is_([before.get("luckydice_prize_stock_left" + lab(z)) for z in ("car", "pen")], [0, 7],
    "what is left of it")
sold = before.get("luckydice_prize_sold_out_timestamp_seconds" + lab("car"))
ok(sold and t_out - 1 <= sold <= time.time() + 1, "when the car sold out: %s" % sold)
ok("luckydice_prize_sold_out_timestamp_seconds" + lab("pen") not in before,
   "a prize with some left has no sold-out time")
midnight = calendar.timegm(datetime.datetime.combine(seoul_today(), datetime.time()).timetuple()) - 9 * 3600
is_(before.get('luckydice_promotion_day_start_timestamp_seconds{promo="%s",day="%s"}' % (O, day)),
    float(midnight), "the local day began at Seoul's midnight")
if shutil.which("promtool"):
    p = subprocess.run(["promtool", "check", "metrics"], input=r.raw, capture_output=True, text=True)
    is_((p.returncode, p.stdout + p.stderr), (0, ""), "promtool check metrics: clean")
else:
    skip("promtool check metrics", "promtool is not installed (script/bootstrap installs it)")

uids = ["m%d" % i for i in range(7)]
toks = s.tokens(*uids)
for t in toks:
    s.api("POST", W, "visit", token=t)
for t in toks[:3]:
    s.api("GET", W, "balance", token=t)
s.api("POST", W, "draws", {"request_id": "req-win-0001"}, token=toks[0])
s.api("POST", W, "draws", {"request_id": "req-win-0002"}, token=toks[1])
s.api("POST", W, "draws", {"request_id": "req-win-0002"}, token=toks[1])  # a replay
s.api("POST", M, "visit", token=toks[2])
s.api("POST", M, "draws", {"request_id": "req-miss-001"}, token=toks[2])
s.request("GET", "/api/nowhere")
s.api("GET", W, "balance")  # no token: 401
code = s.api("GET", W, "invite", token=toks[3]).json["code"]
s.api("POST", W, "invite/claim", {"code": code}, token=s.token("newbie"))
s.execute("UPDATE outbox SET state='dead' WHERE key=?", s.invite_key(W, "newbie"))
r, after = scrape()


def delta(name):
    return after.get(name, 0) - before.get(name, 0)


is_(delta('luckydice_requests_total{route="visit",status="200"}'), 8, "visits: 8 more 200s")
is_(delta('luckydice_requests_total{route="balance",status="200"}'), 3, "balance: 3 more 200s")
is_(delta('luckydice_requests_total{route="balance",status="401"}'), 1, "balance: 1 more 401")
is_(delta('luckydice_requests_total{route="draws",status="200"}'), 4, "draws: 4 more 200s")
is_(delta('luckydice_requests_total{route="none",status="404"}'), 1, "unknown path: 1 more 404")
is_(delta('luckydice_requests_total{route="metrics",status="200"}'), 1, "the first scrape was counted")
is_(delta('luckydice_grants_total{reason="visit"}'), 9, "visit grants: 8 visits + the claim's visit")
is_(delta('luckydice_grants_total{reason="invitee"}'), 1, "invitee grants: 1")
is_(delta('luckydice_grants_total{reason="inviter"}'), 1, "inviter grants: 1")
is_(delta('luckydice_draws_total{promo="%s",outcome="win",prize="coffee"}' % W), 2,
    "two wins of coffee (the replay is not a draw)")
is_(delta('luckydice_draws_total{promo="%s",outcome="miss",prize=""}' % M), 1, "one miss")
ok(delta('luckydice_cache_requests_total{result="hit"}') >= 3, "cache hits moved with the cached balance reads")
is_(after["luckydice_outbox_due"], 6.0, "outbox due: the reward and notification of three wins (two coffees, the car)")
is_(after["luckydice_outbox_dead"], 1.0, "outbox dead: the row marked dead")
n = delta("luckydice_request_duration_seconds_count")
is_(n, 20, "the histogram counted every request in between (and the first scrape)")
is_(after['luckydice_request_duration_seconds_bucket{le="+Inf"}'],
    after["luckydice_request_duration_seconds_count"], "the +Inf bucket equals the count")
b = [v for k, v in after.items() if k.startswith("luckydice_request_duration_seconds_bucket")]
ok(b == sorted(b), "buckets are cumulative")
ok(after["luckydice_request_duration_seconds_sum"] > before["luckydice_request_duration_seconds_sum"],
   "the latency sum grew")
# The writer's batches: a histogram of their durations with one count per
# batch (the visits, claim and draws above ran through the writer).
batches = delta('luckydice_writer_batches_total{result="committed"}') + \
    delta('luckydice_writer_batches_total{result="failed"}')
ok(batches >= 1, "the writes above ran in %d writer batches" % batches)
is_(delta("luckydice_writer_batch_duration_seconds_count"), batches,
    "the batch histogram counted each batch once")
is_(after['luckydice_writer_batch_duration_seconds_bucket{le="+Inf"}'],
    after["luckydice_writer_batch_duration_seconds_count"], "its +Inf bucket equals its count")
b = [v for k, v in after.items() if k.startswith("luckydice_writer_batch_duration_seconds_bucket")]
ok(len(b) == 10 and b == sorted(b), "its 10 buckets are cumulative")
ok(0 < delta("luckydice_writer_batch_duration_seconds_sum") < 10 * batches,
   "the batch durations add up to something between 0 and 10 s a batch")

# The checkpoints the writer runs between batches to start the WAL over.
ok("# TYPE luckydice_writer_checkpoints_total counter" in r.raw,
   "the writer's checkpoints are a counter")
if BACKEND == "sqlite":
    # The checkpointer stopped: with it, a pause between two visits lets
    # the WAL start over by itself, and on a slow run it never reaches 100
    # frames.
    with s.checkpointer_stopped():
        for t in s.tokens(*("wal%d" % i for i in range(100))):
            s.api("POST", W, "visit", token=t)
    before = after
    r, after = scrape()
    k = delta("luckydice_writer_checkpoints_total")
    ok(k >= 1, "100 visits past wal_restart_frames 100: the writer checkpointed %d times" % k)
    ok(0 < delta("luckydice_writer_checkpoint_seconds_total") < 10 * k,
       "and their time adds up to something between 0 and 10 s each")
else:
    # On PostgreSQL the server keeps its own WAL: the writer never
    # checkpoints, however many frames wal_restart_frames would allow.
    for t in s.tokens(*("wal%d" % i for i in range(100))):
        s.api("POST", W, "visit", token=t)
    before = after
    r, after = scrape()
    is_((delta("luckydice_writer_checkpoints_total"),
         delta("luckydice_writer_checkpoint_seconds_total")), (0, 0),
        "100 visits: the writer ran no checkpoint")

r = s.request("POST", "/metrics")
is_(r.status, 405, "POST /metrics -> 405")

site = open(os.path.join(SRC, "nginx", "luckydice-site.conf")).read()
m = re.search(r"geo \$ld_metrics_allowed \{([^}]*)\}", site)
is_(m and re.findall(r"^\s*(\S+) 1;$", m.group(1), re.M), ["127.0.0.1", "::1"],
    "the shipped site lets only loopback read /metrics; t0765 tries the rest")

# Logs: every way a token travels, then look for it everywhere.
tok = s.token("secretive")
sig = tok.rsplit(".", 1)[1]
s.api("POST", W, "visit", token=tok)
s.api("GET", W, "balance", headers={"Cookie": "ld_token=" + tok})
s.request("GET", "/?promo=%s&token=%s" % (W, tok))
s.request("GET", "/i/abc?token=" + tok)
s.api("GET", W, "me", token=tok, headers={"Referer": "http://127.0.0.1/?promo=x&token=" + tok})
s.api("GET", W, "balance", token=tok[:-3] + "AAA")  # a forged one: 401
s.api("POST", W, "visit", token=tok, raw="{bad json")
r = s.request("GET", "/?promo=%s&token=%s" % (W, tok))
is_(r.headers.get("Referrer-Policy"), "no-referrer", "the page tells browsers not to send its URL on")
logs = {}
for root, _, files in os.walk(s.dir):
    for f in files:
        if f.endswith(".log"):
            with open(os.path.join(root, f), errors="replace") as fh:
                logs[os.path.relpath(os.path.join(root, f), s.dir)] = fh.read()
ok("log/access.log" in logs and "log/fcgi.log" in logs, "the access and worker logs exist")
leaks = [name for name, text in logs.items() if sig in text or sig[:20] in text]
is_(leaks, [], "no log holds the token or its signature")
ok(re.search(r"^<7>request route=visit status=200 user=secretive promo=%s ms=\d+\.\d+ outcome=granted$" % W,
             logs["log/fcgi.log"], re.M), "one line per request: route, status, user, promo, ms, outcome"
   " (a routine one as debug, <7>)")
ok(re.search(r"^<7>request route=balance status=401 user=- .* outcome=unauthorized$", logs["log/fcgi.log"], re.M),
   "a refused token is logged as unauthorized, without the token")
ok(re.search(r"^<5>request route=visit status=400 user=secretive .* outcome=\w+$", logs["log/fcgi.log"], re.M),
   "a bad body is a refusal worth reading, a notice (<5>)")
ok(re.search(r'"GET /+index\.html HTTP/1\.1" 200', logs["log/access.log"]) and "promo=" not in logs["log/access.log"],
   "the access log keeps the path without the query")
done()
