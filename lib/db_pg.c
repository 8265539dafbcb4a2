/*
 * db_pg.c - db.h on PostgreSQL (libpq): a connection found through a
 * libpq connection string (multi-host strings included), statements
 * prepared once per connection and cached by the address of their SQL
 * text, binds sent as text, rows read from the result, transactions and
 * the writer's batches of savepoints, the schema version in a table.
 *
 * A lost connection (the server restarted, a standby was promoted and
 * this one is read-only, the network) is LD_ERR_BUSY for the call that
 * met it: the HTTP layer answers 503 with Retry-After and nothing was
 * acknowledged. The next call outside a transaction connects again,
 * at most ten times a second, and the connection string's
 * target_session_attrs finds the primary among its hosts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlfcn.h>
#include <libpq-fe.h>

#include "db_engine.h"
#include "ledger.h"

/*
 * libpq is opened when a program first connects to PostgreSQL (dlopen),
 * not linked: a program whose ledger is SQLite never maps it, nor the
 * dozen libraries it brings (Kerberos, LDAP, TLS): about 1 MB less in
 * every process. The calls below go through these pointers.
 */
#define LIBPQ_FUNCTIONS(X)     \
	X(PQclear)             \
	X(PQcmdStatus)         \
	X(PQcmdTuples)         \
	X(PQconnectdbParams)   \
	X(PQenterPipelineMode) \
	X(PQerrorMessage)      \
	X(PQexec)              \
	X(PQexecPrepared)      \
	X(PQexitPipelineMode)  \
	X(PQfinish)            \
	X(PQgetResult)         \
	X(PQgetisnull)         \
	X(PQgetlength)         \
	X(PQgetvalue)          \
	X(PQnfields)           \
	X(PQntuples)           \
	X(PQpipelineSync)      \
	X(PQprepare)           \
	X(PQresultErrorField)  \
	X(PQresultStatus)      \
	X(PQsendPrepare)       \
	X(PQsendQueryParams)   \
	X(PQsendQueryPrepared) \
	X(PQstatus)            \
	X(PQtransactionStatus)
static struct {
#define X(f) __typeof__(f) *f;
	LIBPQ_FUNCTIONS(X)
#undef X
} libpq;

/* Loads libpq once; -1 with the reason in err. */
static int libpq_load(char *err, size_t errlen)
{
	static int loaded;
	void *h;

	if (loaded)
		return 0;
	if (!(h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL))) {
		snprintf(err, errlen, "cannot load libpq (Debian package libpq5): %s", dlerror());
		return -1;
	}
#define X(f)                                                                      \
	if (!(*(void **)&libpq.f = dlsym(h, #f))) {                               \
		snprintf(err, errlen, "cannot load libpq: no function '%s'", #f); \
		dlclose(h);                                                       \
		return -1;                                                        \
	}
	LIBPQ_FUNCTIONS(X)
#undef X
	loaded = 1; /* h stays open for the process's life */
	return 0;
}

#define PQclear             libpq.PQclear
#define PQcmdStatus         libpq.PQcmdStatus
#define PQcmdTuples         libpq.PQcmdTuples
#define PQconnectdbParams   libpq.PQconnectdbParams
#define PQenterPipelineMode libpq.PQenterPipelineMode
#define PQerrorMessage      libpq.PQerrorMessage
#define PQexec              libpq.PQexec
#define PQexecPrepared      libpq.PQexecPrepared
#define PQexitPipelineMode  libpq.PQexitPipelineMode
#define PQfinish            libpq.PQfinish
#define PQgetResult         libpq.PQgetResult
#define PQgetisnull         libpq.PQgetisnull
#define PQgetlength         libpq.PQgetlength
#define PQgetvalue          libpq.PQgetvalue
#define PQnfields           libpq.PQnfields
#define PQntuples           libpq.PQntuples
#define PQpipelineSync      libpq.PQpipelineSync
#define PQprepare           libpq.PQprepare
#define PQresultErrorField  libpq.PQresultErrorField
#define PQresultStatus      libpq.PQresultStatus
#define PQsendPrepare       libpq.PQsendPrepare
#define PQsendQueryParams   libpq.PQsendQueryParams
#define PQsendQueryPrepared libpq.PQsendQueryPrepared
#define PQstatus            libpq.PQstatus
#define PQtransactionStatus libpq.PQtransactionStatus

#define STMT_MAX            128
#define PARAM_MAX           32
#define PIPE_MAX            512 /* statements in one pipeline */

struct pg_stmt {
	struct db_stmt base; /* first: what db.c knows */
	const char *sql;     /* the key, by address */
	int returning;       /* prepared with " RETURNING id" (db_insert) */
	int nparams;
	unsigned generation; /* the connection it was prepared on */
	PGresult *res;       /* the rows of the open cursor */
	int row, nrows;
};

struct pg {
	struct db base; /* first: what db.c knows */
	PGconn *conn;
	char *conninfo;
	unsigned generation; /* counts connections made */
	int64_t next_try_us; /* no connection: the next attempt, not before */
	int statement_timeout_ms;
	struct pg_stmt stmts[STMT_MAX];
	size_t nstmts;
	int64_t changes;
	int in_tx; /* a transaction is open (BEGIN sent) */
	int batch, savepoints, in_savepoint, spoiled, batch_failed;
	/* binds: text values, their buffers for numbers */
	const char *values[PARAM_MAX];
	char nums[PARAM_MAX][24];
	/* a pipeline (db_pipe_*): what was sent, in order, and how much of
	 * it has been read back; an entry is a statement's execution, or
	 * NULL for a statement read back inside (PREPARE, BEGIN, COMMIT) */
	int piping;
	struct pg_stmt *sent[PIPE_MAX];
	int nsent, nread;
	int pipe_failed; /* a statement failed: the transaction is gone */
};

#define PG(d)  ((struct pg *)(d))
#define PST(s) ((struct pg_stmt *)(s))

/* ---- errors ---- */

/* Whether an SQLSTATE says "try again": the transaction lost to another
 * (serialization failure, deadlock), a lock or statement timeout, or the
 * server going away or being read-only (a standby, or one being
 * promoted). */
static int transient(const char *state)
{
	static const char *const codes[] = {
		"40001", "40P01", "55P03", "57014", "57P01",
		"57P02", "57P03", "25006", "53300", /* too many connections */
	};

	if (!state)
		return 0;
	if (strncmp(state, "08", 2) == 0) /* connection exceptions */
		return 1;
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		if (strcmp(state, codes[i]) == 0)
			return 1;
	return 0;
}

/* Whether the connection is to be dropped and made again: it broke, or
 * it is to a server that cannot take writes (a standby). */
static int reconnect_after(const char *state)
{
	return state &&
		(strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
		 strcmp(state, "25006") == 0);
}

static void drop_connection(struct pg *p)
{
	PQfinish(p->conn);
	p->conn = NULL;
	p->in_tx = 0;
	p->next_try_us = 0;
}

/* Records "what: message" for a failed result (res may be NULL: the
 * connection's error) and maps it to an ld_err; drops a broken
 * connection. */
static enum ld_err fail(struct pg *p, const PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	int lost = !p->conn || PQstatus(p->conn) != CONNECTION_OK || reconnect_after(state);

	if (!msg)
		msg = p->conn ? PQerrorMessage(p->conn) : "not connected";
	snprintf(p->base.err, sizeof p->base.err, "%s: %.*s", what, (int)strcspn(msg, "\n"), msg);
	ld_db_scrub(p->conninfo, p->base.err);
	if (lost)
		drop_connection(p);
	if (lost || transient(state))
		return LD_ERR_BUSY;
	if (state && strcmp(state, "53200") == 0)
		return LD_ERR_NOMEM;
	return LD_ERR_DB;
}

/* ---- the connection ---- */

static enum ld_err run_simple(struct pg *p, const char *sql, const char *what);

/* Makes the connection when there is none (outside a transaction only,
 * and at most every 100 ms while the server is unreachable). */
static enum ld_err connected(struct pg *p)
{
	static const char *const keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *vals[] = { "3", "luckydice", p->conninfo, NULL };
	int64_t now = ld_mono_us();
	char sql[64];

	if (p->conn)
		return LD_OK;
	if (now < p->next_try_us)
		return db_error(&p->base, LD_ERR_BUSY,
				"no connection to the database:"
				" trying again shortly");
	p->next_try_us = now + 100 * 1000;
	p->conn = PQconnectdbParams(keys, vals, 1);
	if (!p->conn || PQstatus(p->conn) != CONNECTION_OK) {
		const char *m = p->conn ? PQerrorMessage(p->conn) : "out of memory";
		snprintf(p->base.err, sizeof p->base.err, "cannot connect to the database: %.*s",
			 (int)strcspn(m, "\n"), m);
		ld_db_scrub(p->conninfo, p->base.err);
		PQfinish(p->conn);
		p->conn = NULL;
		return LD_ERR_BUSY;
	}
	p->generation++;
	snprintf(sql, sizeof sql, "SET statement_timeout = %d", p->statement_timeout_ms);
	return run_simple(p, sql, "cannot set the statement timeout");
}

/* Runs sql with the simple protocol (no parameters; several statements
 * allowed). */
static enum ld_err run_simple(struct pg *p, const char *sql, const char *what)
{
	enum ld_err e;
	PGresult *res;

	if (!p->conn && (e = connected(p)) != LD_OK)
		return e;
	res = PQexec(p->conn, sql);
	ExecStatusType s = PQresultStatus(res);
	e = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? LD_OK : fail(p, res, what);
	PQclear(res);
	return e;
}

/* ---- statements ---- */

/* sql with ?N made $N (outside quotes), SQLite's "INDEXED BY name"
 * (an index hint PostgreSQL's planner does without) left out, and
 * " RETURNING id" when asked; *nparams gets the highest N. The caller
 * frees the result. */
static char *to_pg(const char *sql, int returning, int *nparams)
{
	size_t n = strlen(sql);
	char *out = xmalloc(n + 16), *o = out;
	char quote = 0;

	*nparams = 0;
	for (const char *s = sql; *s; s++) {
		if (quote) {
			if (*s == quote)
				quote = 0;
		} else if (*s == '\'' || *s == '"') {
			quote = *s;
		} else if (strncmp(s, " INDEXED BY ", 12) == 0) {
			s += 12;
			while (s[1] == '_' || (s[1] >= 'a' && s[1] <= 'z') ||
			       (s[1] >= '0' && s[1] <= '9'))
				s++;
			continue;
		} else if (*s == '?' && s[1] >= '0' && s[1] <= '9') {
			int v = atoi(s + 1);
			if (v > *nparams)
				*nparams = v;
			*o++ = '$';
			continue;
		}
		*o++ = *s;
	}
	*o = '\0';
	if (returning)
		strcpy(o, " RETURNING id");
	return out;
}

/* The cached statement for sql, prepared on this connection. */
/* The type of each parameter, from the bind format: the server then
 * never has to guess one (it cannot from "?3 IS NULL" alone). */
static void param_types(const char *fmt, Oid *types, int n)
{
	for (int i = 0; i < n; i++) {
		char c = i < (int)strlen(fmt) ? fmt[i] : 't';
		types[i] = c == 'i' ? 23 /* int4 */ : c == 't' ? 25 /* text */ : 20 /* int8 */;
	}
}

static struct pg_stmt *cached(struct pg *p, const char *sql, int returning, const char *fmt,
			      enum ld_err *e)
{
	struct pg_stmt *st = NULL;
	char name[16];

	if ((*e = connected(p)) != LD_OK)
		return NULL;
	for (size_t i = 0; i < p->nstmts && !st; i++)
		if (p->stmts[i].sql == sql && p->stmts[i].returning == returning)
			st = &p->stmts[i];
	if (!st) {
		if (p->nstmts == STMT_MAX) {
			*e = db_error(&p->base, LD_ERR_DB, "cannot prepare statement: more than %d",
				      STMT_MAX);
			return NULL;
		}
		st = &p->stmts[p->nstmts++];
		st->base.ops = p->base.ops;
		st->sql = sql;
		st->returning = returning;
		st->generation = 0;
	}
	PQclear(st->res); /* a cursor left open by an early return */
	st->res = NULL;
	if (st->generation == p->generation)
		return st;
	char *text = to_pg(sql, returning, &st->nparams);
	snprintf(name, sizeof name, "s%d", (int)(st - p->stmts));
	Oid types[PARAM_MAX];
	int n = st->nparams < PARAM_MAX ? st->nparams : PARAM_MAX;
	param_types(fmt, types, n);
	PGresult *res = PQprepare(p->conn, name, text, n, types);
	free(text);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		*e = fail(p, res, "cannot prepare statement");
		PQclear(res);
		return NULL;
	}
	PQclear(res);
	st->generation = p->generation;
	return st;
}

/* Binds fmt's values as text into p->values (see db.h). */
static enum ld_err bind(struct pg *p, struct pg_stmt *st, const char *fmt, va_list ap)
{
	int n = (int)strlen(fmt);

	if (n != st->nparams || n > PARAM_MAX)
		return db_error(&p->base, LD_ERR_INVALID,
				"%d parameters bound ('%s'), the statement has %d: %s", n, fmt,
				st->nparams, st->sql);
	for (int i = 0; i < n; i++) {
		const int64_t *v;

		switch (fmt[i]) {
		case 't': p->values[i] = va_arg(ap, const char *); break;
		case 'i':
			snprintf(p->nums[i], sizeof p->nums[i], "%d", va_arg(ap, int));
			p->values[i] = p->nums[i];
			break;
		case 'l':
			snprintf(p->nums[i], sizeof p->nums[i], "%lld",
				 (long long)va_arg(ap, int64_t));
			p->values[i] = p->nums[i];
			break;
		case 'L':
			v = va_arg(ap, const int64_t *);
			if (v)
				snprintf(p->nums[i], sizeof p->nums[i], "%lld", (long long)*v);
			p->values[i] = v ? p->nums[i] : NULL;
			break;
		default:
			return db_error(&p->base, LD_ERR_INVALID, "bad bind format '%s' for: %s",
					fmt, st->sql);
		}
	}
	return LD_OK;
}

/* Prepares (or finds), binds and runs: st->res gets the rows. */
static enum ld_err execute(struct pg *p, const char *sql, int returning, const char *what,
			   const char *fmt, va_list ap, struct pg_stmt **out)
{
	enum ld_err e;
	struct pg_stmt *st = cached(p, sql, returning, fmt, &e);
	char name[16];

	*out = NULL;
	if (!st)
		return e;
	if ((e = bind(p, st, fmt, ap)) != LD_OK)
		return e;
	snprintf(name, sizeof name, "s%d", (int)(st - p->stmts));
	st->res = PQexecPrepared(p->conn, name, st->nparams, p->values, NULL, NULL, 0);
	ExecStatusType s = PQresultStatus(st->res);
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		e = fail(p, st->res, what);
		PQclear(st->res);
		st->res = NULL;
		return e;
	}
	const char *t = PQcmdTuples(st->res);
	p->changes = *t ? atoll(t) : 0;
	st->row = -1;
	st->nrows = PQntuples(st->res);
	*out = st;
	return LD_OK;
}

static void finish(struct pg_stmt *st)
{
	if (st) {
		PQclear(st->res);
		st->res = NULL;
	}
}

/* db_exec, and with id db_insert (RETURNING id). */
static enum ld_err pg_exec(struct db *db, const char *sql, const char *what, int64_t *id,
			   const char *fmt, va_list ap)
{
	struct pg_stmt *st;
	enum ld_err e = execute(PG(db), sql, id != NULL, what, fmt, ap, &st);

	if (id)
		*id = e == LD_OK && st->nrows > 0 ? atoll(PQgetvalue(st->res, 0, 0)) : 0;
	finish(st);
	return e;
}

static int64_t pg_changes(struct db *db)
{
	return PG(db)->changes;
}

static int64_t value_int(const PGresult *res, int row, int col)
{
	const char *v = PQgetvalue(res, row, col);

	if (PQgetisnull(res, row, col))
		return 0;
	if (v[0] == 't' && v[1] == '\0') /* a boolean */
		return 1;
	if (v[0] == 'f' && v[1] == '\0')
		return 0;
	return strtoll(v, NULL, 10);
}

static enum ld_err pg_int(struct db *db, const char *sql, const char *what, int64_t *v, int *found,
			  const char *fmt, va_list ap)
{
	struct pg_stmt *st;
	enum ld_err e = execute(PG(db), sql, 0, what, fmt, ap, &st);

	*v = 0;
	if (found)
		*found = e == LD_OK && st->nrows > 0;
	if (e == LD_OK && st->nrows > 0 && PQnfields(st->res) > 0)
		*v = value_int(st->res, 0, 0);
	finish(st);
	return e;
}

static enum ld_err pg_query(struct db *db, struct db_stmt **out, const char *sql, const char *fmt,
			    va_list ap)
{
	struct pg_stmt *st;
	enum ld_err e = execute(PG(db), sql, 0, "cannot query", fmt, ap, &st);

	*out = st ? &st->base : NULL;
	return e;
}

static int pg_step(struct db_stmt *s)
{
	struct pg_stmt *st = PST(s);

	if (!st->res)
		return 0;
	return ++st->row < st->nrows ? 1 : 0;
}

static enum ld_err pg_end(struct db *db, struct db_stmt *s, const char *what)
{
	(void)db;
	(void)what;
	finish(PST(s));
	return LD_OK;
}

static int64_t pg_col_int(struct db_stmt *s, int col)
{
	return value_int(PST(s)->res, PST(s)->row, col);
}

static const char *pg_col_text(struct db_stmt *s, int col)
{
	struct pg_stmt *st = PST(s);

	return PQgetisnull(st->res, st->row, col) ? NULL : PQgetvalue(st->res, st->row, col);
}

static size_t pg_col_len(struct db_stmt *s, int col)
{
	return (size_t)PQgetlength(PST(s)->res, PST(s)->row, col);
}

static int pg_col_null(struct db_stmt *s, int col)
{
	return PQgetisnull(PST(s)->res, PST(s)->row, col);
}

/* ---- transactions ---- */

/*
 * Outside a batch: BEGIN .. COMMIT, READ COMMITTED. Each rule is one
 * function call whose statements are each atomic (conditional updates,
 * upserts) and backed by a unique index; what a concurrent transaction
 * on another host does first makes ours wait for its commit and then
 * see it, or fail on the unique index (LD_ERR_DB; run again, the rule
 * then sees the other's row and refuses or replays).
 */
static enum ld_err pg_begin(struct db *db)
{
	struct pg *p = PG(db);
	enum ld_err e;

	if (!p->batch) {
		if ((e = run_simple(p, "BEGIN", "cannot begin transaction")) == LD_OK)
			p->in_tx = 1;
		return e;
	}
	if (!p->conn || PQtransactionStatus(p->conn) != PQTRANS_INTRANS)
		return db_error(db, LD_ERR_DB, "the batch's transaction was rolled back");
	if (!p->savepoints)
		return LD_OK;
	e = run_simple(p, "SAVEPOINT rule", "cannot begin savepoint");
	p->in_savepoint = e == LD_OK;
	return e;
}

static void rollback_tx(struct pg *p)
{
	if (p->conn && PQtransactionStatus(p->conn) != PQTRANS_IDLE) {
		PGresult *res = PQexec(p->conn, "ROLLBACK");
		PQclear(res);
	}
	p->in_tx = 0;
}

static enum ld_err pg_commit(struct db *db)
{
	struct pg *p = PG(db);
	enum ld_err e;

	if (p->batch) {
		if (!p->savepoints)
			return LD_OK;
		e = run_simple(p, "RELEASE rule", "cannot release savepoint");
		p->in_savepoint = 0;
		return e;
	}
	e = run_simple(p, "COMMIT", "cannot commit");
	if (e != LD_OK)
		rollback_tx(p);
	p->in_tx = 0;
	return e;
}

static void pg_rollback(struct db *db)
{
	struct pg *p = PG(db);

	if (p->batch && !p->savepoints) {
		/* A statement that failed has aborted the whole transaction:
		 * only the batch as a whole can be undone. */
		if (p->conn && PQtransactionStatus(p->conn) == PQTRANS_INERROR)
			p->spoiled = 1;
		return;
	}
	if (p->batch) {
		if (p->in_savepoint && p->conn) {
			PGresult *res = PQexec(p->conn, "ROLLBACK TO rule; RELEASE rule");
			PQclear(res);
		}
		p->in_savepoint = 0;
		return;
	}
	rollback_tx(p);
}

static enum ld_err pg_read_begin(struct db *db)
{
	/* REPEATABLE READ: one snapshot over several queries */
	enum ld_err e = run_simple(PG(db), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
				   "cannot begin reading");
	PG(db)->in_tx = e == LD_OK;
	return e;
}

static void pg_read_end(struct db *db)
{
	rollback_tx(PG(db));
}

static enum ld_err pg_batch_begin(struct db *db, int savepoints)
{
	struct pg *p = PG(db);
	enum ld_err e = run_simple(p, "BEGIN", "cannot begin transaction");

	p->batch = p->in_tx = e == LD_OK;
	p->savepoints = savepoints;
	p->in_savepoint = p->spoiled = 0;
	return e;
}

static int pg_batch_intact(struct db *db)
{
	struct pg *p = PG(db);

	return p->batch && p->conn && PQtransactionStatus(p->conn) == PQTRANS_INTRANS;
}

static int pg_batch_spoiled(struct db *db)
{
	return PG(db)->batch && PG(db)->spoiled;
}

static enum ld_err pg_batch_end(struct db *db, int commit)
{
	struct pg *p = PG(db);
	enum ld_err e = LD_OK;

	p->batch = 0;
	p->in_savepoint = 0;
	if (commit && (p->spoiled || !p->conn || PQtransactionStatus(p->conn) != PQTRANS_INTRANS)) {
		rollback_tx(p);
		return p->conn ? db_error(db, LD_ERR_DB, "the batch's transaction was rolled back")
			       : LD_ERR_BUSY;
	}
	if (commit)
		e = run_simple(p, "COMMIT", "cannot commit");
	if (!commit || e != LD_OK)
		rollback_tx(p);
	p->in_tx = 0;
	return e;
}

/* ---- what only SQLite has: nothing to do here ---- */

static enum ld_err pg_checkpoint(struct db *db, int restart, int *frames)
{
	(void)db;
	(void)restart;
	if (frames)
		*frames = 0;
	return LD_OK;
}

static enum ld_err pg_sync(struct db *db)
{
	(void)db;
	return LD_OK;
}

static int pg_wal_frames(const struct db *db)
{
	(void)db;
	return 0;
}

/* ---- schema ---- */

static enum ld_err pg_schema_version(struct db *db, int *version)
{
	static const char SQL_HAS_META[] = "SELECT to_regclass('ledger_meta') IS NOT NULL";
	static const char SQL_VERSION[] =
		"SELECT CAST(value AS integer) FROM ledger_meta WHERE key = 'schema_version'";
	int64_t v = 0, has = 0;
	enum ld_err e = db_int(db, SQL_HAS_META, "cannot read the schema version", &has, NULL, "");

	if (e == LD_OK && has)
		e = db_int(db, SQL_VERSION, "cannot read the schema version", &v, NULL, "");
	*version = (int)v;
	return e;
}

static enum ld_err pg_set_schema_version(struct db *db, int version)
{
	char sql[160];

	snprintf(sql, sizeof sql,
		 "INSERT INTO ledger_meta (key, value) VALUES"
		 " ('schema_version', '%d') ON CONFLICT (key) DO UPDATE SET value = excluded.value",
		 version);
	return run_simple(PG(db), sql, "cannot set the schema version");
}

static enum ld_err pg_script(struct db *db, const char *sql, const char *what)
{
	return run_simple(PG(db), sql, what);
}

/* The server's own tools copy it: pg_dump, pg_basebackup (docs/backup.md). */
static enum ld_err pg_backup(struct db *db, const char *dest, enum db_backup_method method,
			     const char *const *tables, size_t n, int64_t *counts)
{
	(void)dest;
	(void)method;
	(void)tables;
	(void)n;
	(void)counts;
	return db_error(db, LD_ERR_INVALID,
			"a PostgreSQL ledger is backed up with pg_dump or"
			" pg_basebackup, not by luckydicectl");
}

static enum ld_err pg_integrity(struct db *db)
{
	(void)db;
	return LD_OK;
}

static void pg_close(struct db *db)
{
	struct pg *p = PG(db);

	if (!p)
		return;
	for (size_t i = 0; i < p->nstmts; i++)
		PQclear(p->stmts[i].res);
	PQfinish(p->conn);
	free(p->conninfo);
	free(p);
}

/* ---- the pipeline ---- */

/* Sends a statement without parameters (BEGIN, COMMIT) in the pipeline. */
static enum ld_err pipe_control(struct pg *p, const char *sql)
{
	if (p->nsent >= PIPE_MAX)
		return db_error(&p->base, LD_ERR_INVALID, "pipeline: more than %d statements",
				PIPE_MAX);
	if (!PQsendQueryParams(p->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
		return fail(p, NULL, "cannot send to the database");
	p->sent[p->nsent++] = NULL;
	return LD_OK;
}

static enum ld_err pg_pipe_begin(struct db *db)
{
	struct pg *p = PG(db);
	enum ld_err e;

	if ((e = connected(p)) != LD_OK)
		return e;
	if (!PQenterPipelineMode(p->conn))
		return fail(p, NULL, "cannot start a pipeline");
	p->piping = 1;
	p->nsent = p->nread = p->pipe_failed = 0;
	if ((e = pipe_control(p, "BEGIN")) != LD_OK) {
		p->piping = 0;
		return e;
	}
	p->in_tx = 1;
	return LD_OK;
}

static enum ld_err pg_pipe_send(struct db *db, const char *sql, const char *fmt, va_list ap)
{
	struct pg *p = PG(db);
	struct pg_stmt *st = NULL;
	char name[16];
	enum ld_err e;

	if (!p->piping || !p->conn)
		return db_error(db, LD_ERR_INVALID, "pipeline: not open");
	if (p->nsent + 2 > PIPE_MAX)
		return db_error(db, LD_ERR_INVALID, "pipeline: more than %d statements", PIPE_MAX);
	for (size_t i = 0; i < p->nstmts && !st; i++)
		if (p->stmts[i].sql == sql && !p->stmts[i].returning)
			st = &p->stmts[i];
	if (!st) {
		if (p->nstmts == STMT_MAX)
			return db_error(db, LD_ERR_DB, "cannot prepare statement: more than %d",
					STMT_MAX);
		st = &p->stmts[p->nstmts++];
		st->base.ops = p->base.ops;
		st->sql = sql;
		st->returning = 0;
		st->generation = 0;
	}
	snprintf(name, sizeof name, "s%d", (int)(st - p->stmts));
	if (st->generation != p->generation) { /* prepared in the pipeline itself */
		Oid types[PARAM_MAX];
		char *text = to_pg(sql, 0, &st->nparams);
		int n = st->nparams < PARAM_MAX ? st->nparams : PARAM_MAX;
		param_types(fmt, types, n);
		int ok = PQsendPrepare(p->conn, name, text, n, types);
		free(text);
		if (!ok)
			return fail(p, NULL, "cannot send to the database");
		p->sent[p->nsent++] = NULL;
		st->generation = p->generation;
	}
	if ((e = bind(p, st, fmt, ap)) != LD_OK)
		return e;
	if (!PQsendQueryPrepared(p->conn, name, st->nparams, p->values, NULL, NULL, 0))
		return fail(p, NULL, "cannot send to the database");
	p->sent[p->nsent++] = st;
	return LD_OK;
}

static enum ld_err pg_pipe_commit(struct db *db)
{
	struct pg *p = PG(db);
	enum ld_err e;

	if (!p->piping || !p->conn)
		return db_error(db, LD_ERR_INVALID, "pipeline: not open");
	if ((e = pipe_control(p, "COMMIT")) != LD_OK)
		return e;
	if (!PQpipelineSync(p->conn))
		return fail(p, NULL, "cannot send to the database");
	return LD_OK;
}

/* Reads the result of sent statement p->nread, and the NULL after it;
 * *res gets it (the caller clears it). */
static enum ld_err pipe_read(struct pg *p, PGresult **res, const char *what)
{
	PGresult *r = PQgetResult(p->conn), *extra;

	*res = r;
	if (!r)
		return fail(p, NULL, what);
	while ((extra = PQgetResult(p->conn)) != NULL) /* the end of this statement */
		PQclear(extra);
	p->nread++;
	ExecStatusType s = PQresultStatus(r);
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
		return LD_OK;
	if (s == PGRES_PIPELINE_ABORTED)
		return db_error(&p->base, LD_ERR_DB, "%s: the batch's transaction was rolled back",
				what);
	return fail(p, r, what);
}

static enum ld_err pg_pipe_next(struct db *db, struct db_stmt **out, const char *what)
{
	struct pg *p = PG(db);
	enum ld_err e = LD_OK;
	PGresult *res;

	*out = NULL;
	while (p->conn && p->nread < p->nsent) {
		struct pg_stmt *st = p->sent[p->nread];
		if ((e = pipe_read(p, &res, what)) != LD_OK) {
			PQclear(res);
			p->pipe_failed = 1;
			return e;
		}
		if (!st) { /* PREPARE or BEGIN */
			PQclear(res);
			continue;
		}
		PQclear(st->res);
		st->res = res;
		st->row = -1;
		st->nrows = PQntuples(res);
		const char *t = PQcmdTuples(res);
		p->changes = *t ? atoll(t) : 0;
		*out = &st->base;
		return LD_OK;
	}
	return db_error(db, p->conn ? LD_ERR_INVALID : LD_ERR_BUSY, "%s: %s", what,
			p->conn ? "nothing more was sent" : "no connection to the database");
}

static enum ld_err pg_pipe_end(struct db *db)
{
	struct pg *p = PG(db);
	enum ld_err e = p->pipe_failed ? LD_ERR_DB : LD_OK;
	PGresult *res;

	while (p->conn && p->nread < p->nsent) {
		int last = p->nread == p->nsent - 1; /* the COMMIT */
		enum ld_err r = pipe_read(p, &res, "cannot commit");
		if (r != LD_OK && e == LD_OK)
			e = r;
		/* a transaction a statement aborted ends in a ROLLBACK */
		if (last && r == LD_OK && strcmp(PQcmdStatus(res), "COMMIT") != 0 && e == LD_OK)
			e = db_error(db, LD_ERR_DB, "the batch's transaction was rolled back");
		PQclear(res);
	}
	if (p->conn) {
		res = PQgetResult(p->conn); /* the sync */
		if (PQresultStatus(res) != PGRES_PIPELINE_SYNC && e == LD_OK)
			e = fail(p, res, "cannot end the pipeline");
		PQclear(res);
	}
	if (p->conn && !PQexitPipelineMode(p->conn)) {
		if (e == LD_OK)
			e = fail(p, NULL, "cannot end the pipeline");
		drop_connection(p);
	}
	/* A statement that failed left the explicit transaction aborted (its
	 * COMMIT was skipped): end it here, or every later BEGIN on this
	 * connection fails ("current transaction is aborted"). */
	if (p->conn && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		rollback_tx(p);
	if (!p->conn && e == LD_OK)
		e = db_error(db, LD_ERR_BUSY, "the connection to the database was lost");
	p->piping = 0;
	p->in_tx = 0;
	p->nsent = p->nread = 0;
	return e;
}

static const struct db_ops pg_ops = {
	.engine = DB_PG,
	.exec = pg_exec,
	.changes = pg_changes,
	.one_int = pg_int,
	.query = pg_query,
	.step = pg_step,
	.end = pg_end,
	.col_int = pg_col_int,
	.col_text = pg_col_text,
	.col_len = pg_col_len,
	.col_null = pg_col_null,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.read_begin = pg_read_begin,
	.read_end = pg_read_end,
	.close = pg_close,
	.checkpoint = pg_checkpoint,
	.sync = pg_sync,
	.wal_frames = pg_wal_frames,
	.batch_begin = pg_batch_begin,
	.batch_intact = pg_batch_intact,
	.batch_spoiled = pg_batch_spoiled,
	.batch_end = pg_batch_end,
	.schema_version = pg_schema_version,
	.set_schema_version = pg_set_schema_version,
	.script = pg_script,
	.backup = pg_backup,
	.integrity = pg_integrity,
	.pipe_begin = pg_pipe_begin,
	.pipe_send = pg_pipe_send,
	.pipe_commit = pg_pipe_commit,
	.pipe_next = pg_pipe_next,
	.pipe_end = pg_pipe_end,
};

/*
 * Opens a connection to the server conninfo names. The connection is
 * made here, so that a wrong string or a server that is not there says
 * so at once; later losses are made good by the next call (connected).
 * The busy timeout becomes the statement timeout: a statement that waits
 * longer (for a lock, or a server that stopped answering) is cancelled,
 * LD_ERR_BUSY, and the transaction rolled back.
 */
enum ld_err db_pg_open(const char *conninfo, const struct ledger_options *opt, struct db **out,
		       char *err, size_t errlen)
{
	struct pg *p;
	enum ld_err e;

	*out = NULL;
	if (libpq_load(err, errlen) != 0)
		return LD_ERR_IO;
	p = xcalloc(1, sizeof *p);
	p->base.ops = &pg_ops;
	p->conninfo = xstrdup(conninfo);
	p->statement_timeout_ms = opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : 2000;
	if ((e = connected(p)) != LD_OK && !opt->lazy) {
		snprintf(err, errlen, "%s", p->base.err);
		pg_close(&p->base);
		*out = NULL;
		return e == LD_ERR_BUSY ? LD_ERR_IO : e;
	}
	*out = &p->base;
	return LD_OK;
}
