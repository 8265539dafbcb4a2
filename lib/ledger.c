/*
 * ledger.c - the SQLite connection, statement cache, transactions,
 * migrations and the per-process promotion registry.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ledger.h"

#define STMT_MAX 64

struct stmt_slot {
	const char *sql; /* the key, by pointer */
	sqlite3_stmt *stmt;
};

struct ledger {
	sqlite3 *db;
	char *path;
	char err[512];
	struct stmt_slot stmts[STMT_MAX];
	size_t nstmts;
	/* promotion registry */
	struct promo **promos;
	size_t npromos;
	int64_t promos_checked_ms; /* last look at the table */
	int64_t promos_stamp;      /* max(loaded_at) + count seen then */
	int wal_frames;            /* own_checkpoints: the WAL after the last commit */
	int promos_loaded;
	/* group commit: inside ledger_batch_begin/end, ledger_begin and
	 * friends make a savepoint (one per rule call), or with savepoints
	 * off only note where the call began */
	int batch;
	int savepoints;
	int in_savepoint;
	int spoiled;              /* savepoints off: a call undid writes */
	sqlite3_int64 call_changes; /* rows changed when the call began */
	/* busy waiting */
	int busy_timeout_ms;
	int64_t busy_since_us;
};

static void set_err(struct ledger *l, const char *what)
{
	snprintf(l->err, sizeof l->err, "%s: %s", what,
		 l->db ? sqlite3_errmsg(l->db) : "no database");
}

enum ld_err ledger_fail(struct ledger *l, int rc, const char *what)
{
	set_err(l, what);
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED ||
	    (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		return LD_ERR_BUSY;
	if (rc == SQLITE_NOMEM)
		return LD_ERR_NOMEM;
	return LD_ERR_DB;
}

const char *ledger_errmsg(const struct ledger *l)
{
	return l->err;
}

sqlite3 *ledger_db(struct ledger *l)
{
	return l->db;
}

static enum ld_err exec(struct ledger *l, const char *sql, const char *what)
{
	int rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? LD_OK : ledger_fail(l, rc, what);
}

/*
 * The busy handler: waits for another process's write lock by yielding
 * the CPU a few times (the lock is usually held for tens of microseconds,
 * and on 2 cores the holder often just needs a turn), then in short steps
 * (20 us, growing to 500 us) until l->busy_timeout_ms have passed
 * since the first try. SQLite's own busy timeout sleeps 1, 2, 5, 10 ms...
 * which, when several workers take turns on a lock held for tens of
 * microseconds, leaves the CPU idle while requests queue. count is 0 on
 * the first call of each wait. Returns 1 to try again, 0 to give up
 * (SQLITE_BUSY).
 */
static int busy_wait(void *arg, int count)
{
	struct ledger *l = arg;
	int64_t now = ld_mono_us();
	struct timespec ts = { 0, 0 };

	if (count == 0)
		l->busy_since_us = now;
	else if (now - l->busy_since_us >= (int64_t)l->busy_timeout_ms * 1000)
		return 0;
	if (count < 8) {
		sched_yield();
		return 1;
	}
	ts.tv_nsec = 20000L * (count < 33 ? count - 7 : 25);
	nanosleep(&ts, NULL);
	return 1;
}

/* SQLite calls it after each commit with the WAL's size in frames. It
 * takes the place of the automatic checkpoints. */
static int note_wal_frames(void *arg, sqlite3 *db, const char *name, int frames)
{
	(void)db;
	(void)name;
	((struct ledger *)arg)->wal_frames = frames;
	return SQLITE_OK;
}

int ledger_wal_frames(const struct ledger *l)
{
	return l->wal_frames;
}

enum ld_err ledger_open(const char *path, const struct ledger_options *opt,
			struct ledger **out, char *err, size_t errlen)
{
	static int configured;
	struct ledger *l = xcalloc(1, sizeof *l);
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	char pragmas[320];
	struct stat st;
	enum ld_err e;

	*out = NULL;
	/* Before the first connection of the process: SQLite's allocation
	 * statistics take a global mutex on every malloc and free, and
	 * nothing here reads them (about 8 % of a claim in the writer). */
	if (!configured) {
		configured = 1;
		sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	}
	l->path = xstrdup(path);
	if (opt->create)
		flags |= SQLITE_OPEN_CREATE;
	else if (stat(path, &st) != 0) {
		snprintf(err, errlen, "cannot open database '%s': %s", path,
			 strerror(errno));
		ledger_free(l);
		return LD_ERR_IO;
	}
	if (sqlite3_open_v2(path, &l->db, flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database '%s': %s", path,
			 l->db ? sqlite3_errmsg(l->db) : "out of memory");
		ledger_free(l);
		return LD_ERR_DB;
	}
	sqlite3_extended_result_codes(l->db, 1);
	l->busy_timeout_ms = opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : 2000;
	sqlite3_busy_handler(l->db, busy_wait, l);
	snprintf(pragmas, sizeof pragmas,
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;"
		 " PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;",
		 opt->synchronous_full ? "FULL" : "NORMAL");
	/* Deferred: a WAL of up to ~40 MB before a worker checkpoints itself,
	 * which it only does when the checkpointer process is not keeping up. */
	if (opt->defer_checkpoints)
		strcat(pragmas, " PRAGMA wal_autocheckpoint=10000;");
	if ((e = exec(l, pragmas, "cannot set up database")) != LD_OK) {
		snprintf(err, errlen, "database '%s': %s", path, l->err);
		ledger_free(l);
		return e;
	}
	if (opt->own_checkpoints) /* after the pragmas: replaces autocheckpoint */
		sqlite3_wal_hook(l->db, note_wal_frames, l);
	*out = l;
	return LD_OK;
}

static void promos_clear(struct ledger *l)
{
	for (size_t i = 0; i < l->npromos; i++)
		promo_free(l->promos[i]);
	free(l->promos);
	l->promos = NULL;
	l->npromos = 0;
}

void ledger_free(struct ledger *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nstmts; i++)
		sqlite3_finalize(l->stmts[i].stmt);
	promos_clear(l);
	sqlite3_close(l->db);
	free(l->path);
	free(l);
}

sqlite3_stmt *ledger_stmt(struct ledger *l, const char *sql)
{
	sqlite3_stmt *st;
	size_t i;
	int rc;

	for (i = 0; i < l->nstmts; i++) {
		if (l->stmts[i].sql == sql) {
			st = l->stmts[i].stmt;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return st;
		}
	}
	rc = sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK) {
		ledger_fail(l, rc, "cannot prepare statement");
		return NULL;
	}
	if (l->nstmts == STMT_MAX) /* more distinct statements than planned: do not cache */
		sqlite3_finalize(l->stmts[--l->nstmts].stmt);
	l->stmts[l->nstmts].sql = sql;
	l->stmts[l->nstmts].stmt = st;
	l->nstmts++;
	return st;
}

/* Steps a cached statement that returns no row (BEGIN, COMMIT): parsing
 * them once per process instead of per transaction. */
static enum ld_err step_cached(struct ledger *l, const char *sql, const char *what)
{
	sqlite3_stmt *st = ledger_stmt(l, sql);
	int rc;

	if (!st)
		return LD_ERR_DB;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? LD_OK : ledger_fail(l, rc, what);
}

enum ld_err ledger_checkpoint(struct ledger *l, int restart, int *frames)
{
	int log = 0, done = 0;
	int rc = sqlite3_wal_checkpoint_v2(l->db, NULL,
					   restart ? SQLITE_CHECKPOINT_RESTART
						   : SQLITE_CHECKPOINT_PASSIVE, &log, &done);

	if (frames)
		*frames = log;
	if ((rc & 0xff) == SQLITE_BUSY)
		return LD_ERR_BUSY; /* readers or another checkpoint: next time */
	return rc == SQLITE_OK ? LD_OK : ledger_fail(l, rc, "cannot checkpoint");
}

enum ld_err ledger_sync(struct ledger *l)
{
	sqlite3_file *f = NULL;
	int rc = sqlite3_file_control(l->db, "main", SQLITE_FCNTL_FILE_POINTER, &f);

	if (rc == SQLITE_OK && f && f->pMethods)
		rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
	return rc == SQLITE_OK ? LD_OK : ledger_fail(l, rc, "cannot sync the database");
}

enum ld_err ledger_begin(struct ledger *l)
{
	if (!l->batch)
		return step_cached(l, "BEGIN IMMEDIATE", "cannot begin transaction");
	/* A savepoint outside a transaction would start one of its own and
	 * commit on release: refuse when the batch's transaction is gone. */
	if (sqlite3_get_autocommit(l->db)) {
		snprintf(l->err, sizeof l->err, "the batch's transaction was rolled back");
		return LD_ERR_DB;
	}
	if (!l->savepoints) {
		l->call_changes = sqlite3_total_changes64(l->db);
		return LD_OK;
	}
	enum ld_err e = step_cached(l, "SAVEPOINT rule", "cannot begin savepoint");
	l->in_savepoint = e == LD_OK;
	return e;
}

enum ld_err ledger_commit(struct ledger *l)
{
	enum ld_err e;

	if (l->batch) {
		if (!l->savepoints)
			return LD_OK;
		if ((e = step_cached(l, "RELEASE rule", "cannot release savepoint")) != LD_OK)
			ledger_rollback(l);
		l->in_savepoint = 0;
		return e;
	}
	if ((e = step_cached(l, "COMMIT", "cannot commit")) != LD_OK)
		ledger_rollback(l);
	return e;
}

void ledger_rollback(struct ledger *l)
{
	if (l->batch && !l->savepoints) {
		/* Nothing to undo when the call only read (a refusal);
		 * otherwise only the whole batch can be. */
		if (sqlite3_total_changes64(l->db) != l->call_changes)
			l->spoiled = 1;
		return;
	}
	if (l->batch) {
		if (l->in_savepoint && !sqlite3_get_autocommit(l->db))
			sqlite3_exec(l->db, "ROLLBACK TO rule; RELEASE rule", NULL, NULL, NULL);
		l->in_savepoint = 0;
		return;
	}
	if (!sqlite3_get_autocommit(l->db))
		sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
}

enum ld_err ledger_batch_begin(struct ledger *l, int savepoints)
{
	enum ld_err e = step_cached(l, "BEGIN IMMEDIATE", "cannot begin transaction");

	l->batch = e == LD_OK;
	l->savepoints = savepoints;
	l->in_savepoint = l->spoiled = 0;
	return e;
}

int ledger_batch_intact(struct ledger *l)
{
	return l->batch && !sqlite3_get_autocommit(l->db);
}

int ledger_batch_spoiled(struct ledger *l)
{
	return l->batch && l->spoiled;
}

enum ld_err ledger_batch_end(struct ledger *l, int commit)
{
	enum ld_err e = LD_OK;

	l->batch = 0;
	l->in_savepoint = 0;
	if (commit && l->spoiled) {
		sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(l->err, sizeof l->err, "a call in the batch could not undo its writes");
		return LD_ERR_DB;
	}
	if (sqlite3_get_autocommit(l->db)) {
		snprintf(l->err, sizeof l->err, "the batch's transaction was rolled back");
		return LD_ERR_DB;
	}
	if (commit)
		e = step_cached(l, "COMMIT", "cannot commit");
	if (!commit || e != LD_OK)
		sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
	return e;
}

void ledger_set_errmsg(struct ledger *l, const char *msg)
{
	snprintf(l->err, sizeof l->err, "%s", msg);
}

static int user_version(struct ledger *l)
{
	sqlite3_stmt *st = ledger_stmt(l, "PRAGMA user_version");
	int v = -1;

	if (st && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	if (st)
		sqlite3_reset(st);
	return v;
}

enum ld_err ledger_migrate(struct ledger *l, int *from, int *to)
{
	int v = user_version(l);
	char sql[64];
	enum ld_err e;

	if (v < 0)
		return LD_ERR_DB;
	if (from)
		*from = v;
	for (int i = 0; i < ld_nmigrations; i++) {
		const struct ld_migration *m = &ld_migrations[i];
		if (m->version <= v)
			continue;
		if ((e = ledger_begin(l)) != LD_OK)
			return e;
		snprintf(sql, sizeof sql, "PRAGMA user_version=%d", m->version);
		if ((e = exec(l, m->sql, m->name)) != LD_OK ||
		    (e = exec(l, sql, m->name)) != LD_OK) {
			ledger_rollback(l);
			return e;
		}
		if ((e = ledger_commit(l)) != LD_OK)
			return e;
		v = m->version;
	}
	if (to)
		*to = v;
	return LD_OK;
}

enum ld_err ledger_check_schema(struct ledger *l)
{
	int want = ld_nmigrations ? ld_migrations[ld_nmigrations - 1].version : 0;
	int v = user_version(l);

	if (v < 0)
		return LD_ERR_DB;
	if (v != want) {
		snprintf(l->err, sizeof l->err,
			 "database '%s' has schema version %d, this program needs %d:"
			 " run 'luckydicectl init'", l->path, v, want);
		return LD_ERR_INVALID;
	}
	return LD_OK;
}

static const char SQL_PROMO_EXISTS[] = "SELECT 1 FROM promotions WHERE id = ?1";
static const char SQL_PROMO_STORE[] =
	"INSERT INTO promotions (id, name, definition, loaded_at) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT (id) DO UPDATE SET name = ?2, definition = ?3,"
	"  loaded_at = max(?4, loaded_at + 1)";

enum ld_err ledger_promo_store(struct ledger *l, const struct promo *p,
			       int64_t now_ms, int *created)
{
	sqlite3_stmt *st;
	enum ld_err e;
	int rc;

	if ((e = ledger_begin(l)) != LD_OK)
		return e;
	if (!(st = ledger_stmt(l, SQL_PROMO_EXISTS)))
		goto fail;
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		e = ledger_fail(l, rc, "cannot read promotions");
		goto fail;
	}
	if (created)
		*created = rc == SQLITE_DONE;
	if (!(st = ledger_stmt(l, SQL_PROMO_STORE)))
		goto fail;
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, p->json, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now_ms);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		e = ledger_fail(l, rc, "cannot store promotion");
		goto fail;
	}
	l->promos_checked_ms = 0; /* re-read on next lookup */
	return ledger_commit(l);
fail:
	ledger_rollback(l);
	return e != LD_OK ? e : LD_ERR_DB;
}

static int cmp_promo(const void *a, const void *b)
{
	return strcmp((*(struct promo *const *)a)->id, (*(struct promo *const *)b)->id);
}

/*
 * Re-reads the promotions table when it has changed since the last look
 * (at most once per second, or at once after ledger_promo_store). A
 * definition that no longer parses (a newer program's format) is skipped
 * with a note in the error buffer.
 */
static void promos_refresh(struct ledger *l, int64_t now_ms)
{
	sqlite3_stmt *st;
	int64_t stamp = -1;
	char perr[256];

	if (l->promos_loaded && now_ms - l->promos_checked_ms < 1000 &&
	    now_ms >= l->promos_checked_ms)
		return;
	l->promos_checked_ms = now_ms;
	st = ledger_stmt(l, "SELECT coalesce(sum(loaded_at), 0) + count(*) FROM promotions");
	if (st && sqlite3_step(st) == SQLITE_ROW)
		stamp = sqlite3_column_int64(st, 0);
	if (st)
		sqlite3_reset(st);
	if (stamp < 0 || (l->promos_loaded && stamp == l->promos_stamp))
		return;
	st = ledger_stmt(l, "SELECT definition FROM promotions ORDER BY id");
	if (!st)
		return;
	promos_clear(l);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *def = (const char *)sqlite3_column_text(st, 0);
		struct promo *p;
		if (promo_parse(def, (size_t)sqlite3_column_bytes(st, 0), &p, perr,
				sizeof perr) != LD_OK) {
			snprintf(l->err, sizeof l->err, "stored promotion skipped: %s", perr);
			continue;
		}
		l->promos = xrealloc(l->promos, (l->npromos + 1) * sizeof *l->promos);
		l->promos[l->npromos++] = p;
	}
	sqlite3_reset(st);
	qsort(l->promos, l->npromos, sizeof *l->promos, cmp_promo);
	l->promos_stamp = stamp;
	l->promos_loaded = 1;
}

const struct promo *ledger_promo(struct ledger *l, const char *id, int64_t now_ms)
{
	promos_refresh(l, now_ms);
	for (size_t i = 0; i < l->npromos; i++)
		if (strcmp(l->promos[i]->id, id) == 0)
			return l->promos[i];
	return NULL;
}

const struct promo *const *ledger_promos(struct ledger *l, int64_t now_ms, size_t *n)
{
	promos_refresh(l, now_ms);
	*n = l->npromos;
	return (const struct promo *const *)l->promos;
}

enum ld_err ledger_balance_write(struct ledger *l, sqlite3_stmt *st, const char *promo,
				 const char *uid, struct ld_balance *bal, int *changed,
				 const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return ledger_fail(l, rc, what);
	*changed = sqlite3_changes(l->db) > 0;
	return *changed ? ledger_balance(l, promo, uid, bal) : LD_OK;
}

enum ld_err ledger_balance(struct ledger *l, const char *promo, const char *uid,
			   struct ld_balance *b)
{
	sqlite3_stmt *st = ledger_stmt(l,
		"SELECT granted, spent, version FROM balances WHERE promo = ?1 AND uid = ?2");
	int rc;

	memset(b, 0, sizeof *b);
	if (!st)
		return LD_ERR_DB;
	sqlite3_bind_text(st, 1, promo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		b->granted = sqlite3_column_int64(st, 0);
		b->spent = sqlite3_column_int64(st, 1);
		b->version = sqlite3_column_int64(st, 2);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? LD_OK : ledger_fail(l, rc, "cannot read balance");
}
