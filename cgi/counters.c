/*
 * counters.c - the shared counters (see counters.h).
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "counters.h"

const int64_t counters_latency_us[COUNTERS_LATENCY_BUCKETS - 1] = { 1000,   2500,   5000,
								    10000,  25000,  50000,
								    100000, 250000, 1000000 };
/* The writer's batches are shorter. */
const int64_t counters_batch_us[COUNTERS_BATCH_BUCKETS - 1] = { 250,   500,   1000,   2500,   5000,
								10000, 25000, 100000, 1000000 };

/* A (promotion, prize) draw counter. state: 0 free, 1 being filled by
 * the process that claimed it, 2 ready. */
struct draw_slot {
	uint32_t state;
	char promo[PROMO_ID_MAX + 1];
	char prize[PRIZE_ID_MAX + 1];
	uint64_t n;
};

struct shared {
	uint64_t requests[COUNTERS_ROUTES][COUNTERS_STATUSES];
	uint64_t latency[COUNTERS_LATENCY_BUCKETS];
	uint64_t latency_us_sum;
	uint64_t grants[COUNTERS_GRANTS];
	uint64_t cache_hits, cache_misses, cache_errors;
	uint64_t writer_batches, writer_requests, writer_failed;
	uint64_t writer_checkpoints, writer_checkpoint_us;
	uint64_t batch[COUNTERS_BATCH_BUCKETS];
	uint64_t batch_us_sum;
	uint64_t restarts[COUNTERS_KINDS];
	struct draw_slot draws[COUNTERS_DRAWS];
};

static struct shared *shm;
static struct cache_stats last; /* this process's cache counters already added */

#define ADD(x, n) __atomic_fetch_add(&(x), (n), __ATOMIC_RELAXED)
#define GET(x)    __atomic_load_n(&(x), __ATOMIC_RELAXED)

int counters_init(void)
{
	void *p = mmap(NULL, sizeof *shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		       0);

	if (p == MAP_FAILED)
		return -1;
	shm = p; /* zero-filled by the kernel */
	return 0;
}

/* i when it is below n, else the last slot, n - 1. */
static size_t slot(int i, size_t n)
{
	return i >= 0 && (size_t)i < n - 1 ? (size_t)i : n - 1;
}

/* The bucket of us among n - 1 upper bounds (the last bucket is +Inf). */
static size_t bucket(const int64_t *bounds, size_t n, int64_t us)
{
	size_t b = 0;

	while (b < n - 1 && us > bounds[b])
		b++;
	return b;
}

static uint64_t positive(int64_t us)
{
	return (uint64_t)(us > 0 ? us : 0);
}

void counters_request(int route, int status, int64_t us)
{
	if (!shm)
		return;
	ADD(shm->requests[slot(route, COUNTERS_ROUTES)][slot(status, COUNTERS_STATUSES)], 1);
	ADD(shm->latency[bucket(counters_latency_us, COUNTERS_LATENCY_BUCKETS, us)], 1);
	ADD(shm->latency_us_sum, positive(us));
}

void counters_grant(int reason)
{
	if (shm && reason >= 0 && reason < COUNTERS_GRANTS)
		ADD(shm->grants[reason], 1);
}

/*
 * Finds the slot of (promo, prize), claiming a free one on first use.
 * Two processes may claim two slots for one pair at the same moment;
 * counters_read merges them. Returns NULL when every slot is taken.
 */
static struct draw_slot *draw_slot(const char *promo, const char *prize)
{
	for (size_t i = 0; i < COUNTERS_DRAWS; i++) {
		struct draw_slot *d = &shm->draws[i];
		uint32_t st = __atomic_load_n(&d->state, __ATOMIC_ACQUIRE), free_ = 0;

		if (st == 2 && strcmp(d->promo, promo) == 0 && strcmp(d->prize, prize) == 0)
			return d;
		if (st == 0 &&
		    __atomic_compare_exchange_n(&d->state, &free_, 1, 0, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED)) {
			snprintf(d->promo, sizeof d->promo, "%s", promo);
			snprintf(d->prize, sizeof d->prize, "%s", prize);
			__atomic_store_n(&d->state, 2, __ATOMIC_RELEASE);
			return d;
		}
	}
	return NULL;
}

void counters_draw(const char *promo, const char *prize)
{
	struct draw_slot *d;

	if (shm && (d = draw_slot(promo, prize ? prize : "")))
		ADD(d->n, 1);
}

void counters_writer_batch(size_t requests, int committed, int64_t us)
{
	if (!shm)
		return;
	ADD(shm->writer_batches, 1);
	ADD(shm->writer_requests, requests);
	ADD(shm->batch[bucket(counters_batch_us, COUNTERS_BATCH_BUCKETS, us)], 1);
	ADD(shm->batch_us_sum, positive(us));
	if (!committed)
		ADD(shm->writer_failed, 1);
}

void counters_writer_checkpoint(int64_t us)
{
	if (!shm)
		return;
	ADD(shm->writer_checkpoints, 1);
	ADD(shm->writer_checkpoint_us, positive(us));
}

void counters_cache(const struct cache_stats *now)
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

void counters_restart(int kind)
{
	if (shm)
		ADD(shm->restarts[slot(kind, COUNTERS_KINDS)], 1);
}

/* Copies n counters from the shared ones. */
static void copy(uint64_t *to, const uint64_t *from, size_t n)
{
	for (size_t i = 0; i < n; i++)
		to[i] = GET(from[i]);
}

/* The draw counters, each pair once (a pair claimed twice is summed). */
static void read_draws(struct counters *out)
{
	out->ndraws = 0;
	for (size_t i = 0; i < COUNTERS_DRAWS; i++) {
		struct draw_slot *d = &shm->draws[i];
		struct counters_draw_count *c = NULL;

		if (__atomic_load_n(&d->state, __ATOMIC_ACQUIRE) != 2)
			continue;
		for (size_t j = 0; j < out->ndraws && !c; j++)
			if (strcmp(out->draws[j].promo, d->promo) == 0 &&
			    strcmp(out->draws[j].prize, d->prize) == 0)
				c = &out->draws[j];
		if (!c) {
			c = &out->draws[out->ndraws++];
			memcpy(c->promo, d->promo, sizeof c->promo);
			memcpy(c->prize, d->prize, sizeof c->prize);
			c->n = 0;
		}
		c->n += GET(d->n);
	}
}

int counters_read(struct counters *out)
{
	if (!shm)
		return -1;
	copy(&out->requests[0][0], &shm->requests[0][0], COUNTERS_ROUTES * COUNTERS_STATUSES);
	copy(out->latency, shm->latency, COUNTERS_LATENCY_BUCKETS);
	out->latency_us_sum = GET(shm->latency_us_sum);
	copy(out->grants, shm->grants, COUNTERS_GRANTS);
	out->cache_hits = GET(shm->cache_hits);
	out->cache_misses = GET(shm->cache_misses);
	out->cache_errors = GET(shm->cache_errors);
	out->writer_batches = GET(shm->writer_batches);
	out->writer_requests = GET(shm->writer_requests);
	out->writer_failed = GET(shm->writer_failed);
	out->writer_checkpoints = GET(shm->writer_checkpoints);
	out->writer_checkpoint_us = GET(shm->writer_checkpoint_us);
	copy(out->batch, shm->batch, COUNTERS_BATCH_BUCKETS);
	out->batch_us_sum = GET(shm->batch_us_sum);
	copy(out->restarts, shm->restarts, COUNTERS_KINDS);
	read_draws(out);
	return 0;
}
