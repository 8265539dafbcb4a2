/*
 * metrics.c - GET /metrics: the shared counters (counters.h) and what
 * the ledger knows, read at scrape time (what the dispatchers did and
 * what waits for them, today's stock of each prize, which promotions are
 * paused), in Prometheus' text format. Each ledger read costs a few rows
 * or a count inside a small partial index, so a scrape stays cheap on a
 * whole campaign's ledger (docs/performance.md).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "child.h"
#include "counters.h"
#include "outbox.h"
#include "stats.h"

static const char *const grant_names[GRANT_REASONS] = { "visit", "invitee", "inviter" };

/* A growing text buffer for the answer; out of memory ends the worker
 * through the x* wrappers. */
struct text {
	char *s;
	size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < t->cap - t->len)
			break;
		t->cap = t->cap * 2 + (size_t)(n > 0 ? n : 0);
		t->s = xrealloc(t->s, t->cap);
	}
	t->len += (size_t)n;
}

/* A histogram's buckets (cumulative, as Prometheus wants them), sum and
 * count; counts[] has n entries, the last for +Inf. */
static void render_histogram(struct text *t, const char *name, const int64_t *bounds,
			     const uint64_t *counts, size_t n, uint64_t sum_us)
{
	uint64_t cum = 0;

	for (size_t b = 0; b < n; b++) {
		cum += counts[b];
		if (b < n - 1)
			put(t, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bounds[b] / 1e6,
			    (unsigned long long)cum);
		else
			put(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	}
	put(t, "%s_sum %.6f\n%s_count %llu\n", name, (double)sum_us / 1e6, name,
	    (unsigned long long)cum);
}

static void render_draws(struct text *t, const struct counters *k)
{
	put(t,
	    "# HELP luckydice_draws_total Draws (not replays) by promotion and outcome; prize=\"\" is a miss.\n"
	    "# TYPE luckydice_draws_total counter\n");
	for (size_t i = 0; i < k->ndraws; i++) {
		const struct counters_draw_count *d = &k->draws[i];
		put(t, "luckydice_draws_total{promo=\"%s\",outcome=\"%s\",prize=\"%s\"} %llu\n",
		    d->promo, d->prize[0] ? "win" : "miss", d->prize, (unsigned long long)d->n);
	}
}

/* Whether nginx let this request through to /metrics: who may scrape is
 * its list ($ld_metrics_allowed, luckydice-site.conf), and it says so in
 * LD_METRICS_ALLOWED. No client address is judged here: REMOTE_ADDR is
 * whatever the caller on the socket says it is. */
static int nginx_allowed(const struct http_req *r)
{
	const char *a = http_param(r, "LD_METRICS_ALLOWED");

	return a && strcmp(a, "1") == 0;
}

/* The request counters, by route and status: only those above zero. */
static void render_requests(struct text *t, const struct counters *k)
{
	put(t,
	    "# HELP luckydice_requests_total Requests answered, by route and status.\n"
	    "# TYPE luckydice_requests_total counter\n");
	for (int r = 0; r < COUNTERS_ROUTES; r++) {
		const char *name = r == COUNTERS_ROUTES - 1 ? "none" : route_name(r);
		if (!name)
			continue;
		for (int i = 0; i < COUNTERS_STATUSES; i++) {
			uint64_t n = k->requests[r][i];
			int status = i < COUNTERS_STATUSES - 1 ? http_status_at(i) : 0;
			if (n == 0)
				continue;
			if (status)
				put(t,
				    "luckydice_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
				    name, status, (unsigned long long)n);
			else
				put(t,
				    "luckydice_requests_total{route=\"%s\",status=\"other\"} %llu\n",
				    name, (unsigned long long)n);
		}
	}
}

/* Everything the counters have but the requests and the draws. */
static void render_rest(struct text *t, const struct counters *k)
{
	put(t,
	    "# HELP luckydice_request_duration_seconds Time from routing to the answer.\n"
	    "# TYPE luckydice_request_duration_seconds histogram\n");
	render_histogram(t, "luckydice_request_duration_seconds", counters_latency_us, k->latency,
			 COUNTERS_LATENCY_BUCKETS, k->latency_us_sum);
	put(t,
	    "# HELP luckydice_grants_total Grants made by the API, by reason"
	    " (support grants are in the ledger).\n# TYPE luckydice_grants_total counter\n");
	for (int g = 0; g < GRANT_REASONS; g++)
		put(t, "luckydice_grants_total{reason=\"%s\"} %llu\n", grant_names[g],
		    (unsigned long long)k->grants[g]);
	render_draws(t, k);
	put(t,
	    "# HELP luckydice_cache_requests_total Balance cache lookups and failures.\n"
	    "# TYPE luckydice_cache_requests_total counter\n"
	    "luckydice_cache_requests_total{result=\"hit\"} %llu\n"
	    "luckydice_cache_requests_total{result=\"miss\"} %llu\n"
	    "luckydice_cache_requests_total{result=\"error\"} %llu\n",
	    (unsigned long long)k->cache_hits, (unsigned long long)k->cache_misses,
	    (unsigned long long)k->cache_errors);
	put(t,
	    "# HELP luckydice_writer_batches_total Transactions of the writer process"
	    " (group commit); failed: rolled back.\n"
	    "# TYPE luckydice_writer_batches_total counter\n"
	    "luckydice_writer_batches_total{result=\"committed\"} %llu\n"
	    "luckydice_writer_batches_total{result=\"failed\"} %llu\n"
	    "# HELP luckydice_writer_requests_total Write requests the writer ran"
	    " (requests / batches = the mean batch).\n"
	    "# TYPE luckydice_writer_requests_total counter\n"
	    "luckydice_writer_requests_total %llu\n",
	    (unsigned long long)(k->writer_batches - k->writer_failed),
	    (unsigned long long)k->writer_failed, (unsigned long long)k->writer_requests);
	put(t,
	    "# HELP luckydice_writer_batch_duration_seconds A writer batch from BEGIN"
	    " (the wait for the write lock included) to its last answer.\n"
	    "# TYPE luckydice_writer_batch_duration_seconds histogram\n");
	render_histogram(t, "luckydice_writer_batch_duration_seconds", counters_batch_us, k->batch,
			 COUNTERS_BATCH_BUCKETS, k->batch_us_sum);
	put(t,
	    "# HELP luckydice_writer_checkpoints_total Checkpoints the writer ran between"
	    " batches so that the WAL starts over (see wal_restart_frames).\n"
	    "# TYPE luckydice_writer_checkpoints_total counter\n"
	    "luckydice_writer_checkpoints_total %llu\n"
	    "# HELP luckydice_writer_checkpoint_seconds_total The time those took: the writer"
	    " takes no batch meanwhile.\n"
	    "# TYPE luckydice_writer_checkpoint_seconds_total counter\n"
	    "luckydice_writer_checkpoint_seconds_total %.6f\n",
	    (unsigned long long)k->writer_checkpoints, (double)k->writer_checkpoint_us / 1e6);
	put(t,
	    "# HELP luckydice_child_restarts_total Children of luckydice-fcgi started again"
	    " after one ended, by kind.\n# TYPE luckydice_child_restarts_total counter\n");
	for (int i = 0; i < CHILD_KINDS; i++)
		put(t, "luckydice_child_restarts_total{kind=\"%s\"} %llu\n", child_kind_names[i],
		    (unsigned long long)k->restarts[i]);
}

/* What the dispatchers did, by kind, and what waits for them. */
static void render_outbox(struct text *t, const struct outbox_stats *o, int64_t now_ms)
{
	static const char *const outcomes[] = { "delivered", "retried", "dead" };

	put(t,
	    "# HELP luckydice_dispatch_outcomes_total Outcomes the dispatchers recorded, by"
	    " kind of event: delivered (2xx), retried (an attempt failed, due again later),"
	    " dead (refused or out of attempts).\n"
	    "# TYPE luckydice_dispatch_outcomes_total counter\n");
	for (int i = 0; i < OUTBOX_KINDS; i++) {
		const int64_t n[] = { o->kind[i].delivered, o->kind[i].retried, o->kind[i].dead };
		for (int j = 0; j < 3; j++)
			put(t,
			    "luckydice_dispatch_outcomes_total{kind=\"%s\",outcome=\"%s\"} %lld\n",
			    outbox_kinds[i], outcomes[j], (long long)n[j]);
	}
	put(t,
	    "# HELP luckydice_dispatch_last_delivery_timestamp_seconds When the latest"
	    " delivery of the kind was recorded (0: none yet).\n"
	    "# TYPE luckydice_dispatch_last_delivery_timestamp_seconds gauge\n");
	for (int i = 0; i < OUTBOX_KINDS; i++)
		put(t, "luckydice_dispatch_last_delivery_timestamp_seconds{kind=\"%s\"} %.3f\n",
		    outbox_kinds[i], (double)o->kind[i].last_delivered_ms / 1000);
	put(t,
	    "# HELP luckydice_outbox_due Outbox events waiting for the dispatcher now.\n"
	    "# TYPE luckydice_outbox_due gauge\nluckydice_outbox_due %lld\n"
	    "# HELP luckydice_outbox_oldest_due_age_seconds How long the event due the"
	    " longest has been due (0: none is).\n"
	    "# TYPE luckydice_outbox_oldest_due_age_seconds gauge\n"
	    "luckydice_outbox_oldest_due_age_seconds %.3f\n"
	    "# HELP luckydice_outbox_dead Outbox events given up on (see luckydicectl outbox list).\n"
	    "# TYPE luckydice_outbox_dead gauge\nluckydice_outbox_dead %lld\n",
	    (long long)o->due,
	    o->due > 0 && o->oldest_due_ms < now_ms ? (double)(now_ms - o->oldest_due_ms) / 1000
						    : 0.0,
	    (long long)o->dead_now);
}

/* Today's stock of one promotion running today (its local day). */
struct day_stock {
	const struct promo *p;
	int d;
	char day[11];
	struct stats_stock *prizes; /* p->nprizes */
};

/* Today's stock of every promotion running today: each metric's samples
 * together, as the text format wants them. Returns LD_OK or the ledger's
 * error. */
static enum ld_err render_stock(struct text *t, struct ctx *c)
{
	size_t n, m = 0;
	const struct promo *const *ps = ledger_promos(c->app->ledger, c->now_ms, &n);
	struct day_stock *days = xcalloc(n + 1, sizeof *days);
	enum ld_err e = LD_OK;

	for (size_t i = 0; i < n && e == LD_OK; i++) {
		struct day_stock *x = &days[m];
		if ((x->d = promo_day(ps[i], c->now_ms)) < 0 || x->d >= ps[i]->ndays)
			continue;
		x->p = ps[i];
		promo_day_name(x->p, x->d, x->day);
		x->prizes = xcalloc(x->p->nprizes + 1, sizeof *x->prizes);
		m++;
		e = stats_stock_day(c->app->ledger, x->p, x->d, x->prizes);
	}
	if (e == LD_OK) {
		put(t,
		    "# HELP luckydice_promotion_day_start_timestamp_seconds When the promotion's"
		    " local day began (local noon is 12 h later, but on a day its clocks change).\n"
		    "# TYPE luckydice_promotion_day_start_timestamp_seconds gauge\n");
		for (size_t i = 0; i < m; i++)
			put(t,
			    "luckydice_promotion_day_start_timestamp_seconds{promo=\"%s\",day=\"%s\"}"
			    " %lld\n",
			    days[i].p->id, days[i].day,
			    (long long)(days[i].p->day_start_ms[days[i].d] / 1000));
		put(t,
		    "# HELP luckydice_prize_stock A prize's stock for today, the promotion's"
		    " local day.\n# TYPE luckydice_prize_stock gauge\n");
		for (size_t i = 0; i < m; i++)
			for (size_t z = 0; z < days[i].p->nprizes; z++)
				put(t,
				    "luckydice_prize_stock{promo=\"%s\",prize=\"%s\",day=\"%s\"} %lld\n",
				    days[i].p->id, days[i].p->prizes[z].id, days[i].day,
				    (long long)days[i].prizes[z].stock);
		put(t,
		    "# HELP luckydice_prize_stock_left What is left of it.\n"
		    "# TYPE luckydice_prize_stock_left gauge\n");
		for (size_t i = 0; i < m; i++)
			for (size_t z = 0; z < days[i].p->nprizes; z++)
				put(t,
				    "luckydice_prize_stock_left{promo=\"%s\",prize=\"%s\",day=\"%s\"}"
				    " %lld\n",
				    days[i].p->id, days[i].p->prizes[z].id, days[i].day,
				    (long long)days[i].prizes[z].left);
		put(t,
		    "# HELP luckydice_prize_sold_out_timestamp_seconds When the last of a prize's"
		    " stock for today was won (only for one sold out).\n"
		    "# TYPE luckydice_prize_sold_out_timestamp_seconds gauge\n");
		for (size_t i = 0; i < m; i++)
			for (size_t z = 0; z < days[i].p->nprizes; z++)
				if (days[i].prizes[z].sold_out_ms > 0)
					put(t,
					    "luckydice_prize_sold_out_timestamp_seconds{promo=\"%s\","
					    "prize=\"%s\",day=\"%s\"} %.3f\n",
					    days[i].p->id, days[i].p->prizes[z].id, days[i].day,
					    (double)days[i].prizes[z].sold_out_ms / 1000);
	}
	for (size_t i = 0; i < m; i++)
		free(days[i].prizes);
	free(days);
	return e;
}

/* The kill switch of each promotion (luckydicectl promo pause). */
static void render_paused(struct text *t, struct ctx *c)
{
	size_t n;
	const struct promo *const *ps = ledger_promos(c->app->ledger, c->now_ms, &n);

	put(t,
	    "# HELP luckydice_promotion_paused 1 while an operator has paused the promotion"
	    " (luckydicectl promo pause), else 0.\n# TYPE luckydice_promotion_paused gauge\n");
	for (size_t i = 0; i < n; i++)
		put(t, "luckydice_promotion_paused{promo=\"%s\"} %d\n", ps[i]->id,
		    ps[i]->paused_reason != NULL);
}

/* GET /metrics: 200 text/plain (Prometheus 0.0.4), 403 unless nginx
 * let it through, 503 when the ledger is busy or the counters are off. */
void api_metrics(struct ctx *c)
{
	struct outbox_stats o;
	struct counters *k;
	struct text t;
	enum ld_err e;

	if (!nginx_allowed(c->req))
		return http_error(c->req, 403, "forbidden",
				  "metrics are served through nginx only");
	k = xmalloc(sizeof *k);
	if (counters_read(k) != 0) {
		free(k);
		return http_error(c->req, 503, "unavailable", "metrics are off");
	}
	if ((e = outbox_stats(c->app->ledger, c->now_ms, &o)) != LD_OK) {
		free(k);
		return api_fail(c, e);
	}
	t = (struct text){ xmalloc(16384), 0, 16384 };
	put(&t,
	    "# HELP luckydice_build_info The version of luckydice answering.\n"
	    "# TYPE luckydice_build_info gauge\nluckydice_build_info{version=\"%s\"} 1\n",
	    PACKAGE_VERSION);
	render_requests(&t, k);
	render_rest(&t, k);
	render_outbox(&t, &o, c->now_ms);
	render_paused(&t, c);
	if ((e = render_stock(&t, c)) != LD_OK) {
		free(t.s);
		free(k);
		return api_fail(c, e);
	}
	c->req->outcome = "metrics";
	http_send_text(c->req, 200, "text/plain; version=0.0.4; charset=utf-8", t.s, t.len);
	free(t.s);
	free(k);
}
