/*
 * db_sqlite.c - db.h on SQLite: the connection and its pragmas, the
 * statement cache, binds, rows, transactions and the writer's batches,
 * WAL checkpoints and syncs, the schema version. The only file of lib/
 * that includes sqlite3.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db_engine.h"
#include "ledger.h"

#define STMT_MAX 128

struct stmt_slot {
	struct db_stmt base; /* first: what db.c knows */
	const char *sql;     /* the key, by address */
	sqlite3_stmt *stmt;
};

#define SQ(d) ((struct sq *)(d))
#define ST(s) (((struct stmt_slot *)(s))->stmt)

struct sq {
	struct db base; /* first: what db.c knows */
	sqlite3 *db;
	struct stmt_slot stmts[STMT_MAX];
	size_t nstmts;
	int wal_frames; /* own_checkpoints: the WAL after the last commit */
	/* group commit: inside db_batch_begin/end, db_begin and friends
	 * make a savepoint (one per rule call), or with savepoints off
	 * only note where the call began */
	int batch;
	int savepoints;
	int in_savepoint;
	int spoiled;                /* savepoints off: a call undid writes */
	sqlite3_int64 call_changes; /* rows changed when the call began */
	/* busy waiting */
	int busy_timeout_ms;
	int64_t busy_since_us;
};

static const struct db_ops sqlite_ops;
static void sq_rollback(struct db *d);
static void sq_close(struct db *d);

/* Maps an SQLite result code to an ld_err, recording "what: message". */
static enum ld_err fail(struct sq *db, int rc, const char *what)
{
	snprintf(db->base.err, sizeof db->base.err, "%s: %s", what,
		 db->db ? sqlite3_errmsg(db->db) : "no database");
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		return LD_ERR_BUSY;
	if ((rc & 0xff) == SQLITE_NOMEM)
		return LD_ERR_NOMEM;
	return LD_ERR_DB;
}

/* ---- statements ---- */

/* The cached statement for sql, reset; NULL when it cannot be prepared
 * (or the cache is full: more distinct statements than any program has),
 * with the error recorded in *e. */
static struct stmt_slot *cached(struct sq *db, const char *sql, enum ld_err *e)
{
	struct stmt_slot *slot;
	sqlite3_stmt *st;
	int rc;

	for (size_t i = 0; i < db->nstmts; i++)
		if (db->stmts[i].sql == sql) {
			sqlite3_reset(db->stmts[i].stmt); /* left open by an early return */
			return &db->stmts[i];
		}
	if (db->nstmts == STMT_MAX) {
		*e = db_error(&db->base, LD_ERR_DB, "cannot prepare statement: more than %d",
			      STMT_MAX);
		return NULL;
	}
	rc = sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK) {
		*e = fail(db, rc, "cannot prepare statement");
		return NULL;
	}
	slot = &db->stmts[db->nstmts++];
	slot->base.ops = db->base.ops;
	slot->sql = sql;
	slot->stmt = st;
	return slot;
}

/*
 * Binds st's parameters from fmt and ap (see db.h). Text is bound
 * SQLITE_STATIC: not copied, no allocation. Returns LD_OK, or
 * LD_ERR_INVALID when fmt does not match the statement (a mistake in
 * the caller, reported with its SQL) or a bind fails.
 */
static enum ld_err bind(struct sq *db, sqlite3_stmt *st, const char *fmt, va_list ap)
{
	int n = sqlite3_bind_parameter_count(st), rc = SQLITE_OK;

	if ((int)strlen(fmt) != n)
		return db_error(&db->base, LD_ERR_INVALID,
				"%d parameters bound ('%s'), the statement has %d: %s",
				(int)strlen(fmt), fmt, n, sqlite3_sql(st));
	for (int i = 0; fmt[i] && rc == SQLITE_OK; i++) {
		const char *s;
		const int64_t *p;

		switch (fmt[i]) {
		case 't':
			s = va_arg(ap, const char *);
			rc = s ? sqlite3_bind_text(st, i + 1, s, -1, SQLITE_STATIC)
			       : sqlite3_bind_null(st, i + 1);
			break;
		case 'i': rc = sqlite3_bind_int(st, i + 1, va_arg(ap, int)); break;
		case 'l': rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t)); break;
		case 'L':
			p = va_arg(ap, const int64_t *);
			rc = p ? sqlite3_bind_int64(st, i + 1, *p) : sqlite3_bind_null(st, i + 1);
			break;
		default:
			return db_error(&db->base, LD_ERR_INVALID, "bad bind format '%s' for: %s",
					fmt, sqlite3_sql(st));
		}
	}
	return rc == SQLITE_OK ? LD_OK : fail(db, rc, "cannot bind parameter");
}

/* Prepares (or finds) sql and binds fmt: the first half of every call.
 * *st is NULL on an error. */
static enum ld_err start(struct sq *db, struct stmt_slot **slot, const char *sql, const char *fmt,
			 va_list ap)
{
	enum ld_err e = LD_OK;

	if ((*slot = cached(db, sql, &e)) && (e = bind(db, (*slot)->stmt, fmt, ap)) != LD_OK) {
		sqlite3_reset((*slot)->stmt);
		*slot = NULL;
	}
	return e;
}

/* Steps st to its end (rows, if any, are passed over) and resets it. */
static enum ld_err run(struct sq *db, sqlite3_stmt *st, const char *what)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? LD_OK : fail(db, rc, what);
}

/* db_exec, and with id db_insert. */
static enum ld_err sq_exec(struct db *d, const char *sql, const char *what, int64_t *id,
			   const char *fmt, va_list ap)
{
	struct sq *db = SQ(d);
	struct stmt_slot *slot;
	enum ld_err e = start(db, &slot, sql, fmt, ap);

	if (e == LD_OK && (e = run(db, slot->stmt, what)) == LD_OK && id)
		*id = sqlite3_last_insert_rowid(db->db);
	return e;
}

static int64_t sq_changes(struct db *d)
{
	return sqlite3_changes64(SQ(d)->db);
}

static enum ld_err sq_int(struct db *d, const char *sql, const char *what, int64_t *v, int *found,
			  const char *fmt, va_list ap)
{
	struct sq *db = SQ(d);
	struct stmt_slot *slot;
	sqlite3_stmt *st;
	enum ld_err e;
	int rc;

	*v = 0;
	if (found)
		*found = 0;
	if ((e = start(db, &slot, sql, fmt, ap)) != LD_OK)
		return e;
	st = slot->stmt;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		if (found)
			*found = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? LD_OK : fail(db, rc, what);
}

static enum ld_err sq_query(struct db *d, struct db_stmt **out, const char *sql, const char *fmt,
			    va_list ap)
{
	struct stmt_slot *slot;
	enum ld_err e = start(SQ(d), &slot, sql, fmt, ap);

	*out = slot ? &slot->base : NULL;
	return e;
}

static int sq_step(struct db_stmt *st)
{
	int rc = sqlite3_step(ST(st));

	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* sqlite3_reset returns the error of the statement's last step, if it
 * failed, and leaves its message on the connection. */
static enum ld_err sq_end(struct db *d, struct db_stmt *st, const char *what)
{
	int rc = sqlite3_reset(ST(st));

	return rc == SQLITE_OK ? LD_OK : fail(SQ(d), rc, what);
}

static int64_t sq_col_int(struct db_stmt *st, int col)
{
	return sqlite3_column_int64(ST(st), col);
}

static const char *sq_col_text(struct db_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(ST(st), col);
}

static size_t sq_col_len(struct db_stmt *st, int col)
{
	return (size_t)sqlite3_column_bytes(ST(st), col);
}

static int sq_col_null(struct db_stmt *st, int col)
{
	return sqlite3_column_type(ST(st), col) == SQLITE_NULL;
}

/* ---- transactions ---- */

/* Steps a cached statement that returns no row (BEGIN, COMMIT, ...):
 * parsed once per process instead of per transaction. */
static enum ld_err step_cached(struct sq *db, const char *sql, const char *what)
{
	enum ld_err e = LD_OK;
	struct stmt_slot *slot = cached(db, sql, &e);

	return slot ? run(db, slot->stmt, what) : e;
}

static enum ld_err sq_begin(struct db *d)
{
	struct sq *db = SQ(d);

	if (!db->batch)
		return step_cached(db, "BEGIN IMMEDIATE", "cannot begin transaction");
	/* A savepoint outside a transaction would start one of its own and
	 * commit on release: refuse when the batch's transaction is gone. */
	if (sqlite3_get_autocommit(db->db))
		return db_error(&db->base, LD_ERR_DB, "the batch's transaction was rolled back");
	if (!db->savepoints) {
		db->call_changes = sqlite3_total_changes64(db->db);
		return LD_OK;
	}
	enum ld_err e = step_cached(db, "SAVEPOINT rule", "cannot begin savepoint");
	db->in_savepoint = e == LD_OK;
	return e;
}

static enum ld_err sq_commit(struct db *d)
{
	struct sq *db = SQ(d);

	enum ld_err e;

	if (db->batch) {
		if (!db->savepoints)
			return LD_OK;
		if ((e = step_cached(db, "RELEASE rule", "cannot release savepoint")) != LD_OK)
			sq_rollback(&db->base);
		db->in_savepoint = 0;
		return e;
	}
	if ((e = step_cached(db, "COMMIT", "cannot commit")) != LD_OK)
		sq_rollback(&db->base);
	return e;
}

static void sq_rollback(struct db *d)
{
	struct sq *db = SQ(d);

	if (db->batch && !db->savepoints) {
		/* Nothing to undo when the call only read (a refusal);
		 * otherwise only the whole batch can be. */
		if (sqlite3_total_changes64(db->db) != db->call_changes)
			db->spoiled = 1;
		return;
	}
	if (db->batch) {
		if (db->in_savepoint && !sqlite3_get_autocommit(db->db))
			sqlite3_exec(db->db, "ROLLBACK TO rule; RELEASE rule", NULL, NULL, NULL);
		db->in_savepoint = 0;
		return;
	}
	if (!sqlite3_get_autocommit(db->db))
		sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
}

static enum ld_err sq_read_begin(struct db *d)
{
	struct sq *db = SQ(d);

	return step_cached(db, "BEGIN", "cannot begin reading");
}

static void sq_read_end(struct db *d)
{
	struct sq *db = SQ(d);

	if (!sqlite3_get_autocommit(db->db))
		step_cached(db, "COMMIT", "cannot end reading");
}

static enum ld_err sq_batch_begin(struct db *d, int savepoints)
{
	struct sq *db = SQ(d);

	enum ld_err e = step_cached(db, "BEGIN IMMEDIATE", "cannot begin transaction");

	db->batch = e == LD_OK;
	db->savepoints = savepoints;
	db->in_savepoint = db->spoiled = 0;
	return e;
}

static int sq_batch_intact(struct db *d)
{
	struct sq *db = SQ(d);

	return db->batch && !sqlite3_get_autocommit(db->db);
}

static int sq_batch_spoiled(struct db *d)
{
	struct sq *db = SQ(d);

	return db->batch && db->spoiled;
}

static enum ld_err sq_batch_end(struct db *d, int commit)
{
	struct sq *db = SQ(d);

	enum ld_err e = LD_OK;

	db->batch = 0;
	db->in_savepoint = 0;
	if (commit && db->spoiled) {
		sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
		return db_error(&db->base, LD_ERR_DB,
				"a call in the batch could not undo its writes");
	}
	if (sqlite3_get_autocommit(db->db))
		return db_error(&db->base, LD_ERR_DB, "the batch's transaction was rolled back");
	if (commit)
		e = step_cached(db, "COMMIT", "cannot commit");
	if (!commit || e != LD_OK)
		sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
	return e;
}

/* ---- the connection ---- */

/*
 * The busy handler: waits for another process's write lock by yielding
 * the CPU a few times (the lock is usually held for tens of microseconds,
 * and on 2 cores the holder often just needs a turn), then in short steps
 * (20 us, growing to 500 us) until db->busy_timeout_ms have passed since
 * the first try. SQLite's own busy timeout sleeps 1, 2, 5, 10 ms...
 * which, when several workers take turns on a lock held for tens of
 * microseconds, leaves the CPU idle while requests queue. count is 0 on
 * the first call of each wait. Returns 1 to try again, 0 to give up
 * (SQLITE_BUSY).
 */
static int busy_wait(void *arg, int count)
{
	struct sq *db = arg;
	int64_t now = ld_mono_us();
	struct timespec ts = { 0, 0 };

	if (count == 0)
		db->busy_since_us = now;
	else if (now - db->busy_since_us >= (int64_t)db->busy_timeout_ms * 1000)
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
static int note_wal_frames(void *arg, sqlite3 *handle, const char *name, int frames)
{
	(void)handle;
	(void)name;
	((struct sq *)arg)->wal_frames = frames;
	return SQLITE_OK;
}

static int sq_wal_frames(const struct db *d)
{
	const struct sq *db = SQ(d);

	return db->wal_frames;
}

enum ld_err db_sqlite_open(const char *path, const struct ledger_options *opt, struct db **out,
			   char *err, size_t errlen)
{
	static int configured;
	struct sq *db = xcalloc(1, sizeof *db);
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	char pragmas[400];
	struct stat st;
	int rc;

	db->base.ops = &sqlite_ops;
	*out = NULL;
	/* Before the first connection of the process: SQLite's allocation
	 * statistics take a global mutex on every malloc and free, and
	 * nothing here reads them. */
	if (!configured) {
		configured = 1;
		sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	}
	if (opt->readonly) {
		flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
	} else if (opt->create) {
		flags |= SQLITE_OPEN_CREATE;
	}
	if (!opt->create && stat(path, &st) != 0) {
		snprintf(err, errlen, "cannot open database '%s': %s", path, strerror(errno));
		sq_close(&db->base);
		return LD_ERR_IO;
	}
	if (sqlite3_open_v2(path, &db->db, flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database '%s': %s", path,
			 db->db ? sqlite3_errmsg(db->db) : "out of memory");
		sq_close(&db->base);
		return LD_ERR_DB;
	}
	sqlite3_extended_result_codes(db->db, 1);
	db->busy_timeout_ms = opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : 2000;
	sqlite3_busy_handler(db->db, busy_wait, db);
	if (opt->readonly) { /* change nothing, not even the journal mode */
		*out = &db->base;
		return LD_OK;
	}
	snprintf(pragmas, sizeof pragmas,
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;"
		 " PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;",
		 opt->bulk                       ? "OFF"
			 : opt->synchronous_full ? "FULL"
						 : "NORMAL");
	/* Deferred: a WAL of up to ~40 MB before a worker checkpoints itself,
	 * which it only does when the checkpointer process is not keeping up. */
	if (opt->defer_checkpoints)
		strcat(pragmas, " PRAGMA wal_autocheckpoint=10000;");
	/* A batch program with a throwaway database to itself: a larger page
	 * cache, fewer and larger checkpoints, and no file lock taken and
	 * released around every transaction. */
	if (opt->bulk)
		strcat(pragmas,
		       " PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=16384;"
		       " PRAGMA locking_mode=EXCLUSIVE;");
	if ((rc = sqlite3_exec(db->db, pragmas, NULL, NULL, NULL)) != SQLITE_OK) {
		fail(db, rc, "cannot set up database");
		snprintf(err, errlen, "database '%s': %s", path, db->base.err);
		sq_close(&db->base);
		return LD_ERR_DB;
	}
	if (opt->own_checkpoints) /* after the pragmas: replaces autocheckpoint */
		sqlite3_wal_hook(db->db, note_wal_frames, db);
	/* Alone: an exclusive lock, kept (locking_mode) until the connection
	 * closes; any other connection, even an idle one, holds it off. */
	if (opt->alone) {
		sqlite3_busy_handler(db->db, NULL, NULL);
		rc = sqlite3_exec(db->db, "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;",
				  NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			enum ld_err e = fail(db, rc, "cannot have it alone");
			snprintf(err, errlen,
				 "database '%s' is in use by another process (%s):"
				 " stop the service and the dispatcher first",
				 path, sqlite3_errmsg(db->db));
			sq_close(&db->base);
			return e == LD_ERR_BUSY ? LD_ERR_BUSY : LD_ERR_DB;
		}
	}
	*out = &db->base;
	return LD_OK;
}

static void sq_close(struct db *d)
{
	struct sq *db = SQ(d);

	if (!db)
		return;
	for (size_t i = 0; i < db->nstmts; i++)
		sqlite3_finalize(db->stmts[i].stmt);
	sqlite3_close(db->db);
	free(db);
}

static enum ld_err sq_checkpoint(struct db *d, int restart, int *frames)
{
	struct sq *db = SQ(d);

	int log = 0, done = 0;
	int rc = sqlite3_wal_checkpoint_v2(
		db->db, NULL, restart ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE, &log,
		&done);

	if (frames)
		*frames = log;
	if ((rc & 0xff) == SQLITE_BUSY)
		return LD_ERR_BUSY; /* readers or another checkpoint: next time */
	return rc == SQLITE_OK ? LD_OK : fail(db, rc, "cannot checkpoint");
}

static enum ld_err sq_sync(struct db *d)
{
	struct sq *db = SQ(d);

	sqlite3_file *f = NULL;
	int rc = sqlite3_file_control(db->db, "main", SQLITE_FCNTL_FILE_POINTER, &f);

	if (rc == SQLITE_OK && f && f->pMethods)
		rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
	return rc == SQLITE_OK ? LD_OK : fail(db, rc, "cannot sync the database");
}

static enum ld_err sq_schema_version(struct db *d, int *version)
{
	struct sq *db = SQ(d);

	int64_t v = 0;
	enum ld_err e = db_int(&db->base, "PRAGMA user_version", "cannot read the schema version",
			       &v, NULL, "");

	*version = (int)v;
	return e;
}

static enum ld_err sq_set_schema_version(struct db *d, int version)
{
	struct sq *db = SQ(d);

	char sql[64];

	snprintf(sql, sizeof sql, "PRAGMA user_version=%d", version);
	return db_script(&db->base, sql, "cannot set the schema version");
}

static enum ld_err sq_script(struct db *d, const char *sql, const char *what)
{
	struct sq *db = SQ(d);

	int rc = sqlite3_exec(db->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? LD_OK : fail(db, rc, what);
}

/* ---- backups ---- */

/* The rows of table (an identifier of the caller's, not the user's),
 * with a statement of its own, not cached. */
static enum ld_err count_rows(struct sq *db, const char *table, int64_t *n)
{
	char sql[128];
	sqlite3_stmt *st;
	int rc;

	*n = 0;
	if (strspn(table, "abcdefghijklmnopqrstuvwxyz_0123456789") != strlen(table) ||
	    ld_fmt(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", table) != 0)
		return db_error(&db->base, LD_ERR_INVALID, "not a table name: '%s'", table);
	if ((rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL)) != SQLITE_OK)
		return fail(db, rc, "cannot count rows");
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*n = sqlite3_column_int64(st, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? LD_OK : fail(db, rc, "cannot count rows");
}

static enum ld_err count_all(struct sq *db, const char *const *tables, size_t n, int64_t *counts)
{
	enum ld_err e = LD_OK;

	for (size_t i = 0; i < n && e == LD_OK; i++)
		e = count_rows(db, tables[i], &counts[i]);
	return e;
}

/* Leaves the file at path in rollback-journal mode (one file, no -wal)
 * and synced. */
static enum ld_err finish_copy(struct sq *db, sqlite3 *dest, const char *path)
{
	int rc = sqlite3_exec(dest, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
	int fd;

	if (rc != SQLITE_OK)
		return db_error(&db->base, LD_ERR_DB, "cannot finish the copy '%s': %s", path,
				sqlite3_errmsg(dest));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fsync(fd) != 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		return db_error(&db->base, LD_ERR_IO, "cannot sync the copy '%s': %s", path,
				strerror(err));
	}
	close(fd);
	return LD_OK;
}

static enum ld_err sq_backup(struct db *d, const char *dest, enum db_backup_method method,
			     const char *const *tables, size_t n, int64_t *counts)
{
	struct sq *db = SQ(d);
	sqlite3 *to = NULL;
	sqlite3_backup *bk;
	enum ld_err e;
	int rc;

	if (method == DB_BACKUP_VACUUM) {
		sqlite3_stmt *st;
		if ((e = count_all(db, tables, n, counts)) != LD_OK)
			return e;
		if ((rc = sqlite3_prepare_v2(db->db, "VACUUM INTO ?1", -1, &st, NULL)) != SQLITE_OK)
			return fail(db, rc, "cannot copy the database");
		sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return fail(db, rc, "cannot copy the database");
		if (sqlite3_open_v2(dest, &to, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
			e = db_error(d, LD_ERR_DB, "cannot open the copy '%s': %s", dest,
				     to ? sqlite3_errmsg(to) : "out of memory");
			sqlite3_close(to);
			return e;
		}
		e = finish_copy(db, to, dest);
		sqlite3_close(to);
		return e;
	}

	/* One read transaction: the counts and the copy see one snapshot. The
	 * backup runs in one step: in WAL mode a backup in steps starts over
	 * whenever another connection writes, which under load is always. */
	if ((rc = sqlite3_open_v2(
		     dest, &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXCLUSIVE,
		     NULL)) != SQLITE_OK) {
		e = db_error(d, LD_ERR_IO, "cannot create the copy '%s': %s", dest,
			     to ? sqlite3_errmsg(to) : "out of memory");
		sqlite3_close(to);
		return e;
	}
	if ((e = step_cached(db, "BEGIN", "cannot begin reading")) != LD_OK)
		goto out;
	if ((e = count_all(db, tables, n, counts)) != LD_OK)
		goto read_end;
	if (!(bk = sqlite3_backup_init(to, "main", db->db, "main"))) {
		e = db_error(d, LD_ERR_DB, "cannot start the copy: %s", sqlite3_errmsg(to));
		goto read_end;
	}
	rc = sqlite3_backup_step(bk, -1);
	sqlite3_backup_finish(bk);
	if (rc != SQLITE_DONE)
		e = db_error(d,
			     (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED
				     ? LD_ERR_BUSY
				     : LD_ERR_DB,
			     "cannot copy the database: %s", sqlite3_errstr(rc));
read_end:
	sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL);
	if (e == LD_OK)
		e = finish_copy(db, to, dest);
out:
	sqlite3_close(to);
	return e;
}

static enum ld_err sq_integrity(struct db *d)
{
	struct sq *db = SQ(d);
	sqlite3_stmt *st;
	enum ld_err e = LD_OK;
	int rc;

	if ((rc = sqlite3_prepare_v2(db->db, "PRAGMA integrity_check", -1, &st, NULL)) != SQLITE_OK)
		return fail(db, rc, "cannot check the database");
	if ((rc = sqlite3_step(st)) != SQLITE_ROW)
		e = fail(db, rc, "cannot check the database");
	else if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)
		e = db_error(d, LD_ERR_INVALID, "integrity check: %s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return e;
}

static const struct db_ops sqlite_ops = {
	.engine = DB_SQLITE,
	.exec = sq_exec,
	.changes = sq_changes,
	.one_int = sq_int,
	.query = sq_query,
	.step = sq_step,
	.end = sq_end,
	.col_int = sq_col_int,
	.col_text = sq_col_text,
	.col_len = sq_col_len,
	.col_null = sq_col_null,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.read_begin = sq_read_begin,
	.read_end = sq_read_end,
	.close = sq_close,
	.checkpoint = sq_checkpoint,
	.sync = sq_sync,
	.wal_frames = sq_wal_frames,
	.batch_begin = sq_batch_begin,
	.batch_intact = sq_batch_intact,
	.batch_spoiled = sq_batch_spoiled,
	.batch_end = sq_batch_end,
	.schema_version = sq_schema_version,
	.set_schema_version = sq_set_schema_version,
	.script = sq_script,
	.backup = sq_backup,
	.integrity = sq_integrity,
};
