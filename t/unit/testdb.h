/*
 * testdb.h - a real, migrated SQLite ledger in a fresh temporary directory
 * (under $TMPDIR, else /tmp) for the unit tests that need one, with a
 * promotion for those that run rules, and its removal (with its WAL,
 * shared-memory and writer socket files); and a database at an older
 * schema version, for the tests of migrations. Include after tap.h.
 */
#ifndef LD_TESTDB_H
#define LD_TESTDB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "ledger.h"

struct testdb {
	char dir[256];
	char path[300];
	struct ledger *ledger;
	struct promo *promo; /* testdb_open_promo's */
};

/* Creates the directory and the database; bails out of the test on error.
 * name becomes part of the directory's name. */
static TAP_UNUSED void testdb_open(struct testdb *t, const char *name)
{
	struct ledger_options lo = { .create = 1 };
	const char *tmp = getenv("TMPDIR");
	char err[256];

	t->promo = NULL;
	snprintf(t->dir, sizeof t->dir, "%s/ld-unit-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	if (!mkdtemp(t->dir))
		bail("cannot make a temporary directory");
	snprintf(t->path, sizeof t->path, "%s/t.db", t->dir);
	if (ledger_open(t->path, &lo, &t->ledger, err, sizeof err) != LD_OK)
		bail("%s", err);
	if (ledger_migrate(t->ledger, NULL, NULL) != LD_OK)
		bail("%s", ledger_errmsg(t->ledger));
}

/* testdb_open, and the promotion json into t->promo, with libsodium
 * ready: for the tests that run rules. */
static TAP_UNUSED void testdb_open_promo(struct testdb *t, const char *name, const char *json)
{
	char err[256];

	if (sodium_init() < 0)
		bail("cannot initialise libsodium");
	testdb_open(t, name);
	if (promo_parse(json, strlen(json), &t->promo, err, sizeof err) != LD_OK)
		bail("the promotion does not parse: %s", err);
}

/* A database at path made by migrations 1..version (0: an empty file),
 * with seed run in it (may be NULL): SQLite itself, not the ledger, as
 * an older program left it. */
static TAP_UNUSED void testdb_old(const char *path, int version, const char *seed)
{
	char sql[64];
	sqlite3 *h;

	if (sqlite3_open(path, &h) != SQLITE_OK)
		bail("cannot make '%s'", path);
	for (int i = 0; i < version; i++)
		if (ld_migrations[i].version != i + 1 ||
		    sqlite3_exec(h, ld_migrations[i].sql, NULL, NULL, NULL) != SQLITE_OK)
			bail("migration %d: %s", i + 1, sqlite3_errmsg(h));
	snprintf(sql, sizeof sql, "PRAGMA user_version=%d", version);
	if (sqlite3_exec(h, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    (seed && sqlite3_exec(h, seed, NULL, NULL, NULL) != SQLITE_OK))
		bail("version %d: %s", version, sqlite3_errmsg(h));
	sqlite3_close(h);
}

/* A connection of the test's own to the file at path, for looking at
 * SQLite itself (plans, the schema, rows as an older program left them). */
static TAP_UNUSED sqlite3 *testdb_raw(const char *path)
{
	sqlite3 *h;

	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		bail("cannot open '%s'", path);
	sqlite3_busy_timeout(h, 5000);
	return h;
}

/* The first column of sql's first row on h, as text into buf ("" when
 * there is none, or it is NULL). */
static TAP_UNUSED void testdb_text(sqlite3 *h, const char *sql, char *buf, size_t n)
{
	sqlite3_stmt *st;

	buf[0] = '\0';
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		bail("cannot prepare '%s': %s", sql, sqlite3_errmsg(h));
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(buf, n, "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

/* Closes the ledger and removes the database, its WAL files and the
 * directory. */
static TAP_UNUSED void testdb_remove(struct testdb *t)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-writer" };
	char path[320];

	promo_free(t->promo);
	t->promo = NULL;
	ledger_free(t->ledger);
	t->ledger = NULL;
	for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
		snprintf(path, sizeof path, "%s%s", t->path, suffix[i]);
		unlink(path);
	}
	rmdir(t->dir);
}

#endif
