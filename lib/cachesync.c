/*
 * cachesync.c - cache verify and rebuild (see cachesync.h).
 *
 * Live traffic moves balances while we walk: a page of the ledger read a
 * moment ago may be older than what a request has since committed and
 * published, and a request may have committed without having published
 * yet. So a user who looks drifted is looked at again after a short
 * pause, cache first and ledger second: a value published by a request
 * was committed before it was published, so a fresh ledger read is never
 * older than it. Only what is still different then counts as drift.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cachesync.h"

#define CONFIRM_PAUSE_MS 20

const char *cachesync_state_name(enum cachesync_state s)
{
	switch (s) {
	case CACHESYNC_SAME: return "same";
	case CACHESYNC_COLD: return "cold";
	case CACHESYNC_STALE: return "stale";
	case CACHESYNC_AHEAD: return "ahead";
	case CACHESYNC_WRONG: return "wrong";
	case CACHESYNC_UNAVAILABLE: return "unavailable";
	}
	return "unknown";
}

struct page_row {
	char *uid;
	struct ld_balance b;
};

static const char SQL_PAGE[] = "SELECT uid, granted, spent, version FROM balances"
			       " WHERE promo = ?1 AND uid > ?2 ORDER BY uid LIMIT ?3";
static const char SQL_COUNT[] = "SELECT count(*) FROM balances WHERE promo = ?1";

/* Reads up to CACHESYNC_PAGE balances after uid `after` into rows; *n
 * gets how many. The statement is reset before returning, so no read
 * snapshot outlives the page. */
static enum ld_err read_page(struct ledger *l, const char *promo, const char *after,
			     struct page_row *rows, size_t *n)
{
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	enum ld_err e;

	*n = 0;
	if ((e = db_query(db, &st, SQL_PAGE, "tti", promo, after, CACHESYNC_PAGE)) != LD_OK)
		return e;
	while (*n < CACHESYNC_PAGE && db_step(st) > 0) {
		rows[*n].uid = xstrdup(db_col_text(st, 0));
		rows[*n].b.granted = db_col_int(st, 1);
		rows[*n].b.spent = db_col_int(st, 2);
		rows[*n].b.version = db_col_int(st, 3);
		(*n)++;
	}
	return db_end(db, st, "cannot read balances");
}

/* got: what cache_get answered. */
static enum cachesync_state classify(const struct cachesync_row *r, enum ld_err got)
{
	if (got == LD_ERR_NOTFOUND)
		return CACHESYNC_COLD;
	if (got != LD_OK)
		return CACHESYNC_UNAVAILABLE;
	if (r->cached_version < r->ledger.version)
		return CACHESYNC_STALE;
	if (r->cached_version > r->ledger.version)
		return CACHESYNC_AHEAD;
	return r->cached_balance == BALANCE(r->ledger) ? CACHESYNC_SAME : CACHESYNC_WRONG;
}

static void pause_ms(int ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

/* Reads the cache, then the ledger, of row->uid and classifies. */
static enum ld_err look(struct ledger *l, struct cache *c, const char *promo,
			struct cachesync_row *row)
{
	enum ld_err got = cache_get(c, promo, row->uid, &row->cached_version, &row->cached_balance);
	enum ld_err e = ledger_balance(l, promo, row->uid, &row->ledger);

	row->state = classify(row, got);
	return e;
}

/*
 * Makes the cache hold the ledger's value of row->uid.
 *
 * Stale and cold keys go through cache_put, the same compare-and-set the
 * service uses: if a request publishes a newer version meanwhile, ours is
 * refused and the newer one stays, so a rebuild never puts an older value
 * over a newer one.
 *
 * A key whose version is newer than the ledger's (or the same version with
 * another balance) cannot come from the service: versions are only ever
 * made by ledger transactions, and each version has exactly one balance.
 * It was written by hand or by corruption, and the compare-and-set would
 * keep it forever (it refuses every correct, lower version), so only an
 * unconditional cache_set_raw can repair it. That write could hide a
 * version committed between our ledger read and the write; so the ledger
 * is read right before it, and read again and published with cache_put
 * right after it, which puts back anything newer that committed meanwhile
 * (its own publish was refused while the bad key was there).
 */
static enum ld_err repair(struct ledger *l, struct cache *c, const char *promo,
			  struct cachesync_row *row)
{
	struct ld_balance b;
	enum ld_err e;

	if (row->state == CACHESYNC_COLD && row->ledger.version == 0)
		return LD_OK; /* nothing was ever granted: the service leaves no key either */
	if (row->state == CACHESYNC_AHEAD || row->state == CACHESYNC_WRONG) {
		if ((e = ledger_balance(l, promo, row->uid, &b)) != LD_OK)
			return e;
		if (cache_set_raw(c, promo, row->uid, b.version, BALANCE(b)) != LD_OK)
			return LD_ERR_IO; /* the message in cache_errmsg */
	}
	if ((e = ledger_balance(l, promo, row->uid, &b)) != LD_OK)
		return e;
	if (cache_put(c, promo, row->uid, b.version, BALANCE(b), NULL) != LD_OK)
		return LD_ERR_IO;
	row->repaired = 1;
	return LD_OK;
}

static void count(struct cachesync_totals *t, enum cachesync_state s)
{
	switch (s) {
	case CACHESYNC_SAME: t->same++; break;
	case CACHESYNC_COLD: t->cold++; break;
	case CACHESYNC_STALE: t->stale++; break;
	case CACHESYNC_AHEAD: t->ahead++; break;
	case CACHESYNC_WRONG: t->wrong++; break;
	case CACHESYNC_UNAVAILABLE: t->unavailable++; break;
	}
}

/* Compares (and with repair, fixes) one user of a page. */
static enum ld_err one(struct ledger *l, struct cache *c, const char *promo, int repair_it,
		       const struct page_row *pr, const struct cachesync_hooks *h,
		       struct cachesync_totals *t)
{
	struct cachesync_row row = { .uid = pr->uid, .ledger = pr->b };
	enum ld_err e, got;

	got = cache_get(c, promo, pr->uid, &row.cached_version, &row.cached_balance);
	row.state = classify(&row, got);
	if (row.state != CACHESYNC_SAME && row.state != CACHESYNC_COLD &&
	    row.state != CACHESYNC_UNAVAILABLE) {
		pause_ms(CONFIRM_PAUSE_MS);
		if ((e = look(l, c, promo, &row)) != LD_OK)
			return e;
	}
	if (row.state == CACHESYNC_UNAVAILABLE) {
		t->unavailable++;
		return LD_ERR_IO;
	}
	if (repair_it && row.state != CACHESYNC_SAME) {
		if ((e = repair(l, c, promo, &row)) != LD_OK)
			return e;
		t->written += row.repaired;
	}
	count(t, row.state);
	if (h && h->row)
		h->row(h->arg, &row);
	return LD_OK;
}

enum ld_err cachesync_run(struct ledger *l, struct cache *c, const char *promo, int repair_it,
			  const struct cachesync_hooks *h, struct cachesync_totals *t)
{
	struct page_row *rows = xcalloc(CACHESYNC_PAGE, sizeof *rows);
	char *after = xstrdup("");
	int64_t total = 0;
	enum ld_err e;
	size_t n = 0;

	memset(t, 0, sizeof *t);
	if ((e = db_int(ledger_db(l), SQL_COUNT, "cannot count balances", &total, NULL, "t",
			promo)) != LD_OK)
		goto out;
	do {
		if ((e = read_page(l, promo, after, rows, &n)) != LD_OK)
			goto out;
		for (size_t i = 0; i < n && e == LD_OK; i++) {
			e = one(l, c, promo, repair_it, &rows[i], h, t);
			t->users++;
		}
		if (n > 0) {
			free(after);
			after = xstrdup(rows[n - 1].uid);
		}
		for (size_t i = 0; i < n; i++)
			free(rows[i].uid);
		if (e != LD_OK)
			goto out;
		if (h && h->progress)
			h->progress(h->arg, t->users, total > t->users ? total : t->users);
	} while (n == CACHESYNC_PAGE);
out:
	free(after);
	free(rows);
	return e;
}

enum ld_err cachesync_lookup(void *arg, const char *promo, const char *uid, int64_t *version,
			     int64_t *balance)
{
	struct ld_balance b;
	enum ld_err e = ledger_balance(arg, promo, uid, &b);

	*version = b.version;
	*balance = BALANCE(b);
	return e;
}

struct json_object *cachesync_user_json(struct cache *c, const char *promo, const char *uid,
					const struct ld_balance *b, int errors)
{
	struct json_object *o = json_object_new_object();
	int64_t version = 0, balance = 0;
	enum ld_err e;

	if (!c) {
		json_object_object_add(o, "state", json_object_new_string("disabled"));
		return o;
	}
	e = cache_get(c, promo, uid, &version, &balance);
	json_object_object_add(o, "state",
			       json_object_new_string(e == LD_OK ? "hit"
							      : e == LD_ERR_NOTFOUND
							      ? "miss"
							      : "unavailable"));
	if (e == LD_OK) {
		json_object_object_add(o, "version", json_object_new_int64(version));
		json_object_object_add(o, "balance", json_object_new_int64(balance));
	} else if (e != LD_ERR_NOTFOUND && errors) {
		json_object_object_add(o, "error", json_object_new_string(cache_errmsg(c)));
	}
	json_object_object_add(
		o, "drift",
		json_object_new_boolean(e == LD_OK &&
					(version != b->version || balance != BALANCE(*b))));
	return o;
}
