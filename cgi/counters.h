/*
 * counters.h - the counters behind GET /metrics (metrics.c renders them).
 *
 * The supervisor's children are separate processes, so the counters live
 * in one shared anonymous mapping that the supervisor makes before it
 * forks them (counters_init); each adds to it with atomic increments, a
 * few per request and no lock. They start at zero when the supervisor
 * starts; Prometheus' rate() copes with the reset.
 *
 * Indexed by plain numbers: a route is its index in the route table, a
 * status its index in the status table (http.h), a grant's reason its
 * enum grant_reason (app.h), a kind of child its enum child_kind
 * (child.h); what a number means is the caller's to say.
 * An index out of range counts in the last slot ("none", "other").
 *
 * Every function is a no-op when counters_init was not called or failed.
 */
#ifndef LD_COUNTERS_H
#define LD_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "promo.h"

#define COUNTERS_ROUTES   32  /* route indexes 0-30; the last: none */
#define COUNTERS_STATUSES 16  /* status indexes 0-14; the last: any other */
#define COUNTERS_GRANTS   4   /* reasons of a grant */
#define COUNTERS_KINDS    4   /* kinds of children */
#define COUNTERS_DRAWS    128 /* (promotion, prize) pairs */

/* The upper bounds of the histograms' buckets, microseconds; the last
 * bucket of each is +Inf. */
#define COUNTERS_LATENCY_BUCKETS 10
extern const int64_t counters_latency_us[COUNTERS_LATENCY_BUCKETS - 1];
#define COUNTERS_BATCH_BUCKETS 10
extern const int64_t counters_batch_us[COUNTERS_BATCH_BUCKETS - 1];

/* Maps the shared counters. Call once, before forking. Returns 0 or -1
 * (the counters then stay off; the service runs without them). */
int counters_init(void);

/* One answered request: its route and status, and how long it took
 * from routing to the answer, microseconds. */
void counters_request(int route, int status, int64_t us);

/* A grant made, by reason. */
void counters_grant(int reason);

/* A new draw (not a replay) in promo; prize NULL for a miss. */
void counters_draw(const char *promo, const char *prize);

/* One batch of the writer: how many requests, whether its transaction
 * committed, and how long it took, microseconds. */
void counters_writer_batch(size_t requests, int committed, int64_t us);

/* One checkpoint the writer ran between batches (writer.h), microseconds. */
void counters_writer_checkpoint(int64_t us);

/* Adds what this process's cache counted since the last call. */
void counters_cache(const struct cache_stats *now);

/* A child of that kind started again after it ended. */
void counters_restart(int kind);

/* The counters at one moment, for rendering. */
struct counters_draw_count {
	char promo[PROMO_ID_MAX + 1];
	char prize[PRIZE_ID_MAX + 1]; /* "": misses */
	uint64_t n;
};

struct counters {
	uint64_t requests[COUNTERS_ROUTES][COUNTERS_STATUSES];
	uint64_t latency[COUNTERS_LATENCY_BUCKETS]; /* per bucket, not cumulative */
	uint64_t latency_us_sum;
	uint64_t grants[COUNTERS_GRANTS];
	uint64_t cache_hits, cache_misses, cache_errors;
	uint64_t writer_batches, writer_requests, writer_failed;
	uint64_t writer_checkpoints, writer_checkpoint_us;
	uint64_t batch[COUNTERS_BATCH_BUCKETS]; /* per bucket, not cumulative */
	uint64_t batch_us_sum;
	uint64_t restarts[COUNTERS_KINDS];
	struct counters_draw_count draws[COUNTERS_DRAWS]; /* each pair once */
	size_t ndraws;
};

/* Copies the counters into *out; -1 when they are off. */
int counters_read(struct counters *out);

#endif
