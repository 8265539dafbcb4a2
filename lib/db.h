/*
 * db.h - the statement layer under every ledger module: one connection
 * (struct db) that owns its prepared statements, positional typed binds,
 * rows and NULL-aware columns, rows changed, the id of the row just
 * inserted, transactions, and errors as enum ld_err with the engine's
 * message kept on the handle (db_errmsg).
 *
 * lib/db_sqlite.c is the only implementation and the only file of lib/
 * that includes sqlite3.h. A PostgreSQL backend implements this header
 * again; what it must do differently is said where it matters.
 *
 * SQL text. Every statement is written to run on both engines:
 *  - parameters are numbered, ?1 .. ?N (a PostgreSQL backend rewrites
 *    them to $1 .. $N when it prepares);
 *  - every ON CONFLICT ... DO UPDATE names its conflict target, and
 *    qualifies the existing row's columns with the table's name
 *    ("SET granted = balances.granted + excluded.granted"): PostgreSQL
 *    requires the first and finds a bare name ambiguous;
 *  - only portable functions (count, sum, coalesce, CASE, ||): no
 *    max(a, b) of two values, no integer used as a boolean;
 *  - "no limit" is a large LIMIT, never -1 or NULL.
 *
 * Statements are prepared once per connection and cached by the address
 * of the SQL text: pass a string literal or a static const array, never
 * a string built at run time. Each call below resets the statement it
 * used before returning (db_end for a cursor), so no read snapshot
 * outlives the call.
 *
 * Binds are positional and typed by a format, one letter per parameter,
 * ?1 first. Every parameter of the statement is bound: a format whose
 * length is not the statement's parameter count is an error.
 *
 *	't'  const char *     text; NULL binds NULL
 *	'i'  int
 *	'l'  int64_t          times, ids, amounts
 *	'L'  const int64_t *  NULL binds NULL
 *
 * Text is not copied: it must stay valid until the call returns (for a
 * cursor, until db_end). Columns are numbered from 0.
 *
 * Errors: a call that fails returns LD_ERR_DB (LD_ERR_BUSY when the
 * database stayed locked past the busy timeout, LD_ERR_NOMEM) and keeps
 * "what: <engine message>" on the handle, e.g. "cannot record grant:
 * UNIQUE constraint failed: grants.promo, grants.ref".
 */
#ifndef LD_DB_H
#define LD_DB_H

#include "ld.h"

struct db;      /* one connection */
struct db_stmt; /* a prepared statement the connection owns */

/* The engine behind a connection: the "db" string chooses it (db_open,
 * ld_is_conninfo). */
enum db_engine { DB_SQLITE = 1, DB_PG };
enum db_engine db_engine(const struct db *db);

/* The last error's message ("what: engine message"). */
const char *db_errmsg(const struct db *db);

/* Records an error of the caller's own ("invitee credited twice") as the
 * handle's message and returns e. */
enum ld_err db_error(struct db *db, enum ld_err e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Runs a statement that returns no row (an insert, update, delete or
 * upsert) to its end. */
enum ld_err db_exec(struct db *db, const char *sql, const char *what, const char *fmt, ...);

/* Rows the last db_exec changed (an upsert's DO NOTHING, or an update's
 * WHERE that matched nothing: 0). */
int64_t db_changes(struct db *db);

/* db_exec of an insert into a table whose key is "id"; *id gets the new
 * row's id. (A PostgreSQL backend adds RETURNING id here.) */
enum ld_err db_insert(struct db *db, const char *sql, const char *what, int64_t *id,
		      const char *fmt, ...);

/* A query of one integer: *v gets the first row's first column (0 when
 * there is no row or it is NULL); *found (may be NULL) whether a row
 * came. */
enum ld_err db_int(struct db *db, const char *sql, const char *what, int64_t *v, int *found,
		   const char *fmt, ...);

/*
 * A cursor over rows:
 *
 *	if ((e = db_query(db, &st, SQL, "tl", promo, after)) != LD_OK)
 *		return e;
 *	while (db_step(st) > 0)
 *		... db_col_int(st, 0), db_col_text(st, 1) ...
 *	if ((e = db_end(db, st, "cannot read draws")) != LD_OK)
 *		return e;
 *
 * db_query prepares (or finds) the statement and binds; on error *st is
 * NULL. db_step returns 1 with a row to read, 0 at the end, -1 on an
 * error, which db_end then returns. db_end resets the statement (call
 * it also when leaving early, after a row or on a refusal): it returns
 * LD_OK or the error of the last step, recorded with what.
 */
enum ld_err db_query(struct db *db, struct db_stmt **st, const char *sql, const char *fmt, ...);
int db_step(struct db_stmt *st);
enum ld_err db_end(struct db *db, struct db_stmt *st, const char *what);

/* The current row's columns. A NULL reads as 0 or NULL; db_col_null
 * tells. Text stays valid until the next db_step or db_end. */
int64_t db_col_int(struct db_stmt *st, int col);
const char *db_col_text(struct db_stmt *st, int col);
size_t db_col_len(struct db_stmt *st, int col); /* bytes of db_col_text */
int db_col_null(struct db_stmt *st, int col);

/*
 * Transactions. db_begin opens a write transaction that takes the write
 * lock at once (BEGIN IMMEDIATE: two writers queue on the busy timeout
 * instead of failing on a stale read snapshot); inside a group-commit
 * batch it opens a savepoint instead (ledger.h). db_rollback is safe
 * when nothing is open. db_read_begin/db_read_end hold one read snapshot
 * over several queries.
 */
enum ld_err db_begin(struct db *db);
enum ld_err db_commit(struct db *db);
void db_rollback(struct db *db);
enum ld_err db_read_begin(struct db *db);
void db_read_end(struct db *db);

/*
 * A pipeline (PostgreSQL only; db_can_pipe tells): one transaction whose
 * statements are all sent before any answer is read, so that many cost
 * one round trip to the server instead of one each.
 *
 *	db_pipe_begin(db);                   BEGIN
 *	db_pipe_send(db, SQL, "tl", a, b);   as often as needed (up to 500)
 *	db_pipe_commit(db);                  COMMIT, and everything is sent
 *	while (...) db_pipe_next(db, &st, what), then db_step/db_col_* on st
 *	db_pipe_end(db);                     LD_OK when it committed
 *
 * db_pipe_next gives the statements' rows back in the order they were
 * sent; st stays valid until the next db_pipe_next. When one statement
 * fails, the server rolls the transaction back: that db_pipe_next and
 * every later one fail, and db_pipe_end does not return LD_OK. db_pipe_end
 * is always called once db_pipe_begin succeeded.
 */
int db_can_pipe(const struct db *db);
enum ld_err db_pipe_begin(struct db *db);
enum ld_err db_pipe_send(struct db *db, const char *sql, const char *fmt, ...);
enum ld_err db_pipe_commit(struct db *db);
enum ld_err db_pipe_next(struct db *db, struct db_stmt **st, const char *what);
enum ld_err db_pipe_end(struct db *db);

/*
 * What only the SQLite backend does: opening a file with its pragmas,
 * WAL checkpoints and syncs, the writer's batch of savepoints, the
 * schema version (PRAGMA user_version) and migration scripts. They live
 * in db_sqlite.c and are called only from ledger.c, which presents them
 * to the programs (ledger.h documents each). A server backend answers
 * the checkpoint and sync calls with LD_OK and keeps the schema version
 * in a table.
 */
struct ledger_options;
enum ld_err db_open(const char *path, const struct ledger_options *opt, struct db **out, char *err,
		    size_t errlen);
void db_close(struct db *db);
enum ld_err db_checkpoint(struct db *db, int restart, int *frames);
enum ld_err db_sync(struct db *db);
int db_wal_frames(const struct db *db);
enum ld_err db_batch_begin(struct db *db, int savepoints);
int db_batch_intact(struct db *db);
int db_batch_spoiled(struct db *db);
enum ld_err db_batch_end(struct db *db, int commit);
enum ld_err db_schema_version(struct db *db, int *version);
enum ld_err db_set_schema_version(struct db *db, int version);
/* Runs a script of statements separated by ';' (no parameters, not
 * cached): migrations, and tests that set a database up. */
enum ld_err db_script(struct db *db, const char *sql, const char *what);

/*
 * An online copy of the whole database into the new file dest (SQLite
 * only: a server backend answers LD_ERR_INVALID, its own tools copy it).
 * The copy is of one instant, taken while the service writes: with
 * DB_BACKUP_API, SQLite's backup API in one step inside a read
 * transaction, in which the rows of each of the n tables are counted
 * too, into counts[i] (the copy must have as many); with
 * DB_BACKUP_VACUUM, VACUUM INTO (a compacted copy, which cannot run
 * inside a transaction: counts[i] get the rows before it began, and the
 * copy must have at least as many). The copy is left in rollback-journal
 * mode, one self-contained file, synced to disk.
 */
enum db_backup_method { DB_BACKUP_API = 0, DB_BACKUP_VACUUM };
enum ld_err db_backup(struct db *db, const char *dest, enum db_backup_method method,
		      const char *const *tables, size_t n, int64_t *counts);

/* PRAGMA integrity_check (SQLite; LD_OK elsewhere): LD_OK when it says
 * "ok", else LD_ERR_INVALID with its first finding as the message. */
enum ld_err db_integrity(struct db *db);

#endif
