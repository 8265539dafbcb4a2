/*
 * ledger.c - the ledger over its connection (db.h): migrations, the
 * per-process promotion registry, balances.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "buf.h"
#include "ledger.h"

#define LEDGER_PROMOS_MAX 1024 /* promotions in the registry at most */

struct ledger {
	struct db *db;
	char *path; /* the "db" as messages show it (ld_db_shown) */
	/* promotion registry */
	struct buf promos;         /* struct promo *, sorted by id */
	int64_t promos_checked_ms; /* last look at the table */
	int64_t promos_stamp;      /* sum(loaded_at) + count seen then */
	int promos_loaded;
	char id[LEDGER_ID_LEN + 1]; /* ledger_id, once read */
};

const char *ledger_errmsg(const struct ledger *l)
{
	return db_errmsg(l->db);
}

struct db *ledger_db(struct ledger *l)
{
	return l->db;
}

enum ld_err ledger_open(const char *path, const struct ledger_options *opt, struct ledger **out,
			char *err, size_t errlen)
{
	struct ledger *l;
	struct db *db;
	enum ld_err e;

	*out = NULL;
	if ((e = db_open(path, opt, &db, err, errlen)) != LD_OK)
		return e;
	l = xcalloc(1, sizeof *l);
	l->db = db;
	buf_init(&l->promos, LEDGER_PROMOS_MAX * sizeof(struct promo *));
	l->path = ld_db_shown(path);
	*out = l;
	return LD_OK;
}

static void promos_clear(struct ledger *l)
{
	struct promo **ps = (struct promo **)l->promos.p;

	for (size_t i = 0; i < l->promos.len / sizeof *ps; i++)
		promo_free(ps[i]);
	buf_free(&l->promos);
}

void ledger_free(struct ledger *l)
{
	if (!l)
		return;
	promos_clear(l);
	db_close(l->db);
	free(l->path);
	free(l);
}

/* The SQLite-only operations, kept in db_sqlite.c (see ledger.h). */
enum ld_err ledger_checkpoint(struct ledger *l, int restart, int *frames)
{
	return db_checkpoint(l->db, restart, frames);
}

enum ld_err ledger_sync(struct ledger *l)
{
	return db_sync(l->db);
}

int ledger_wal_frames(const struct ledger *l)
{
	return db_wal_frames(l->db);
}

enum ld_err ledger_batch_begin(struct ledger *l, int savepoints)
{
	return db_batch_begin(l->db, savepoints);
}

int ledger_batch_intact(struct ledger *l)
{
	return db_batch_intact(l->db);
}

int ledger_batch_spoiled(struct ledger *l)
{
	return db_batch_spoiled(l->db);
}

enum ld_err ledger_batch_end(struct ledger *l, int commit)
{
	return db_batch_end(l->db, commit);
}

/* The migrations of the ledger's engine; *n gets their count. */
static const struct ld_migration *migrations(struct ledger *l, int *n)
{
	if (db_engine(l->db) == DB_PG) {
		*n = ld_pg_nmigrations;
		return ld_pg_migrations;
	}
	*n = ld_nmigrations;
	return ld_migrations;
}

/* Several hosts may run 'luckydicectl init' at once against one
 * PostgreSQL server: each migration runs under a transaction-wide lock
 * and reads the version again inside it. */
static const char SQL_PG_MIGRATE_LOCK[] = "SELECT pg_advisory_xact_lock(7201)";

enum ld_err ledger_migrate(struct ledger *l, int *from, int *to)
{
	int n, v, pg = db_engine(l->db) == DB_PG;
	const struct ld_migration *ms = migrations(l, &n);
	enum ld_err e;

	if ((e = db_schema_version(l->db, &v)) != LD_OK)
		return e;
	if (from)
		*from = v;
	for (int i = 0; i < n; i++) {
		const struct ld_migration *m = &ms[i];
		if (m->version <= v)
			continue;
		if ((e = db_begin(l->db)) != LD_OK)
			return e;
		if (pg &&
		    ((e = db_script(l->db, SQL_PG_MIGRATE_LOCK, "cannot lock the schema")) !=
			     LD_OK ||
		     (e = db_schema_version(l->db, &v)) != LD_OK)) {
			db_rollback(l->db);
			return e;
		}
		if (m->version <= v) {
			db_rollback(l->db);
			continue;
		}
		if ((e = db_script(l->db, m->sql, m->name)) != LD_OK ||
		    (e = db_set_schema_version(l->db, m->version)) != LD_OK) {
			db_rollback(l->db);
			return e;
		}
		if ((e = db_commit(l->db)) != LD_OK)
			return e;
		v = m->version;
	}
	/* PostgreSQL's rule functions are not migrations: this program's
	 * own, made again every time (sql/pg/rules.sql). */
	if (pg && (e = db_begin(l->db)) == LD_OK) {
		if ((e = db_script(l->db, SQL_PG_MIGRATE_LOCK, "cannot lock the schema")) !=
			    LD_OK ||
		    (e = db_script(l->db, ld_pg_functions, "sql/pg/rules.sql")) != LD_OK)
			db_rollback(l->db);
		else
			e = db_commit(l->db);
	}
	if (e != LD_OK)
		return e;
	if (to)
		*to = v;
	return LD_OK;
}

enum ld_err ledger_check_schema(struct ledger *l)
{
	int n, v;
	const struct ld_migration *ms = migrations(l, &n);
	int want = n ? ms[n - 1].version : 0;
	enum ld_err e;

	if ((e = db_schema_version(l->db, &v)) != LD_OK)
		return e;
	if (v > want)
		return db_error(l->db, LD_ERR_INVALID,
				"database '%s' has schema version %d, newer than this program's %d:"
				" upgrade luckydice",
				l->path, v, want);
	if (v < want)
		return db_error(l->db, LD_ERR_INVALID,
				"database '%s' has schema version %d, this program needs %d:"
				" run 'luckydicectl init'",
				l->path, v, want);
	return LD_OK;
}

static const char SQL_PROMO_EXISTS[] = "SELECT 1 FROM promotions WHERE id = ?1";
/* loaded_at only grows, even when the clock went back: it tells the
 * workers that the table changed (promos_refresh). A pause and a resume
 * move it the same way. */
#define LOADED_AT_NEXT(ms) \
	"CASE WHEN " ms " > promotions.loaded_at THEN " ms " ELSE promotions.loaded_at + 1 END"
static const char SQL_PROMO_STORE[] =
	"INSERT INTO promotions (id, name, definition, loaded_at) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT (id) DO UPDATE SET name = ?2, definition = ?3,"
	"  loaded_at = " LOADED_AT_NEXT("?4");
static const char SQL_PROMO_HISTORY_ADD[] =
	"INSERT INTO promotion_history (promo, at, actor, action, content, note)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

enum ld_err ledger_promo_store(struct ledger *l, const struct promo *p, int64_t now_ms,
			       const struct promo_change *ch, int *created)
{
	static const struct promo_change nobody = { NULL, NULL, NULL };
	int64_t one;
	enum ld_err e;
	int found;

	if (!ch)
		ch = &nobody;
	if ((e = db_begin(l->db)) != LD_OK)
		return e;
	if ((e = db_int(l->db, SQL_PROMO_EXISTS, "cannot read promotions", &one, &found, "t",
			p->id)) != LD_OK ||
	    (e = db_exec(l->db, SQL_PROMO_STORE, "cannot store promotion", "tttl", p->id, p->name,
			 p->json, now_ms)) != LD_OK ||
	    (e = db_exec(l->db, SQL_PROMO_HISTORY_ADD, "cannot record the promotion's history",
			 "tltttt", p->id, now_ms, ch->actor, "load",
			 ch->content ? ch->content : p->json, ch->note)) != LD_OK) {
		db_rollback(l->db);
		return e;
	}
	if (created)
		*created = !found;
	l->promos_checked_ms = 0; /* re-read on next lookup */
	return db_commit(l->db);
}

static const char SQL_PROMO_PAUSE[] =
	"UPDATE promotions SET paused_at = ?2, paused_by = ?3, paused_reason = ?4,"
	" loaded_at = " LOADED_AT_NEXT("?2") " WHERE id = ?1 AND paused_at IS NULL";
static const char SQL_PROMO_RESUME[] =
	"UPDATE promotions SET paused_at = NULL, paused_by = NULL, paused_reason = NULL,"
	" loaded_at = " LOADED_AT_NEXT("?2") " WHERE id = ?1 AND paused_at IS NOT NULL";

enum ld_err ledger_promo_pause(struct ledger *l, const char *id, int paused, int64_t now_ms,
			       const struct promo_change *ch, int *changed)
{
	enum ld_err e;
	int64_t one;
	int found, n;

	if (changed)
		*changed = 0;
	if ((e = db_begin(l->db)) != LD_OK)
		return e;
	if (paused)
		e = db_exec(l->db, SQL_PROMO_PAUSE, "cannot pause promotion", "tltt", id, now_ms,
			    ch->actor, ch->note);
	else
		e = db_exec(l->db, SQL_PROMO_RESUME, "cannot resume promotion", "tl", id, now_ms);
	n = e == LD_OK && db_changes(l->db) > 0;
	if (e == LD_OK && !n &&
	    (e = db_int(l->db, SQL_PROMO_EXISTS, "cannot read promotions", &one, &found, "t",
			id)) == LD_OK &&
	    !found)
		e = db_error(l->db, LD_ERR_NOTFOUND, "no promotion '%s'", id);
	if (e == LD_OK && n)
		e = db_exec(l->db, SQL_PROMO_HISTORY_ADD, "cannot record the promotion's history",
			    "tltttt", id, now_ms, ch->actor, paused ? "pause" : "resume", NULL,
			    ch->note);
	if (e != LD_OK) {
		db_rollback(l->db);
		return e;
	}
	if (changed)
		*changed = n;
	l->promos_checked_ms = 0;
	return db_commit(l->db);
}

static int cmp_promo(const void *a, const void *b)
{
	return strcmp((*(struct promo *const *)a)->id, (*(struct promo *const *)b)->id);
}

/*
 * Re-reads the promotions table when it has changed since the last look
 * (at most once per second, or at once after ledger_promo_store). A
 * definition that no longer parses (a newer program's format) is skipped
 * with a note in the error message.
 */
static void promos_refresh(struct ledger *l, int64_t now_ms)
{
	struct db_stmt *st;
	int64_t stamp = -1;
	char perr[256];

	if (l->promos_loaded && now_ms - l->promos_checked_ms < 1000 &&
	    now_ms >= l->promos_checked_ms)
		return;
	l->promos_checked_ms = now_ms;
	if (db_int(l->db, "SELECT coalesce(sum(loaded_at), 0) + count(*) FROM promotions",
		   "cannot read promotions", &stamp, NULL, "") != LD_OK ||
	    (l->promos_loaded && stamp == l->promos_stamp))
		return;
	if (db_query(l->db, &st,
		     "SELECT definition, paused_at, paused_reason FROM promotions"
		     " ORDER BY id",
		     "") != LD_OK)
		return;
	promos_clear(l);
	while (db_step(st) > 0) {
		struct promo *p;
		if (promo_parse(db_col_text(st, 0), db_col_len(st, 0), &p, perr, sizeof perr) !=
		    LD_OK) {
			db_error(l->db, LD_ERR_INVALID, "stored promotion skipped: %s", perr);
			continue;
		}
		struct promo **slot = buf_grow(&l->promos, sizeof *slot);
		if (!slot) {
			db_error(l->db, LD_ERR_INVALID, "more than %d promotions: '%s' skipped",
				 LEDGER_PROMOS_MAX, p->id);
			promo_free(p);
			continue;
		}
		p->paused_at = db_col_int(st, 1);
		if (!db_col_null(st, 1))
			p->paused_reason = xstrdup(db_col_text(st, 2) ? db_col_text(st, 2) : "");
		*slot = p;
	}
	db_end(l->db, st, "cannot read promotions");
	if (l->promos.len > 0)
		qsort(l->promos.p, l->promos.len / sizeof(struct promo *), sizeof(struct promo *),
		      cmp_promo);
	l->promos_stamp = stamp;
	l->promos_loaded = 1;
}

const struct promo *ledger_promo(struct ledger *l, const char *id, int64_t now_ms)
{
	size_t n;
	const struct promo *const *ps = ledger_promos(l, now_ms, &n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(ps[i]->id, id) == 0)
			return ps[i];
	return NULL;
}

const struct promo *const *ledger_promos(struct ledger *l, int64_t now_ms, size_t *n)
{
	promos_refresh(l, now_ms);
	*n = l->promos.len / sizeof(struct promo *);
	return (const struct promo *const *)l->promos.p;
}

enum ld_err ledger_balance_changed(struct ledger *l, const char *promo, const char *uid,
				   struct ld_balance *bal, int *changed)
{
	*changed = db_changes(l->db) > 0;
	return *changed ? ledger_balance(l, promo, uid, bal) : LD_OK;
}

static enum ld_err balance_read(struct ledger *l, const char *promo, const char *uid,
				struct ld_balance *b, int for_update)
{
	static const char SQL[] = "SELECT granted, spent, version FROM balances"
				  " WHERE promo = ?1 AND uid = ?2";
	static const char SQL_LOCK[] = "SELECT granted, spent, version FROM balances"
				       " WHERE promo = ?1 AND uid = ?2 FOR UPDATE";
	struct db_stmt *st;
	enum ld_err e;

	memset(b, 0, sizeof *b);
	if ((e = db_query(l->db, &st, for_update && db_engine(l->db) == DB_PG ? SQL_LOCK : SQL,
			  "tt", promo, uid)) != LD_OK)
		return e;
	if (db_step(st) > 0) {
		b->granted = db_col_int(st, 0);
		b->spent = db_col_int(st, 1);
		b->version = db_col_int(st, 2);
	}
	return db_end(l->db, st, "cannot read balance");
}

enum ld_err ledger_balance(struct ledger *l, const char *promo, const char *uid,
			   struct ld_balance *b)
{
	return balance_read(l, promo, uid, b, 0);
}

enum ld_err ledger_balance_for_update(struct ledger *l, const char *promo, const char *uid,
				      struct ld_balance *b)
{
	return balance_read(l, promo, uid, b, 1);
}

enum ld_err ledger_meta_get(struct ledger *l, const char *key, char *buf, size_t len, int *found)
{
	struct db_stmt *st;
	enum ld_err e;

	*found = 0;
	if (len)
		buf[0] = '\0';
	if ((e = db_query(l->db, &st, "SELECT value FROM ledger_meta WHERE key = ?1", "t", key)) !=
	    LD_OK)
		return e;
	if (db_step(st) > 0) {
		*found = 1;
		snprintf(buf, len, "%s", db_col_text(st, 0) ? db_col_text(st, 0) : "");
	}
	return db_end(l->db, st, "cannot read ledger_meta");
}

enum ld_err ledger_meta_set(struct ledger *l, const char *key, const char *value)
{
	return db_exec(l->db,
		       "INSERT INTO ledger_meta (key, value) VALUES (?1, ?2)"
		       " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
		       "cannot write ledger_meta", "tt", key, value);
}

enum ld_err ledger_id(struct ledger *l, const char **id)
{
	enum ld_err e;
	int found;

	*id = l->id;
	if (l->id[0])
		return LD_OK;
	if ((e = ledger_meta_get(l, "ledger_id", l->id, sizeof l->id, &found)) != LD_OK)
		return e;
	if (!found || strlen(l->id) != LEDGER_ID_LEN) {
		l->id[0] = '\0';
		return db_error(l->db, LD_ERR_NOTFOUND,
				"the ledger has no id: run 'luckydicectl init'");
	}
	return LD_OK;
}

enum ld_err ledger_renew_id(struct ledger *l, int64_t now_ms, const char *because, char *old,
			    char *now)
{
	unsigned char raw[LEDGER_ID_LEN / 2];
	char id[LEDGER_ID_LEN + 1], prev[LEDGER_ID_LEN + 1], at[24];
	enum ld_err e;
	int found;

	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(id, sizeof id, raw, sizeof raw);
	snprintf(at, sizeof at, "%lld", (long long)now_ms);
	if ((e = db_begin(l->db)) != LD_OK)
		return e;
	if ((e = ledger_meta_get(l, "ledger_id", prev, sizeof prev, &found)) != LD_OK ||
	    (e = ledger_meta_set(l, "ledger_id", id)) != LD_OK ||
	    (found && (e = ledger_meta_set(l, "previous_ledger_id", prev)) != LD_OK) ||
	    (e = ledger_meta_set(l, "renewed_at", at)) != LD_OK ||
	    (e = ledger_meta_set(l, "renewed_because", because ? because : "")) != LD_OK) {
		db_rollback(l->db);
		return e;
	}
	if ((e = db_commit(l->db)) != LD_OK)
		return e;
	memcpy(l->id, id, sizeof l->id);
	if (old)
		memcpy(old, found ? prev : "", found ? sizeof prev : 1);
	if (now)
		memcpy(now, id, sizeof id);
	return LD_OK;
}
