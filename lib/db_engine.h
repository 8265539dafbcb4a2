/*
 * db_engine.h - what a database engine implements for db.h (private to
 * lib/db*.c). db.c holds the public functions: each forwards to the
 * connection's engine through struct db_ops. db_sqlite.c and db_pg.c
 * each define one table and an open function; their connection and
 * statement structs begin with struct db and struct db_stmt.
 */
#ifndef LD_DB_ENGINE_H
#define LD_DB_ENGINE_H

#include <stdarg.h>

#include "db.h"

struct db_ops {
	enum db_engine engine;
	/* id NULL: db_exec; else db_insert */
	enum ld_err (*exec)(struct db *db, const char *sql, const char *what, int64_t *id,
			    const char *fmt, va_list ap);
	int64_t (*changes)(struct db *db);
	enum ld_err (*one_int)(struct db *db, const char *sql, const char *what, int64_t *v,
			       int *found, const char *fmt, va_list ap);
	enum ld_err (*query)(struct db *db, struct db_stmt **st, const char *sql, const char *fmt,
			     va_list ap);
	int (*step)(struct db_stmt *st);
	enum ld_err (*end)(struct db *db, struct db_stmt *st, const char *what);
	int64_t (*col_int)(struct db_stmt *st, int col);
	const char *(*col_text)(struct db_stmt *st, int col);
	size_t (*col_len)(struct db_stmt *st, int col);
	int (*col_null)(struct db_stmt *st, int col);
	enum ld_err (*begin)(struct db *db);
	enum ld_err (*commit)(struct db *db);
	void (*rollback)(struct db *db);
	enum ld_err (*read_begin)(struct db *db);
	void (*read_end)(struct db *db);
	void (*close)(struct db *db);
	enum ld_err (*checkpoint)(struct db *db, int restart, int *frames);
	enum ld_err (*sync)(struct db *db);
	int (*wal_frames)(const struct db *db);
	enum ld_err (*batch_begin)(struct db *db, int savepoints);
	int (*batch_intact)(struct db *db);
	int (*batch_spoiled)(struct db *db);
	enum ld_err (*batch_end)(struct db *db, int commit);
	enum ld_err (*schema_version)(struct db *db, int *version);
	enum ld_err (*set_schema_version)(struct db *db, int version);
	enum ld_err (*script)(struct db *db, const char *sql, const char *what);
	enum ld_err (*backup)(struct db *db, const char *dest, enum db_backup_method method,
			      const char *const *tables, size_t n, int64_t *counts);
	enum ld_err (*integrity)(struct db *db);
	/* a pipeline: NULL on an engine without round trips to save */
	enum ld_err (*pipe_begin)(struct db *db);
	enum ld_err (*pipe_send)(struct db *db, const char *sql, const char *fmt, va_list ap);
	enum ld_err (*pipe_commit)(struct db *db);
	enum ld_err (*pipe_next)(struct db *db, struct db_stmt **st, const char *what);
	enum ld_err (*pipe_end)(struct db *db);
};

/* The part of every connection db.c knows. */
struct db {
	const struct db_ops *ops;
	char err[512]; /* the last error's message */
};

/* The part of every statement db.c knows. */
struct db_stmt {
	const struct db_ops *ops;
};

enum ld_err db_sqlite_open(const char *path, const struct ledger_options *opt, struct db **out,
			   char *err, size_t errlen);
enum ld_err db_pg_open(const char *conninfo, const struct ledger_options *opt, struct db **out,
		       char *err, size_t errlen);

#endif
