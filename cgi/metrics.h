/*
 * metrics.h - counters for GET /metrics (Prometheus text format).
 *
 * The workers are separate processes, so the counters live in one shared
 * anonymous mapping that the supervisor makes before it forks them
 * (metrics_init); each worker adds to it with atomic increments, a few
 * per request and no lock. What the ledger knows (outbox due and dead) is
 * read at scrape time instead. Counters start at zero when the supervisor
 * starts; Prometheus' rate() copes with the reset.
 *
 * Every function is a no-op when metrics_init was not called or failed.
 */
#ifndef LD_METRICS_H
#define LD_METRICS_H

#include <stdint.h>
#include "cache.h"

/* Maps the shared counters. Call once, before forking. Returns 0 or -1
 * (metrics then stay off; the service runs without them). */
int metrics_init(void);

/* One answered request: route index (or -1 for no route), status and
 * duration in microseconds. */
void metrics_request(int route, int status, int64_t us);

enum metrics_grant { METRICS_GRANT_VISIT, METRICS_GRANT_INVITEE, METRICS_GRANT_INVITER,
		     METRICS_GRANTS };
void metrics_grant(enum metrics_grant reason);

/* A new draw (not a replay) in promo; prize NULL for a miss. */
void metrics_draw(const char *promo, const char *prize);

/* One batch of the writer process: how many requests, whether its
 * transaction was committed, and how long it took (microseconds). */
void metrics_writer(size_t requests, int committed, int64_t us);

/* One checkpoint the writer ran between batches (writer.h), microseconds. */
void metrics_writer_checkpoint(int64_t us);

/* Adds what this process's cache counted since the last call. */
void metrics_cache(const struct cache_stats *now);

#endif
