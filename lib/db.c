/*
 * db.c - db.h's public functions: each forwards to the connection's
 * engine (db_engine.h). db_open chooses the engine from the "db" string.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "db_engine.h"

enum ld_err db_open(const char *path, const struct ledger_options *opt, struct db **out, char *err,
		    size_t errlen)
{
	return ld_is_conninfo(path) ? db_pg_open(path, opt, out, err, errlen)
				    : db_sqlite_open(path, opt, out, err, errlen);
}

enum db_engine db_engine(const struct db *db)
{
	return db->ops->engine;
}

const char *db_errmsg(const struct db *db)
{
	return db->err;
}

enum ld_err db_error(struct db *db, enum ld_err e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(db->err, sizeof db->err, fmt, ap);
	va_end(ap);
	return e;
}

enum ld_err db_exec(struct db *db, const char *sql, const char *what, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	enum ld_err e = db->ops->exec(db, sql, what, NULL, fmt, ap);
	va_end(ap);
	return e;
}

int64_t db_changes(struct db *db)
{
	return db->ops->changes(db);
}

enum ld_err db_insert(struct db *db, const char *sql, const char *what, int64_t *id,
		      const char *fmt, ...)
{
	va_list ap;

	*id = 0;
	va_start(ap, fmt);
	enum ld_err e = db->ops->exec(db, sql, what, id, fmt, ap);
	va_end(ap);
	return e;
}

enum ld_err db_int(struct db *db, const char *sql, const char *what, int64_t *v, int *found,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	enum ld_err e = db->ops->one_int(db, sql, what, v, found, fmt, ap);
	va_end(ap);
	return e;
}

enum ld_err db_query(struct db *db, struct db_stmt **st, const char *sql, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	enum ld_err e = db->ops->query(db, st, sql, fmt, ap);
	va_end(ap);
	return e;
}

int db_step(struct db_stmt *st)
{
	return st->ops->step(st);
}

enum ld_err db_end(struct db *db, struct db_stmt *st, const char *what)
{
	return db->ops->end(db, st, what);
}

int64_t db_col_int(struct db_stmt *st, int col)
{
	return st->ops->col_int(st, col);
}

const char *db_col_text(struct db_stmt *st, int col)
{
	return st->ops->col_text(st, col);
}

size_t db_col_len(struct db_stmt *st, int col)
{
	return st->ops->col_len(st, col);
}

int db_col_null(struct db_stmt *st, int col)
{
	return st->ops->col_null(st, col);
}

enum ld_err db_begin(struct db *db)
{
	return db->ops->begin(db);
}

enum ld_err db_commit(struct db *db)
{
	return db->ops->commit(db);
}

void db_rollback(struct db *db)
{
	db->ops->rollback(db);
}

enum ld_err db_read_begin(struct db *db)
{
	return db->ops->read_begin(db);
}

void db_read_end(struct db *db)
{
	db->ops->read_end(db);
}

void db_close(struct db *db)
{
	if (db)
		db->ops->close(db);
}

enum ld_err db_checkpoint(struct db *db, int restart, int *frames)
{
	return db->ops->checkpoint(db, restart, frames);
}

enum ld_err db_sync(struct db *db)
{
	return db->ops->sync(db);
}

int db_wal_frames(const struct db *db)
{
	return db->ops->wal_frames(db);
}

enum ld_err db_batch_begin(struct db *db, int savepoints)
{
	return db->ops->batch_begin(db, savepoints);
}

int db_batch_intact(struct db *db)
{
	return db->ops->batch_intact(db);
}

int db_batch_spoiled(struct db *db)
{
	return db->ops->batch_spoiled(db);
}

enum ld_err db_batch_end(struct db *db, int commit)
{
	return db->ops->batch_end(db, commit);
}

enum ld_err db_schema_version(struct db *db, int *version)
{
	return db->ops->schema_version(db, version);
}

enum ld_err db_set_schema_version(struct db *db, int version)
{
	return db->ops->set_schema_version(db, version);
}

enum ld_err db_script(struct db *db, const char *sql, const char *what)
{
	return db->ops->script(db, sql, what);
}

enum ld_err db_backup(struct db *db, const char *dest, enum db_backup_method method,
		      const char *const *tables, size_t n, int64_t *counts)
{
	return db->ops->backup(db, dest, method, tables, n, counts);
}

enum ld_err db_integrity(struct db *db)
{
	return db->ops->integrity(db);
}

int db_can_pipe(const struct db *db)
{
	return db->ops->pipe_begin != NULL;
}

enum ld_err db_pipe_begin(struct db *db)
{
	if (!db->ops->pipe_begin)
		return db_error(db, LD_ERR_INVALID, "this database has no pipeline");
	return db->ops->pipe_begin(db);
}

enum ld_err db_pipe_send(struct db *db, const char *sql, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	enum ld_err e = db->ops->pipe_send(db, sql, fmt, ap);
	va_end(ap);
	return e;
}

enum ld_err db_pipe_commit(struct db *db)
{
	return db->ops->pipe_commit(db);
}

enum ld_err db_pipe_next(struct db *db, struct db_stmt **st, const char *what)
{
	return db->ops->pipe_next(db, st, what);
}

enum ld_err db_pipe_end(struct db *db)
{
	return db->ops->pipe_end(db);
}
