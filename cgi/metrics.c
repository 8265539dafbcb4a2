/*
 * metrics.c - GET /metrics: the shared counters (counters.h) and what
 * the ledger knows (the outbox due and dead, read at scrape time), in
 * Prometheus' text format.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "child.h"
#include "counters.h"
#include "outbox.h"

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
	put(t, "# HELP luckydice_draws_total Draws (not replays) by promotion and outcome; prize=\"\" is a miss.\n"
	       "# TYPE luckydice_draws_total counter\n");
	for (size_t i = 0; i < k->ndraws; i++) {
		const struct counters_draw_count *d = &k->draws[i];
		put(t, "luckydice_draws_total{promo=\"%s\",outcome=\"%s\",prize=\"%s\"} %llu\n",
		    d->promo, d->prize[0] ? "win" : "miss", d->prize, (unsigned long long)d->n);
	}
}

/* Only loopback may scrape: nginx allows 127.0.0.1 and ::1 only; this is
 * the second fence, for a worker socket reached some other way. */
static int from_loopback(const struct http_req *r)
{
	const char *a = http_param(r, "REMOTE_ADDR");

	return a && (strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0);
}

/* The request counters, by route and status: only those above zero. */
static void render_requests(struct text *t, const struct counters *k)
{
	put(t, "# HELP luckydice_requests_total Requests answered, by route and status.\n"
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
				put(t, "luckydice_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
				    name, status, (unsigned long long)n);
			else
				put(t, "luckydice_requests_total{route=\"%s\",status=\"other\"} %llu\n",
				    name, (unsigned long long)n);
		}
	}
}

/* Everything but the requests and the draws. */
static void render_rest(struct text *t, const struct counters *k, int64_t due, int64_t dead)
{
	put(t, "# HELP luckydice_request_duration_seconds Time from routing to the answer.\n"
	       "# TYPE luckydice_request_duration_seconds histogram\n");
	render_histogram(t, "luckydice_request_duration_seconds", counters_latency_us,
			 k->latency, COUNTERS_LATENCY_BUCKETS, k->latency_us_sum);
	put(t, "# HELP luckydice_grants_total Grants made by the API, by reason"
	       " (support grants are in the ledger).\n# TYPE luckydice_grants_total counter\n");
	for (int g = 0; g < GRANT_REASONS; g++)
		put(t, "luckydice_grants_total{reason=\"%s\"} %llu\n", grant_names[g],
		    (unsigned long long)k->grants[g]);
	render_draws(t, k);
	put(t, "# HELP luckydice_cache_requests_total Balance cache lookups and failures.\n"
	       "# TYPE luckydice_cache_requests_total counter\n"
	       "luckydice_cache_requests_total{result=\"hit\"} %llu\n"
	       "luckydice_cache_requests_total{result=\"miss\"} %llu\n"
	       "luckydice_cache_requests_total{result=\"error\"} %llu\n",
	    (unsigned long long)k->cache_hits, (unsigned long long)k->cache_misses,
	    (unsigned long long)k->cache_errors);
	put(t, "# HELP luckydice_writer_batches_total Transactions of the writer process"
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
	put(t, "# HELP luckydice_writer_batch_duration_seconds A writer batch from BEGIN"
	       " (the wait for the write lock included) to its last answer.\n"
	       "# TYPE luckydice_writer_batch_duration_seconds histogram\n");
	render_histogram(t, "luckydice_writer_batch_duration_seconds", counters_batch_us,
			 k->batch, COUNTERS_BATCH_BUCKETS, k->batch_us_sum);
	put(t, "# HELP luckydice_writer_checkpoints_total Checkpoints the writer ran between"
	       " batches so that the WAL starts over (see wal_restart_frames).\n"
	       "# TYPE luckydice_writer_checkpoints_total counter\n"
	       "luckydice_writer_checkpoints_total %llu\n"
	       "# HELP luckydice_writer_checkpoint_seconds_total The time those took: the writer"
	       " takes no batch meanwhile.\n"
	       "# TYPE luckydice_writer_checkpoint_seconds_total counter\n"
	       "luckydice_writer_checkpoint_seconds_total %.6f\n",
	    (unsigned long long)k->writer_checkpoints, (double)k->writer_checkpoint_us / 1e6);
	put(t, "# HELP luckydice_child_restarts_total Children of luckydice-fcgi started again"
	       " after one ended, by kind.\n# TYPE luckydice_child_restarts_total counter\n");
	for (int i = 0; i < CHILD_KINDS; i++)
		put(t, "luckydice_child_restarts_total{kind=\"%s\"} %llu\n", child_kind_names[i],
		    (unsigned long long)k->restarts[i]);
	put(t, "# HELP luckydice_outbox_due Outbox events waiting for the dispatcher now.\n"
	       "# TYPE luckydice_outbox_due gauge\nluckydice_outbox_due %lld\n"
	       "# HELP luckydice_outbox_dead Outbox events given up on (see luckydicectl outbox list).\n"
	       "# TYPE luckydice_outbox_dead gauge\nluckydice_outbox_dead %lld\n",
	    (long long)due, (long long)dead);
}

/* The kill switch of each promotion (luckydicectl promo pause). */
static void render_paused(struct text *t, struct ctx *c)
{
	size_t n;
	const struct promo *const *ps = ledger_promos(c->app->ledger, c->now_ms, &n);

	put(t, "# HELP luckydice_promotion_paused 1 while an operator has paused the promotion"
	       " (luckydicectl promo pause), else 0.\n# TYPE luckydice_promotion_paused gauge\n");
	for (size_t i = 0; i < n; i++)
		put(t, "luckydice_promotion_paused{promo=\"%s\"} %d\n", ps[i]->id,
		    ps[i]->paused_reason != NULL);
}

/* GET /metrics: 200 text/plain (Prometheus 0.0.4), 403 from elsewhere
 * than loopback, 503 when the ledger is busy or the counters are off. */
void api_metrics(struct ctx *c)
{
	struct counters *k;
	struct text t;
	int64_t due, dead;
	enum ld_err e;

	if (!from_loopback(c->req))
		return http_error(c->req, 403, "forbidden", "metrics are for localhost only");
	k = xmalloc(sizeof *k);
	if (counters_read(k) != 0) {
		free(k);
		return http_error(c->req, 503, "unavailable", "metrics are off");
	}
	if ((e = outbox_count_due(c->app->ledger, c->now_ms, OUTBOX_REWARD | OUTBOX_NOTIFY,
				  &due)) != LD_OK ||
	    (e = outbox_count_dead(c->app->ledger, &dead)) != LD_OK) {
		free(k);
		return api_fail(c, e);
	}
	t = (struct text){ xmalloc(8192), 0, 8192 };
	render_requests(&t, k);
	render_rest(&t, k, due, dead);
	render_paused(&t, c);
	c->req->outcome = "metrics";
	http_send_text(c->req, 200, "text/plain; version=0.0.4; charset=utf-8", t.s, t.len);
	free(t.s);
	free(k);
}
