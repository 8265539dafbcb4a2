/*
 * metrics.c - the shared counters and GET /metrics (see metrics.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "app.h"
#include "metrics.h"
#include "outbox.h"

#define ROUTES 16     /* slot ROUTES - 1 counts requests that matched no route */
#define DRAW_SLOTS 128

static const int statuses[] = { 200, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503 };
#define NSTATUS (sizeof statuses / sizeof statuses[0] + 1) /* + "other" */

/* Upper bounds of the latency buckets, microseconds (the last is +Inf). */
static const int64_t bucket_us[] = { 1000, 2500, 5000, 10000, 25000, 50000, 100000,
				     250000, 1000000 };
#define NBUCKETS (sizeof bucket_us / sizeof bucket_us[0] + 1)
/* The same for the writer's batches, which are shorter. */
static const int64_t batch_bucket_us[] = { 250, 500, 1000, 2500, 5000, 10000, 25000,
					   100000, 1000000 };
#define NBATCH_BUCKETS (sizeof batch_bucket_us / sizeof batch_bucket_us[0] + 1)

static const char *const grant_names[METRICS_GRANTS] = { "visit", "invitee", "inviter" };

/* A (promotion, prize) draw counter; prize "" counts misses. state: 0
 * free, 1 being filled by the process that claimed it, 2 ready. */
struct draw_slot {
	uint32_t state;
	char promo[PROMO_ID_MAX + 1];
	char prize[PRIZE_ID_MAX + 1];
	uint64_t n;
};

struct shared {
	uint64_t requests[ROUTES][NSTATUS];
	uint64_t buckets[NBUCKETS];  /* not cumulative; summed when rendered */
	uint64_t latency_us_sum;
	uint64_t grants[METRICS_GRANTS];
	uint64_t cache_hits, cache_misses, cache_errors;
	uint64_t writer_batches, writer_requests, writer_failed;
	uint64_t writer_checkpoints, writer_checkpoint_us;
	uint64_t batch_buckets[NBATCH_BUCKETS]; /* not cumulative */
	uint64_t batch_us_sum;
	struct draw_slot draws[DRAW_SLOTS];
};

static struct shared *shm;
static struct cache_stats last; /* this process's cache counters already added */

#define ADD(x, n) __atomic_fetch_add(&(x), (n), __ATOMIC_RELAXED)
#define GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

int metrics_init(void)
{
	void *p = mmap(NULL, sizeof *shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);

	if (p == MAP_FAILED)
		return -1;
	shm = p; /* zero-filled by the kernel */
	return 0;
}

/* The bucket of us among n - 1 upper bounds (the last bucket is +Inf). */
static size_t bucket(const int64_t *bounds, size_t n, int64_t us)
{
	size_t b = 0;

	while (b < n - 1 && us > bounds[b])
		b++;
	return b;
}

void metrics_request(int route, int status, int64_t us)
{
	size_t s = NSTATUS - 1;

	if (!shm)
		return;
	if (route < 0 || route >= ROUTES - 1)
		route = ROUTES - 1;
	for (size_t i = 0; i < NSTATUS - 1; i++)
		if (statuses[i] == status)
			s = i;
	ADD(shm->requests[route][s], 1);
	ADD(shm->buckets[bucket(bucket_us, NBUCKETS, us)], 1);
	ADD(shm->latency_us_sum, (uint64_t)(us > 0 ? us : 0));
}

void metrics_grant(enum metrics_grant reason)
{
	if (shm && reason < METRICS_GRANTS)
		ADD(shm->grants[reason], 1);
}

/*
 * Finds the slot of (promo, prize), claiming a free one on first use.
 * Two processes may claim two slots for one pair at the same moment; the
 * rendering merges them. Returns NULL when every slot is taken.
 */
static struct draw_slot *draw_slot(const char *promo, const char *prize)
{
	for (size_t i = 0; i < DRAW_SLOTS; i++) {
		struct draw_slot *d = &shm->draws[i];
		uint32_t st = __atomic_load_n(&d->state, __ATOMIC_ACQUIRE), free_ = 0;

		if (st == 2 && strcmp(d->promo, promo) == 0 && strcmp(d->prize, prize) == 0)
			return d;
		if (st == 0 && __atomic_compare_exchange_n(&d->state, &free_, 1, 0,
							   __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			snprintf(d->promo, sizeof d->promo, "%s", promo);
			snprintf(d->prize, sizeof d->prize, "%s", prize);
			__atomic_store_n(&d->state, 2, __ATOMIC_RELEASE);
			return d;
		}
	}
	return NULL;
}

void metrics_draw(const char *promo, const char *prize)
{
	struct draw_slot *d;

	if (shm && (d = draw_slot(promo, prize ? prize : "")))
		ADD(d->n, 1);
}

void metrics_writer(size_t requests, int committed, int64_t us)
{
	if (!shm)
		return;
	ADD(shm->writer_batches, 1);
	ADD(shm->writer_requests, requests);
	ADD(shm->batch_buckets[bucket(batch_bucket_us, NBATCH_BUCKETS, us)], 1);
	ADD(shm->batch_us_sum, (uint64_t)(us > 0 ? us : 0));
	if (!committed)
		ADD(shm->writer_failed, 1);
}

void metrics_writer_checkpoint(int64_t us)
{
	if (!shm)
		return;
	ADD(shm->writer_checkpoints, 1);
	ADD(shm->writer_checkpoint_us, (uint64_t)(us > 0 ? us : 0));
}

void metrics_cache(const struct cache_stats *now)
{
	if (!shm || !now)
		return;
	if (now->hits != last.hits)
		ADD(shm->cache_hits, now->hits - last.hits);
	if (now->misses != last.misses)
		ADD(shm->cache_misses, now->misses - last.misses);
	if (now->errors != last.errors)
		ADD(shm->cache_errors, now->errors - last.errors);
	last = *now;
}

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
		cum += GET(counts[b]);
		if (b < n - 1)
			put(t, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bounds[b] / 1e6,
			    (unsigned long long)cum);
		else
			put(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	}
	put(t, "%s_sum %.6f\n%s_count %llu\n", name, (double)sum_us / 1e6, name,
	    (unsigned long long)cum);
}

static void render_draws(struct text *t)
{
	int done[DRAW_SLOTS] = { 0 };

	put(t, "# HELP luckydice_draws_total Draws (not replays) by promotion and outcome; prize=\"\" is a miss.\n"
	       "# TYPE luckydice_draws_total counter\n");
	for (size_t i = 0; i < DRAW_SLOTS; i++) {
		struct draw_slot *d = &shm->draws[i];
		uint64_t n;

		if (done[i] || __atomic_load_n(&d->state, __ATOMIC_ACQUIRE) != 2)
			continue;
		n = GET(d->n);
		for (size_t j = i + 1; j < DRAW_SLOTS; j++) { /* the same pair claimed twice */
			struct draw_slot *e = &shm->draws[j];
			if (!done[j] && __atomic_load_n(&e->state, __ATOMIC_ACQUIRE) == 2 &&
			    strcmp(d->promo, e->promo) == 0 && strcmp(d->prize, e->prize) == 0) {
				n += GET(e->n);
				done[j] = 1;
			}
		}
		put(t, "luckydice_draws_total{promo=\"%s\",outcome=\"%s\",prize=\"%s\"} %llu\n",
		    d->promo, d->prize[0] ? "win" : "miss", d->prize, (unsigned long long)n);
	}
}

/* Only loopback may scrape: nginx allows 127.0.0.1 and ::1 only; this is
 * the second fence, for a worker socket reached some other way. */
static int from_loopback(const struct http_req *r)
{
	const char *a = http_param(r, "REMOTE_ADDR");

	return a && (strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0);
}

/* GET /metrics: 200 text/plain (Prometheus 0.0.4), 403 from elsewhere
 * than loopback, 503 when the ledger is busy or metrics are off. */
void api_metrics(struct ctx *c)
{
	struct text t = { xmalloc(8192), 0, 8192 };
	int64_t due, dead;
	enum ld_err e;

	if (!from_loopback(c->req)) {
		free(t.s);
		return http_error(c->req, 403, "forbidden", "metrics are for localhost only");
	}
	if (!shm) {
		free(t.s);
		return http_error(c->req, 503, "unavailable", "metrics are off");
	}
	if ((e = outbox_count_due(c->app->ledger, c->now_ms, OUTBOX_REWARD | OUTBOX_NOTIFY,
				  &due)) != LD_OK ||
	    (e = outbox_count_dead(c->app->ledger, &dead)) != LD_OK) {
		free(t.s);
		return api_fail(c, e);
	}
	put(&t, "# HELP luckydice_requests_total Requests answered, by route and status.\n"
		"# TYPE luckydice_requests_total counter\n");
	for (int r = 0; r < ROUTES; r++) {
		const char *name = r == ROUTES - 1 ? "none" : route_name(r);
		if (!name)
			continue;
		for (size_t s = 0; s < NSTATUS; s++) {
			uint64_t n = GET(shm->requests[r][s]);
			if (n == 0)
				continue;
			if (s < NSTATUS - 1)
				put(&t, "luckydice_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
				    name, statuses[s], (unsigned long long)n);
			else
				put(&t, "luckydice_requests_total{route=\"%s\",status=\"other\"} %llu\n",
				    name, (unsigned long long)n);
		}
	}
	put(&t, "# HELP luckydice_request_duration_seconds Time from routing to the answer.\n"
		"# TYPE luckydice_request_duration_seconds histogram\n");
	render_histogram(&t, "luckydice_request_duration_seconds", bucket_us, shm->buckets,
			 NBUCKETS, GET(shm->latency_us_sum));
	put(&t, "# HELP luckydice_grants_total Grants made by the API, by reason"
		" (support grants are in the ledger).\n# TYPE luckydice_grants_total counter\n");
	for (int g = 0; g < METRICS_GRANTS; g++)
		put(&t, "luckydice_grants_total{reason=\"%s\"} %llu\n", grant_names[g],
		    (unsigned long long)GET(shm->grants[g]));
	render_draws(&t);
	put(&t, "# HELP luckydice_cache_requests_total Balance cache lookups and failures.\n"
		"# TYPE luckydice_cache_requests_total counter\n"
		"luckydice_cache_requests_total{result=\"hit\"} %llu\n"
		"luckydice_cache_requests_total{result=\"miss\"} %llu\n"
		"luckydice_cache_requests_total{result=\"error\"} %llu\n",
	    (unsigned long long)GET(shm->cache_hits), (unsigned long long)GET(shm->cache_misses),
	    (unsigned long long)GET(shm->cache_errors));
	put(&t, "# HELP luckydice_writer_batches_total Transactions of the writer process"
		" (group commit); failed: rolled back.\n"
		"# TYPE luckydice_writer_batches_total counter\n"
		"luckydice_writer_batches_total{result=\"committed\"} %llu\n"
		"luckydice_writer_batches_total{result=\"failed\"} %llu\n"
		"# HELP luckydice_writer_requests_total Write requests the writer ran"
		" (requests / batches = the mean batch).\n"
		"# TYPE luckydice_writer_requests_total counter\n"
		"luckydice_writer_requests_total %llu\n",
	    (unsigned long long)(GET(shm->writer_batches) - GET(shm->writer_failed)),
	    (unsigned long long)GET(shm->writer_failed),
	    (unsigned long long)GET(shm->writer_requests));
	put(&t, "# HELP luckydice_writer_batch_duration_seconds A writer batch from BEGIN"
		" (the wait for the write lock included) to its last answer.\n"
		"# TYPE luckydice_writer_batch_duration_seconds histogram\n");
	render_histogram(&t, "luckydice_writer_batch_duration_seconds", batch_bucket_us,
			 shm->batch_buckets, NBATCH_BUCKETS, GET(shm->batch_us_sum));
	put(&t, "# HELP luckydice_writer_checkpoints_total Checkpoints the writer ran between"
		" batches so that the WAL starts over (see wal_restart_frames).\n"
		"# TYPE luckydice_writer_checkpoints_total counter\n"
		"luckydice_writer_checkpoints_total %llu\n"
		"# HELP luckydice_writer_checkpoint_seconds_total The time those took: the writer"
		" takes no batch meanwhile.\n"
		"# TYPE luckydice_writer_checkpoint_seconds_total counter\n"
		"luckydice_writer_checkpoint_seconds_total %.6f\n",
	    (unsigned long long)GET(shm->writer_checkpoints),
	    (double)GET(shm->writer_checkpoint_us) / 1e6);
	put(&t, "# HELP luckydice_outbox_due Outbox events waiting for the dispatcher now.\n"
		"# TYPE luckydice_outbox_due gauge\nluckydice_outbox_due %lld\n"
		"# HELP luckydice_outbox_dead Outbox events given up on (see luckydicectl outbox list).\n"
		"# TYPE luckydice_outbox_dead gauge\nluckydice_outbox_dead %lld\n",
	    (long long)due, (long long)dead);
	c->req->outcome = "metrics";
	http_send_text(c->req, 200, "text/plain; version=0.0.4; charset=utf-8", t.s, t.len);
	free(t.s);
}
