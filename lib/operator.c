/*
 * operator.c - operators, their log, their tokens (see operator.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "buf.h"
#include "operator.h"

static const char *const role_names[] = {
	[OPERATOR_VIEWER] = "viewer",
	[OPERATOR_SUPPORT] = "support",
	[OPERATOR_OWNER] = "owner",
};

const char *operator_role_name(enum operator_role role)
{
	return role >= OPERATOR_VIEWER && role <= OPERATOR_OWNER ? role_names[role] : NULL;
}

enum operator_role operator_role_parse(const char *name)
{
	for (int r = OPERATOR_VIEWER; name && r <= OPERATOR_OWNER; r++)
		if (strcmp(name, role_names[r]) == 0)
			return (enum operator_role)r;
	return 0;
}

/* Whether paths a and b name one file (both exist), or are the same
 * string. */
static int same_file(const char *a, const char *b)
{
	struct stat x, y;

	if (strcmp(a, b) == 0)
		return 1;
	return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

enum ld_err operator_key_load(const struct ld_config *cfg, struct token_key *key, char *err,
			      size_t errlen)
{
	const char *tokens[] = { cfg->token_secret_file, cfg->token_previous_secret_file };
	enum ld_err e;

	memset(key, 0, sizeof *key);
	if (!cfg->console_secret_file) {
		snprintf(err, errlen, "\"console_secret_file\" is not set in '%s': no console",
			 cfg->path ? cfg->path : "the config");
		return LD_ERR_NOTFOUND;
	}
	for (size_t i = 0; i < 2; i++)
		if (tokens[i] && same_file(cfg->console_secret_file, tokens[i])) {
			snprintf(err, errlen,
				 "\"console_secret_file\" '%s' is the user token"
				 " secret '%s': operators need a secret of their own",
				 cfg->console_secret_file, tokens[i]);
			return LD_ERR_INVALID;
		}
	if ((e = token_key_load(cfg->console_secret_file, key, err, errlen)) != LD_OK)
		return e;
	for (size_t i = 0; i < 2; i++) {
		struct token_key t;
		int same;

		if (!tokens[i] || token_key_load(tokens[i], &t, NULL, 0) != LD_OK)
			continue;
		same = t.len == key->len && sodium_memcmp(t.bytes, key->bytes, t.len) == 0;
		token_key_release(&t);
		if (same) {
			snprintf(err, errlen,
				 "\"console_secret_file\" '%s' holds the same secret"
				 " as '%s': operators need a secret of their own",
				 cfg->console_secret_file, tokens[i]);
			token_key_release(key);
			return LD_ERR_INVALID;
		}
	}
	return LD_OK;
}

static const char SQL_GET[] =
	"SELECT name, role, serial, disabled, created_at, changed_at FROM operators"
	" WHERE name = ?1";
static const char SQL_LIST[] =
	"SELECT name, role, serial, disabled, created_at, changed_at FROM operators"
	" ORDER BY name LIMIT 100000";

static void row(struct db_stmt *st, struct operator* op)
{
	memset(op, 0, sizeof *op);
	snprintf(op->name, sizeof op->name, "%s", db_col_text(st, 0) ? db_col_text(st, 0) : "");
	op->role = operator_role_parse(db_col_text(st, 1));
	op->serial = db_col_int(st, 2);
	op->disabled = db_col_int(st, 3) != 0;
	op->created_at = db_col_int(st, 4);
	op->changed_at = db_col_int(st, 5);
}

enum ld_err operator_get(struct ledger *l, const char *name, struct operator* op, int *found)
{
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	enum ld_err e;

	memset(op, 0, sizeof *op);
	if ((e = db_query(db, &st, SQL_GET, "t", name)) != LD_OK)
		return e;
	if ((*found = db_step(st) > 0))
		row(st, op);
	return db_end(db, st, "cannot read operator");
}

enum ld_err operator_list(struct ledger *l, struct operator** out, size_t *n)
{
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	struct buf b;
	enum ld_err e;

	*out = NULL;
	*n = 0;
	buf_init(&b, 100000 * sizeof(struct operator));
	if ((e = db_query(db, &st, SQL_LIST, "")) != LD_OK)
		return e;
	while (db_step(st) > 0) {
		struct operator* op = buf_grow(&b, sizeof *op);
		if (!op)
			break;
		row(st, op);
	}
	e = db_end(db, st, "cannot list operators");
	*out = buf_take_array(&b, sizeof **out, n);
	if (e != LD_OK) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return e;
}

enum ld_err operator_log_add(struct db *db, int64_t now_ms, const char *actor, const char *action,
			     const char *subject, const char *ticket, const char *note)
{
	return db_exec(db,
		       "INSERT INTO operator_log (at, actor, action, subject, ticket, note)"
		       " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
		       "cannot write operator log", "lttttt", now_ms, actor, action, subject,
		       ticket, note);
}

static enum ld_err check_name(struct db *db, const char *name)
{
	if (!ld_is_ident(name, OPERATOR_NAME_MAX))
		return db_error(db, LD_ERR_INVALID,
				"'%s' is not an operator name (1 to %d of"
				" A-Z a-z 0-9 _ -)",
				name, OPERATOR_NAME_MAX);
	return LD_OK;
}

/*
 * Runs one change to operator name: sql (parameters ?1 name, ?2 now_ms,
 * and ?3 value unless it is NULL) and, when it changed a row, the log line (action, note)
 * in the same transaction. *changed tells whether it did; with
 * must_exist, no row at all is LD_ERR_NOTFOUND.
 */
static enum ld_err change(struct ledger *l, const char *sql, const char *name, const char *value,
			  int64_t now_ms, const char *actor, const char *action, const char *note,
			  int must_exist, int *changed)
{
	struct db *db = ledger_db(l);
	struct operator op;
	enum ld_err e;
	int found;

	*changed = 0;
	if ((e = check_name(db, name)) != LD_OK)
		return e;
	if ((e = db_begin(db)) != LD_OK)
		return e;
	if ((e = operator_get(l, name, &op, &found)) != LD_OK)
		goto fail;
	if (must_exist && !found) {
		e = db_error(db, LD_ERR_NOTFOUND, "no operator '%s'", name);
		goto fail;
	}
	if ((e = db_exec(db, sql, "cannot change operator", value ? "tlt" : "tl", name, now_ms,
			 value)) != LD_OK)
		goto fail;
	if (!(*changed = db_changes(db) > 0)) {
		db_rollback(db);
		return LD_OK;
	}
	if ((e = operator_log_add(db, now_ms, actor, action, name, NULL, note)) != LD_OK)
		goto fail;
	return db_commit(db);
fail:
	db_rollback(db);
	return e;
}

enum ld_err operator_add(struct ledger *l, const char *name, enum operator_role role,
			 const char *actor, int64_t now_ms, int *created)
{
	const char *r = operator_role_name(role);

	if (!r)
		return db_error(ledger_db(l), LD_ERR_INVALID, "no such role");
	return change(l,
		      "INSERT INTO operators (name, role, serial, created_at, changed_at)"
		      " VALUES (?1, ?3, 1, ?2, ?2) ON CONFLICT (name) DO NOTHING",
		      name, r, now_ms, actor, "operator.add", r, 0, created);
}

enum ld_err operator_set_role(struct ledger *l, const char *name, enum operator_role role,
			      const char *actor, int64_t now_ms, int *changed)
{
	const char *r = operator_role_name(role);

	if (!r)
		return db_error(ledger_db(l), LD_ERR_INVALID, "no such role");
	return change(l,
		      "UPDATE operators SET role = ?3, changed_at = ?2"
		      " WHERE name = ?1 AND role <> ?3",
		      name, r, now_ms, actor, "operator.role", r, 1, changed);
}

enum ld_err operator_set_disabled(struct ledger *l, const char *name, int disabled,
				  const char *actor, int64_t now_ms, int *changed)
{
	if (disabled)
		return change(l,
			      "UPDATE operators SET disabled = 1, serial = serial + 1,"
			      " changed_at = ?2 WHERE name = ?1 AND disabled = 0",
			      name, NULL, now_ms, actor, "operator.disable", NULL, 1, changed);
	return change(l,
		      "UPDATE operators SET disabled = 0, changed_at = ?2"
		      " WHERE name = ?1 AND disabled = 1",
		      name, NULL, now_ms, actor, "operator.enable", NULL, 1, changed);
}

static char *dup_or_null(struct db_stmt *st, int i)
{
	const char *s = db_col_text(st, i);
	return s ? xstrdup(s) : NULL;
}

enum ld_err operator_log_list(struct ledger *l, size_t limit, struct operator_log_line **out,
			      size_t *n)
{
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	struct buf b;
	enum ld_err e;

	*out = NULL;
	*n = 0;
	if (limit < 1 || limit > 10000)
		return db_error(db, LD_ERR_INVALID, "a limit from 1 to 10000");
	buf_init(&b, limit * sizeof(struct operator_log_line));
	if ((e = db_query(db, &st,
			  "SELECT id, at, actor, action, subject, ticket, note"
			  " FROM operator_log ORDER BY id DESC LIMIT ?1",
			  "l", (int64_t)limit)) != LD_OK)
		return e;
	while (db_step(st) > 0) {
		struct operator_log_line *x = buf_grow(&b, sizeof *x);
		if (!x)
			break;
		x->id = db_col_int(st, 0);
		x->at = db_col_int(st, 1);
		x->actor = dup_or_null(st, 2);
		x->action = dup_or_null(st, 3);
		x->subject = dup_or_null(st, 4);
		x->ticket = dup_or_null(st, 5);
		x->note = dup_or_null(st, 6);
	}
	e = db_end(db, st, "cannot read operator log");
	*out = buf_take_array(&b, sizeof **out, n);
	if (e != LD_OK) {
		operator_log_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return e;
}

void operator_log_free(struct operator_log_line *lines, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(lines[i].actor);
		free(lines[i].action);
		free(lines[i].subject);
		free(lines[i].ticket);
		free(lines[i].note);
	}
	free(lines);
}

/* The prefix of each kind of token. */
static const char *prefix(enum operator_token kind)
{
	return kind == OPERATOR_SESSION ? "os." : "op.";
}

enum ld_err operator_token_issue(const struct token_key *key, enum operator_token kind,
				 const char *name, int64_t serial, int64_t expiry_s,
				 char out[OPERATOR_TOKEN_MAX])
{
	char sig[TOKEN_SIG_LEN + 1];
	int n;

	out[0] = '\0';
	if (!key || !key->bytes || !ld_is_ident(name, OPERATOR_NAME_MAX) || serial < 1 ||
	    expiry_s < 1)
		return LD_ERR_INVALID;
	n = snprintf(out, OPERATOR_TOKEN_MAX, "%s%s.%lld.%lld", prefix(kind), name,
		     (long long)serial, (long long)expiry_s);
	if (n < 0 || (size_t)n + 1 + TOKEN_SIG_LEN >= OPERATOR_TOKEN_MAX) {
		out[0] = '\0';
		return LD_ERR_INVALID;
	}
	token_hmac(key, out, (size_t)n, sig);
	out[n] = '.';
	memcpy(out + n + 1, sig, TOKEN_SIG_LEN + 1);
	return LD_OK;
}

/*
 * Reads a positive decimal number from *s up to the next '.' (before
 * end): 1 to 18 digits, no sign, no leading zero. Moves *s past the dot;
 * -1 when there is no such number.
 */
static int number_field(const char **s, const char *end, int64_t *out)
{
	const char *p = *s;
	int64_t v = 0;
	int n = 0;

	if (p < end && *p == '0')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++, n++)
		v = v * 10 + (*p - '0');
	if (n < 1 || n > 18 || p >= end || *p != '.')
		return -1;
	*out = v;
	*s = p + 1;
	return 0;
}

enum token_status operator_token_verify(const struct token_key *key, enum operator_token kind,
					const char *tok, size_t len, int64_t now_s,
					char name[OPERATOR_NAME_MAX + 1], int64_t *serial,
					int64_t *expiry_s)
{
	const char *end = tok + len, *p = tok, *dot, *signed_end;
	char sig[TOKEN_SIG_LEN + 1];
	int64_t ser, exp;
	size_t nlen;

	if (name)
		name[0] = '\0';
	if (!key || !key->bytes || !tok || len < 4 || len >= OPERATOR_TOKEN_MAX ||
	    memcmp(tok, prefix(kind), 3) != 0)
		return TOKEN_MALFORMED;
	p += 3;
	if (!(dot = memchr(p, '.', (size_t)(end - p))))
		return TOKEN_MALFORMED;
	nlen = (size_t)(dot - p);
	if (nlen < 1 || nlen > OPERATOR_NAME_MAX)
		return TOKEN_MALFORMED;
	for (const char *c = p; c < dot; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
			return TOKEN_MALFORMED;
	p = dot + 1;
	if (number_field(&p, end, &ser) != 0 || number_field(&p, end, &exp) != 0)
		return TOKEN_MALFORMED;
	signed_end = p - 1;
	if ((size_t)(end - p) != TOKEN_SIG_LEN)
		return TOKEN_MALFORMED;
	for (const char *c = p; c < end; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
			return TOKEN_MALFORMED;
	token_hmac(key, tok, (size_t)(signed_end - tok), sig);
	if (sodium_memcmp(sig, p, TOKEN_SIG_LEN) != 0)
		return TOKEN_BAD_SIGNATURE;
	if (exp <= now_s)
		return TOKEN_EXPIRED;
	if (name) {
		memcpy(name, tok + 3, nlen);
		name[nlen] = '\0';
	}
	if (serial)
		*serial = ser;
	if (expiry_s)
		*expiry_s = exp;
	return TOKEN_OK;
}

const char *operator_strstatus(enum operator_status st)
{
	switch (st) {
	case OPERATOR_OK: return "operator signed in";
	case OPERATOR_BAD_TOKEN: return "bad operator token";
	case OPERATOR_UNKNOWN: return "no such operator";
	case OPERATOR_DISABLED: return "operator disabled";
	case OPERATOR_REVOKED:
		return "operator token no longer valid (the operator was disabled since)";
	}
	return "unknown operator status";
}

enum ld_err operator_authenticate(struct ledger *l, const struct token_key *key,
				  enum operator_token kind, const char *tok, size_t len,
				  int64_t now_ms, struct operator* op, enum operator_status *st,
				  enum token_status *ts)
{
	char name[OPERATOR_NAME_MAX + 1];
	int64_t serial;
	enum ld_err e;
	int found;

	memset(op, 0, sizeof *op);
	*ts = operator_token_verify(key, kind, tok, len, now_ms / 1000, name, &serial, NULL);
	if (*ts != TOKEN_OK) {
		*st = OPERATOR_BAD_TOKEN;
		return LD_OK;
	}
	if ((e = operator_get(l, name, op, &found)) != LD_OK)
		return e;
	*st = !found                   ? OPERATOR_UNKNOWN
		: op->disabled         ? OPERATOR_DISABLED
		: op->serial != serial ? OPERATOR_REVOKED
				       : OPERATOR_OK;
	if (*st != OPERATOR_OK)
		memset(op, 0, sizeof *op);
	return LD_OK;
}
