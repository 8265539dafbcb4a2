/*
 * t/unit/db.c - the statement layer (lib/db.h) on a real SQLite file:
 * every kind of bind and NULL, columns, rows changed and the id of the
 * row just inserted, a format that does not match its statement, errors
 * with the engine's words kept on the handle, a busy database, cached
 * statements found again and reset (no read snapshot left behind),
 * transactions and the schema version.
 */
#include <string.h>

#include "db.h"
#include "../tap.h"
#include "testdb.h"

static struct db *db;

static const char SQL_ADD[] = "INSERT INTO t (k, s, n) VALUES (?1, ?2, ?3)";
static const char SQL_GET[] = "SELECT s, n FROM t WHERE k = ?1";
static const char SQL_ALL[] = "SELECT k FROM t ORDER BY k";
static const char SQL_N[] = "SELECT n FROM t WHERE k = ?1";

/* Reads row k: s into buf ("(null)" for NULL), n into *n (-1 for NULL). */
static void get(const char *k, char buf[32], int64_t *n)
{
	struct db_stmt *st;

	strcpy(buf, "(none)");
	*n = -2;
	if (db_query(db, &st, SQL_GET, "t", k) != LD_OK)
		bail("%s", db_errmsg(db));
	if (db_step(st) > 0) {
		snprintf(buf, 32, "%s", db_col_null(st, 0) ? "(null)" : db_col_text(st, 0));
		*n = db_col_null(st, 1) ? -1 : db_col_int(st, 1);
	}
	if (db_end(db, st, "cannot read t") != LD_OK)
		bail("%s", db_errmsg(db));
}

static void test_binds(void)
{
	int64_t big = INT64_MAX - 7, n, id1, id2;
	char s[32];

	is_int(db_exec(db, SQL_ADD, "cannot add", "tti", "a", "text", 42), LD_OK, "'t' and 'i'");
	is_int(db_exec(db, SQL_ADD, "cannot add", "ttl", "b", NULL, big), LD_OK,
	       "a NULL text and an int64");
	is_int(db_exec(db, SQL_ADD, "cannot add", "ttL", "c", "x", NULL), LD_OK, "'L' NULL");
	is_int(db_exec(db, SQL_ADD, "cannot add", "ttL", "d", "é ü", &big), LD_OK, "'L' a value");
	get("a", s, &n);
	ok(strcmp(s, "text") == 0 && n == 42, "text and int read back (%s, %lld)", s, (long long)n);
	get("b", s, &n);
	ok(strcmp(s, "(null)") == 0 && n == big, "NULL text reads as NULL, int64 exact");
	get("c", s, &n);
	is_int(n, -1, "'L' NULL reads as NULL");
	get("d", s, &n);
	ok(strcmp(s, "é ü") == 0 && n == big, "UTF-8 text and 'L' read back");
	get("zz", s, &n);
	is_string(s, "(none)", "no row: the cursor ends at once");

	ok(db_insert(db, SQL_ADD, "cannot add", &id1, "tti", "e", "", 0) == LD_OK &&
		   db_insert(db, SQL_ADD, "cannot add", &id2, "tti", "f", "", 0) == LD_OK,
	   "db_insert");
	ok(id1 == 5 && id2 == 6, "gives each new row's id (%lld, %lld)", (long long)id1,
	   (long long)id2);
	is_int(db_exec(db, "UPDATE t SET n = n + 1 WHERE n = ?1", "cannot update", "i", 0), LD_OK,
	       "an update");
	is_int(db_changes(db), 2, "db_changes: the two rows it changed");
	is_int(db_exec(db, "INSERT INTO t (k, s, n) VALUES (?1, ?2, ?3) ON CONFLICT (k) DO NOTHING",
		       "cannot add", "tti", "a", "again", 1),
	       LD_OK, "DO NOTHING on a duplicate");
	is_int(db_changes(db), 0, "db_changes: nothing");

	int found = -1;
	is_int(db_int(db, SQL_N, "cannot read", &n, &found, "t", "a"), LD_OK, "db_int");
	ok(n == 42 && found == 1, "one integer, found");
	is_int(db_int(db, SQL_N, "cannot read", &n, &found, "t", "nobody"), LD_OK,
	       "db_int, no row");
	ok(n == 0 && found == 0, "0, not found");
	is_int(db_int(db, SQL_N, "cannot read", &n, NULL, "t", "c"), LD_OK, "db_int of a NULL");
	is_int(n, 0, "reads 0");
}

static void test_format(void)
{
	int64_t n;

	is_int(db_exec(db, SQL_ADD, "cannot add", "tt", "g", "x"), LD_ERR_INVALID,
	       "too few binds: an error");
	ok(strstr(db_errmsg(db), "2 parameters bound ('tt'), the statement has 3") != NULL,
	   "the message names the count and the statement: %s", db_errmsg(db));
	is_int(db_exec(db, SQL_ADD, "cannot add", "ttii", "g", "x", 1, 2), LD_ERR_INVALID,
	       "too many binds: an error");
	is_int(db_exec(db, SQL_ADD, "cannot add", "ttx", "g", "x", 1), LD_ERR_INVALID,
	       "an unknown letter: an error");
	ok(strstr(db_errmsg(db), "bad bind format 'ttx'") != NULL, "named: %s", db_errmsg(db));
	db_int(db, "SELECT count(*) FROM t WHERE k = 'g'", "cannot count", &n, NULL, "");
	is_int(n, 0, "and nothing was written");
}

static void test_errors(void)
{
	static const char SQL_BAD[] = "SELEKT 1";
	struct db_stmt *st;
	enum ld_err e;

	e = db_exec(db, SQL_ADD, "cannot record thing", "tti", "a", "dup", 1);
	is_int(e, LD_ERR_DB, "a UNIQUE violation is LD_ERR_DB");
	is_string(db_errmsg(db), "cannot record thing: UNIQUE constraint failed: t.k",
		  "what, then SQLite's own words");
	e = db_exec(db, "UPDATE t SET n = -1 WHERE k = ?1", "cannot update thing", "t", "a");
	is_string(db_errmsg(db), "cannot update thing: CHECK constraint failed: n >= 0",
		  "a CHECK violation names the check");
	is_int(db_query(db, &st, SQL_BAD, ""), LD_ERR_DB, "a statement that does not parse");
	ok(st == NULL &&
		   strncmp(db_errmsg(db), "cannot prepare statement: near \"SELEKT\"", 38) == 0,
	   "no cursor, and the parser's message: %s", db_errmsg(db));
	is_int(db_error(db, LD_ERR_INVALID, "own %s", "words"), LD_ERR_INVALID,
	       "db_error returns e");
	is_string(db_errmsg(db), "own words", "and keeps the message");
	/* a failing step reported by db_end */
	if (db_query(db, &st, "SELECT abs(?1)", "l", INT64_MIN) != LD_OK)
		bail("%s", db_errmsg(db));
	is_int(db_step(st), -1, "a step that fails: -1");
	is_int(db_end(db, st, "cannot take abs"), LD_ERR_DB, "db_end returns its error");
	is_string(db_errmsg(db), "cannot take abs: integer overflow", "with its message");
}

/* Another connection holds the write lock: a write waits out the busy
 * timeout and fails with LD_ERR_BUSY. */
static void test_busy(const char *path)
{
	struct ledger_options lo = { .busy_timeout_ms = 50 };
	struct ledger *other;
	char err[256];
	int64_t t0;
	enum ld_err e;

	if (ledger_open(path, &lo, &other, err, sizeof err) != LD_OK)
		bail("%s", err);
	if (db_begin(ledger_db(other)) != LD_OK)
		bail("%s", ledger_errmsg(other));
	t0 = ld_mono_us();
	e = db_begin(db);
	is_int(e, LD_ERR_BUSY, "a second writer: LD_ERR_BUSY");
	ok(ld_mono_us() - t0 >= 20000, "after waiting");
	ok(strstr(db_errmsg(db), "database is locked") != NULL, "message: %s", db_errmsg(db));
	db_rollback(ledger_db(other));
	ledger_free(other);
}

/* Statements are cached and reset: a cursor left mid-way (an early
 * return that forgot db_end) starts over on its next use, and db_end
 * leaves no read snapshot behind (another connection's RESTART
 * checkpoint, which waits for every reader, gets through). */
static void test_cache(const char *path)
{
	struct ledger_options lo = { .busy_timeout_ms = 50 };
	struct db_stmt *a, *b;
	struct ledger *other;
	char err[256], k1[8];

	if (db_query(db, &a, SQL_ALL, "") != LD_OK || db_step(a) <= 0 || db_step(a) <= 0)
		bail("%s", db_errmsg(db));
	if (db_query(db, &b, SQL_ALL, "") != LD_OK)
		bail("%s", db_errmsg(db));
	ok(a == b, "the same SQL finds the same prepared statement");
	ok(db_step(b) > 0, "a row");
	snprintf(k1, sizeof k1, "%s", db_col_text(b, 0));
	is_string(k1, "a", "the reused cursor starts from the first row");
	is_int(db_end(db, b, "cannot list"), LD_OK, "db_end");

	if (ledger_open(path, &lo, &other, err, sizeof err) != LD_OK)
		bail("%s", err);
	if (db_exec(ledger_db(other), SQL_ADD, "cannot add", "tti", "h", "", 1) != LD_OK)
		bail("%s", ledger_errmsg(other));
	if (db_query(db, &a, SQL_ALL, "") != LD_OK || db_step(a) <= 0)
		bail("%s", db_errmsg(db));
	is_int(ledger_checkpoint(other, 1, NULL), LD_ERR_BUSY,
	       "a cursor mid-way holds a snapshot: the RESTART waits for it");
	db_end(db, a, "cannot list");
	is_int(ledger_checkpoint(other, 1, NULL), LD_OK, "after db_end it does not");
	ledger_free(other);
}

static void test_transactions(void)
{
	int64_t n;

	is_int(db_begin(db), LD_OK, "begin");
	db_exec(db, SQL_ADD, "cannot add", "tti", "tx1", "", 1);
	db_rollback(db);
	db_int(db, "SELECT count(*) FROM t WHERE k = 'tx1'", "cannot count", &n, NULL, "");
	is_int(n, 0, "rolled back: gone");
	db_rollback(db);
	ok(1, "a rollback with nothing open is harmless");
	db_begin(db);
	db_exec(db, SQL_ADD, "cannot add", "tti", "tx2", "", 1);
	is_int(db_commit(db), LD_OK, "commit");
	db_int(db, "SELECT count(*) FROM t WHERE k = 'tx2'", "cannot count", &n, NULL, "");
	is_int(n, 1, "committed: kept");
	is_int(db_read_begin(db), LD_OK, "a read snapshot");
	db_read_end(db);
	is_int(db_begin(db), LD_OK, "and a write after it");
	db_rollback(db);
}

static void test_schema_version(void)
{
	int v = -1, want = ld_migrations[ld_nmigrations - 1].version;

	is_int(db_schema_version(db, &v), LD_OK, "schema version");
	is_int(v, want, "the migrated database is at the last migration");
	is_int(db_set_schema_version(db, want + 5), LD_OK, "set");
	db_schema_version(db, &v);
	is_int(v, want + 5, "read back");
	db_set_schema_version(db, want);
}

int main(void)
{
	struct testdb t;

	testdb_open(&t, "db");
	db = ledger_db(t.ledger);
	if (db_script(db,
		      "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE,"
		      " s TEXT, n INTEGER CHECK (n >= 0))",
		      "cannot create t") != LD_OK)
		bail("%s", db_errmsg(db));
	test_binds();
	test_format();
	test_errors();
	test_busy(t.path);
	test_cache(t.path);
	test_transactions();
	test_schema_version();
	testdb_remove(&t);
	return done_testing();
}
