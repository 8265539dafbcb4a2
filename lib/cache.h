/*
 * cache.h - the Redis balance cache.
 *
 * SQLite is the truth; Redis holds "version:balance" per (promotion, user)
 * under the key "ld:b:{ledger}:{promo}:{uid}", where {ledger} is the
 * ledger id (ledger.h): a ledger restored from a backup has a new id and
 * so starts with a cold cache, never one that holds balances from after
 * the backup. Every write goes through a Lua
 * compare-and-set that keeps only a strictly newer version, so the cache
 * never goes back to an older balance than one it has shown.
 *
 * Redis trouble never fails a caller's request: every function reports
 * it as LD_ERR_IO with hiredis' own words kept on the handle
 * (cache_errmsg), drops the connection, and does not try to reconnect
 * for a short pause (a second, on the monotonic clock), so a dead or
 * hanging Redis costs at most one timeout per pause. A value that cannot be a key or a version is LD_ERR_INVALID
 * (counted as an error, the connection kept).
 *
 * hiredis writes with write(2): a program using the cache must ignore
 * SIGPIPE, or a write to a Redis that has gone away kills it.
 */
#ifndef LD_CACHE_H
#define LD_CACHE_H

#include "ld.h"

struct cache;

struct cache_stats {
	uint64_t hits, misses, errors, writes, stale_writes;
};

/* addr is "host:port" or a unix socket path; timeout_ms bounds connect and
 * every command; ledger_id goes into every key (NULL: keys without one,
 * "ld:b:{promo}:{uid}", for tests of the cache alone). Does not connect
 * yet. Returns NULL only for a malformed addr or ledger id. */
struct cache *cache_new(const char *addr, int timeout_ms, const char *ledger_id);
void cache_free(struct cache *c);

/* The clock of the pause after a failure, in ms (NULL: the monotonic
 * clock, the default). Tests pass one they move by hand. */
void cache_set_clock(struct cache *c, int64_t (*now_ms)(void *arg), void *arg);

/* The last failure's message: "redis 'var/redis.sock': cannot connect:
 * Connection refused". During the pause after a failure, calls fail with
 * the message of the failure that began it. */
const char *cache_errmsg(const struct cache *c);

/* Stores (version, balance) unless Redis already has a version >= this;
 * *stored (may be NULL) tells which. */
enum ld_err cache_put(struct cache *c, const char *promo, const char *uid, int64_t version,
		      int64_t balance, int *stored);

/* cache_put for n balances in one round trip, for the writer process
 * after a group commit: one script call for up to 128 keys (each key is
 * still compared and set on its own), several pipelined past that.
 * Returns LD_OK, or LD_ERR_IO when Redis failed: what it did not confirm
 * (every key of a call that failed) is remembered for cache_repair. */
struct cache_item {
	const char *promo, *uid;
	int64_t version, balance;
};
enum ld_err cache_put_many(struct cache *c, const struct cache_item *items, size_t n);

/* cache_put_many in two halves, so the caller need not wait for Redis:
 * cache_put_send sends the pipeline (reading the answers of one sent
 * before, if any); cache_put_collect reads the answers. Any other call
 * on c collects first. Both return LD_OK, or LD_ERR_IO when Redis
 * failed: what it did not confirm is remembered for cache_repair. */
enum ld_err cache_put_send(struct cache *c, const struct cache_item *items, size_t n);
enum ld_err cache_put_collect(struct cache *c);

/* LD_OK with version and balance on a hit, LD_ERR_NOTFOUND on a miss (not
 * a failure: no message), LD_ERR_IO when Redis is unavailable. */
enum ld_err cache_get(struct cache *c, const char *promo, const char *uid, int64_t *version,
		      int64_t *balance);

/* Deletes a key outright (support/test use only; not used on the request
 * path). */
enum ld_err cache_del(struct cache *c, const char *promo, const char *uid);

/* Overwrites a key without the version check: only for tests and for
 * simulating drift; never on the request path. */
enum ld_err cache_set_raw(struct cache *c, const char *promo, const char *uid, int64_t version,
			  int64_t balance);

const struct cache_stats *cache_stats(const struct cache *c);

/*
 * Repair after an outage. A cache_put that fails remembers its key (up to
 * CACHE_PENDING_MAX; past that it only counts them as lost, and
 * `luckydicectl cache rebuild` is the remedy). cache_repair, called when
 * convenient (the workers call it between requests), does nothing while
 * Redis is in its pause; otherwise it asks lookup for each remembered
 * key's current (version, balance) from the ledger and writes it with the
 * compare-and-set. lookup returns LD_OK, or an error (its message where
 * lookup keeps it: the ledger's) to stop, which cache_repair returns.
 * Returns LD_OK when nothing is left to repair (or during the pause),
 * LD_ERR_IO when Redis failed again (keys kept).
 */
#define CACHE_PENDING_MAX 4096
typedef enum ld_err (*cache_lookup_fn)(void *arg, const char *promo, const char *uid,
				       int64_t *version, int64_t *balance);
enum ld_err cache_repair(struct cache *c, cache_lookup_fn lookup, void *arg);

/* Keys waiting for repair; *lost (may be NULL) gets the count of failed
 * writes that could not be remembered. */
size_t cache_pending(const struct cache *c, uint64_t *lost);

#endif
