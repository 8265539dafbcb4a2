/*
 * cachesync.h - comparing the Redis balance cache with the ledger, and
 * rewriting it from the ledger, for `luckydicectl cache verify|rebuild`
 * while the service keeps serving.
 *
 * The balances of a promotion are read in pages ordered by uid (each page
 * its own short read, so no snapshot is held for the whole run and the
 * WAL can be checkpointed meanwhile); each user's cached value is then
 * compared with the ledger row of that page.
 */
#ifndef LD_CACHESYNC_H
#define LD_CACHESYNC_H

#include "cache.h"
#include "ledger.h"

#define CACHESYNC_PAGE 1000

enum cachesync_state {
	CACHESYNC_SAME = 0,    /* cached (version, balance) equals the ledger's */
	CACHESYNC_COLD,        /* no key (or version 0 in the ledger and no key): not drift */
	CACHESYNC_STALE,       /* cached version older than the ledger's */
	CACHESYNC_AHEAD,       /* cached version newer than the ledger's: written by hand */
	CACHESYNC_WRONG,       /* same version, another balance: written by hand */
	CACHESYNC_UNAVAILABLE, /* Redis did not answer */
};

/* One user as compared. */
struct cachesync_row {
	const char *uid;
	struct ld_balance ledger;
	int64_t cached_version, cached_balance; /* valid unless COLD/UNAVAILABLE */
	enum cachesync_state state;
	int repaired; /* rebuild: the cache now holds the ledger's value */
};

struct cachesync_totals {
	int64_t users, same, cold, stale, ahead, wrong, unavailable, written;
};

/* Called for every user (row) and, for progress, with done/total. */
struct cachesync_hooks {
	void (*row)(void *arg, const struct cachesync_row *row);
	void (*progress)(void *arg, int64_t done, int64_t total);
	void *arg;
};

/*
 * Walks every balance of promotion promo and compares it with the cache.
 * With repair set, also writes the ledger's value where the cache differs
 * (see cachesync.c for how an older value is never put over a newer one).
 * t gets the counts. Returns LD_OK, a database error (its message in
 * ledger_errmsg), or LD_ERR_IO when Redis became unavailable (the walk
 * stops there; the message in cache_errmsg).
 */
enum ld_err cachesync_run(struct ledger *l, struct cache *c, const char *promo, int repair,
			  const struct cachesync_hooks *h, struct cachesync_totals *t);

/* A cache_lookup_fn reading the ledger (arg: the struct ledger), for
 * cache_repair in the processes that write the cache. */
enum ld_err cachesync_lookup(void *arg, const char *promo, const char *uid, int64_t *version,
			     int64_t *balance);

/* "same", "cold", "stale", ... */
const char *cachesync_state_name(enum cachesync_state s);

struct json_object;

/* The cache's view of (promo, uid) beside the ledger's balance b, as a
 * JSON object: "state" (hit, miss, unavailable; disabled when c is
 * NULL), on a hit "version" and "balance", "drift" (a hit that differs
 * from b), and with errors set Redis' error on an unavailable one. The
 * caller owns the object. */
struct json_object *cachesync_user_json(struct cache *c, const char *promo, const char *uid,
					const struct ld_balance *b, int errors);

#endif
