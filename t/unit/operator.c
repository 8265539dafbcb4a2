/*
 * t/unit/operator.c - lib/operator.c on a real SQLite file: roles by
 * name, the console's key refused when it is a user token secret, sign-in
 * tokens and sessions (made, checked, and everything that is not one
 * refused: another kind, a user token, another key, a changed byte,
 * expired, malformed), operators added, given a role, disabled and
 * enabled with a line of the operator log each, and a request's operator
 * let in or not as its row says at that moment.
 */
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "operator.h"
#include "outbox.h"
#include "../tap.h"
#include "testdb.h"

#define NOW   1720400000000LL
#define NOW_S (NOW / 1000)

static struct testdb t;
static struct token_key key, other;

/* Writes text to dir/name, returns the path in buf. */
static const char *file(const char *name, const char *text, char *buf, size_t n)
{
	FILE *f;

	snprintf(buf, n, "%s/%s", t.dir, name);
	if (!(f = fopen(buf, "w")) || fputs(text, f) < 0 || fclose(f) != 0)
		bail("cannot write '%s'", buf);
	return buf;
}

static void test_roles(void)
{
	is_string(operator_role_name(OPERATOR_VIEWER), "viewer", "viewer's name");
	is_string(operator_role_name(OPERATOR_OWNER), "owner", "owner's name");
	ok(operator_role_name(0) == NULL && operator_role_name(4) == NULL,
	   "no name past the roles");
	is_int(operator_role_parse("support"), OPERATOR_SUPPORT, "support by name");
	is_int(operator_role_parse("Owner"), 0, "names are exact");
	is_int(operator_role_parse(NULL), 0, "no name, no role");
	ok(OPERATOR_VIEWER < OPERATOR_SUPPORT && OPERATOR_SUPPORT < OPERATOR_OWNER,
	   "roles are ordered");
}

static void test_key(void)
{
	char a[400], b[400], c[400], d[400], err[512];
	struct ld_config cfg = { 0 };
	struct token_key k;

	file("token.secret", "0123456789abcdef0123456789abcdef\n", a, sizeof a);
	file("copy.secret", "0123456789abcdef0123456789abcdef", b, sizeof b);
	file("console.secret", "fedcba9876543210fedcba9876543210fe\n", c, sizeof c);
	snprintf(d, sizeof d, "%s/link.secret", t.dir);
	if (link(a, d) != 0)
		bail("cannot link '%s'", d);
	cfg.token_secret_file = a;
	is_int(operator_key_load(&cfg, &k, err, sizeof err), LD_ERR_NOTFOUND,
	       "no console secret: no console");
	cfg.console_secret_file = a;
	is_int(operator_key_load(&cfg, &k, err, sizeof err), LD_ERR_INVALID,
	       "the token secret's file is refused");
	ok(strstr(err, "a secret of their own") != NULL, "... saying why: %s", err);
	cfg.console_secret_file = d;
	is_int(operator_key_load(&cfg, &k, err, sizeof err), LD_ERR_INVALID,
	       "a hard link to it too");
	cfg.console_secret_file = b;
	is_int(operator_key_load(&cfg, &k, err, sizeof err), LD_ERR_INVALID,
	       "a copy of its bytes too");
	cfg.token_secret_file = c;
	cfg.token_previous_secret_file = b;
	cfg.console_secret_file = a;
	is_int(operator_key_load(&cfg, &k, err, sizeof err), LD_ERR_INVALID,
	       "the previous token secret too");
	cfg.token_secret_file = a;
	cfg.token_previous_secret_file = NULL;
	cfg.console_secret_file = c;
	is_int(operator_key_load(&cfg, &k, err, sizeof err), LD_OK, "a secret of its own loads");
	token_key_release(&k);
}

static enum token_status verify(enum operator_token kind, const char *tok, int64_t now_s)
{
	return operator_token_verify(&key, kind, tok, strlen(tok), now_s, NULL, NULL, NULL);
}

static void test_tokens(void)
{
	char tok[OPERATOR_TOKEN_MAX], ses[OPERATOR_TOKEN_MAX], bad[OPERATOR_TOKEN_MAX * 2];
	char name[OPERATOR_NAME_MAX + 1], user[TOKEN_MAX];
	int64_t serial = 0, expiry = 0;

	is_int(operator_token_issue(&key, OPERATOR_SIGNIN, "ann", 3, NOW_S + 60, tok), LD_OK,
	       "a sign-in token");
	ok(strncmp(tok, "op.ann.3.", 9) == 0, "shaped op.NAME.SERIAL.EXPIRY.SIG: %s", tok);
	is_int(operator_token_verify(&key, OPERATOR_SIGNIN, tok, strlen(tok), NOW_S, name, &serial,
				     &expiry),
	       TOKEN_OK, "it verifies");
	ok(strcmp(name, "ann") == 0 && serial == 3 && expiry == NOW_S + 60,
	   "and says who, which serial, until when");
	is_int(verify(OPERATOR_SESSION, tok, NOW_S), TOKEN_MALFORMED, "it is no session");
	is_int(verify(OPERATOR_SIGNIN, tok, NOW_S + 60), TOKEN_EXPIRED, "expired at its second");
	is_int(operator_token_verify(&other, OPERATOR_SIGNIN, tok, strlen(tok), NOW_S, NULL, NULL,
				     NULL),
	       TOKEN_BAD_SIGNATURE, "another key's token is refused");
	is_int(operator_token_issue(&key, OPERATOR_SESSION, "ann", 3, NOW_S + 60, ses), LD_OK,
	       "a session");
	ok(strncmp(ses, "os.ann.3.", 9) == 0, "shaped os.NAME...");
	is_int(verify(OPERATOR_SESSION, ses, NOW_S), TOKEN_OK, "it verifies as a session");
	is_int(verify(OPERATOR_SIGNIN, ses, NOW_S), TOKEN_MALFORMED, "and is no sign-in token");
	/* the same string with the other prefix: a signature of another text */
	snprintf(bad, sizeof bad, "op%s", ses + 2);
	is_int(verify(OPERATOR_SIGNIN, bad, NOW_S), TOKEN_BAD_SIGNATURE,
	       "a session renamed a sign-in token does not verify");

	/* a user token under the same bytes is no operator token */
	if (token_issue(&key, "ann", NOW_S + 60, user) != LD_OK)
		bail("token_issue");
	is_int(verify(OPERATOR_SIGNIN, user, NOW_S), TOKEN_MALFORMED, "a user token is refused");
	is_int(verify(OPERATOR_SESSION, user, NOW_S), TOKEN_MALFORMED, "as a session too");
	snprintf(bad, sizeof bad, "op.%s", user);
	is_int(verify(OPERATOR_SIGNIN, bad, NOW_S), TOKEN_MALFORMED, "and with op. in front");

	/* each byte changed */
	int all = 1;
	for (size_t i = 0; i < strlen(tok); i++) {
		snprintf(bad, sizeof bad, "%s", tok);
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		all &= verify(OPERATOR_SIGNIN, bad, NOW_S) != TOKEN_OK;
	}
	ok(all, "no token with one byte changed verifies");
	static const char *const malformed[] = {
		"",
		"op.",
		"op.ann",
		"op.ann.3",
		"op.ann.3.99999999999",
		"op..3.99999999999.x",
		"op.ann.03.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"op.ann.0.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"op.ann.3.-9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"op.a.n.3.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"op.ann.3.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"op.ann.3.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"op.ann.3.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"op.ann.3.1234567890123456789.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"op.0123456789012345678901234567890123.3.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"OP.ann.3.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	all = 1;
	for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
		if (verify(OPERATOR_SIGNIN, malformed[i], NOW_S) != TOKEN_MALFORMED) {
			diag("not refused as malformed: '%s'", malformed[i]);
			all = 0;
		}
	ok(all, "%zu malformed tokens refused as such", sizeof malformed / sizeof malformed[0]);
	ok(operator_token_verify(&key, OPERATOR_SIGNIN, tok, strlen(tok) - 1, NOW_S, NULL, NULL,
				 NULL) != TOKEN_OK,
	   "the length is the caller's: one byte short fails");
	is_int(operator_token_issue(&key, OPERATOR_SIGNIN, "a.b", 1, NOW_S, tok), LD_ERR_INVALID,
	       "no token for a name with a dot");
	is_int(operator_token_issue(&key, OPERATOR_SIGNIN, "ann", 0, NOW_S, tok), LD_ERR_INVALID,
	       "nor for serial 0");
}

static enum operator_status auth(const char *tok, int64_t now_ms, struct operator* op)
{
	enum operator_status st;
	enum token_status ts;

	if (operator_authenticate(t.ledger, &key, OPERATOR_SESSION, tok, strlen(tok), now_ms, op,
				  &st, &ts) != LD_OK)
		bail("%s", ledger_errmsg(t.ledger));
	return st;
}

static void test_operators(void)
{
	struct ledger *l = t.ledger;
	struct operator op, *ops;
	char ses[OPERATOR_TOKEN_MAX], old[OPERATOR_TOKEN_MAX];
	struct operator_log_line *lines;
	int created, changed, found;
	size_t n;

	is_int(operator_add(l, "ann", OPERATOR_VIEWER, "root", NOW, &created), LD_OK, "ann added");
	ok(created, "... as new");
	is_int(operator_add(l, "ann", OPERATOR_OWNER, "root", NOW, &created), LD_OK, "ann again");
	ok(!created, "... changes nothing");
	is_int(operator_add(l, "bad name", OPERATOR_OWNER, "root", NOW, &created), LD_ERR_INVALID,
	       "a name with a space is refused");
	is_int(operator_add(l, "bob", 0, "root", NOW, &created), LD_ERR_INVALID,
	       "no role, refused");
	operator_add(l, "bob", OPERATOR_OWNER, "root", NOW + 1, &created);
	is_int(operator_get(l, "ann", &op, &found), LD_OK, "ann read");
	ok(found && op.role == OPERATOR_VIEWER && op.serial == 1 && !op.disabled,
	   "ann is an enabled viewer with serial 1");
	is_int(operator_list(l, &ops, &n), LD_OK, "the list");
	ok(n == 2 && strcmp(ops[0].name, "ann") == 0 && strcmp(ops[1].name, "bob") == 0,
	   "two operators by name");
	free(ops);

	operator_token_issue(&key, OPERATOR_SESSION, "ann", 1, NOW_S + 3600, ses);
	is_int(auth(ses, NOW, &op), OPERATOR_OK, "ann's session lets her in");
	is_int(op.role, OPERATOR_VIEWER, "as a viewer");
	is_int(operator_set_role(l, "ann", OPERATOR_SUPPORT, "root", NOW + 2, &changed), LD_OK,
	       "ann made support");
	ok(changed, "... a change");
	is_int(auth(ses, NOW + 3, &op), OPERATOR_OK, "the same session still lets her in");
	is_int(op.role, OPERATOR_SUPPORT, "with the new role at once");
	operator_set_role(l, "ann", OPERATOR_SUPPORT, "root", NOW + 2, &changed);
	ok(!changed, "the same role again is no change");
	is_int(operator_set_role(l, "cat", OPERATOR_SUPPORT, "root", NOW, &changed),
	       LD_ERR_NOTFOUND, "no role for nobody");

	is_int(operator_set_disabled(l, "ann", 1, "root", NOW + 4, &changed), LD_OK,
	       "ann disabled");
	ok(changed, "... a change");
	is_int(auth(ses, NOW + 5, &op), OPERATOR_DISABLED, "her session is refused at once");
	ok(op.name[0] == '\0' && op.role == 0, "and says nothing of her");
	operator_set_disabled(l, "ann", 1, "root", NOW + 4, &changed);
	ok(!changed, "disabling again is no change");
	is_int(operator_set_disabled(l, "ann", 0, "root", NOW + 6, &changed), LD_OK, "ann enabled");
	snprintf(old, sizeof old, "%s", ses);
	is_int(auth(old, NOW + 7, &op), OPERATOR_REVOKED, "her old session stays dead");
	operator_get(l, "ann", &op, &found);
	is_int(op.serial, 2, "her serial moved on");
	operator_token_issue(&key, OPERATOR_SESSION, "ann", 2, NOW_S + 3600, ses);
	is_int(auth(ses, NOW + 7, &op), OPERATOR_OK, "a new one lets her in");
	operator_token_issue(&key, OPERATOR_SESSION, "cat", 1, NOW_S + 3600, ses);
	is_int(auth(ses, NOW, &op), OPERATOR_UNKNOWN, "a session of nobody is refused");
	is_int(auth("os.x", NOW, &op), OPERATOR_BAD_TOKEN, "a malformed one too");

	is_int(operator_log_list(l, 100, &lines, &n), LD_OK, "the log");
	is_int((int)n, 5, "five changes logged (two adds, a role, a disable, an enable)");
	ok(n == 5 && strcmp(lines[0].action, "operator.enable") == 0 &&
		   strcmp(lines[4].action, "operator.add") == 0 &&
		   strcmp(lines[4].actor, "root") == 0 && strcmp(lines[4].subject, "ann") == 0 &&
		   strcmp(lines[4].note, "viewer") == 0,
	   "newest first, with who, what, whom and the role");
	operator_log_free(lines, n);
	is_int(operator_log_list(l, 0, &lines, &n), LD_ERR_INVALID, "a limit of 0 is refused");
}

/* outbox retry writes its line; a promotion limits it */
static void test_retry_log(void)
{
	struct ledger *l = t.ledger;
	struct outbox_who who = { "ann", "T-9", "reward service fixed" };
	struct operator_log_line *lines;
	int64_t changed;
	size_t n;

	if (db_script(
		    ledger_db(l),
		    "INSERT INTO outbox (id, key, kind, promo, uid, payload, state,"
		    " next_at, created_at) VALUES (1, 'p/draw/1/reward', 'reward.issue', 'p', 'u',"
		    " '{}', 'dead', 0, 0), (2, 'q/draw/1/reward', 'reward.issue', 'q', 'u', '{}',"
		    " 'dead', 0, 0)",
		    "seed") != LD_OK)
		bail("%s", ledger_errmsg(l));
	is_int(outbox_retry(l, 2, "p", NOW, &who, &changed), LD_ERR_NOTFOUND,
	       "an event of another promotion is not found");
	is_int(outbox_retry(l, 1, "p", NOW, &who, &changed), LD_OK, "event 1 retried in p");
	is_int((int)changed, 1, "... one event");
	operator_log_list(l, 1, &lines, &n);
	ok(n == 1 && strcmp(lines[0].action, "outbox.retry") == 0 &&
		   strcmp(lines[0].subject, "1") == 0 && strcmp(lines[0].ticket, "T-9") == 0 &&
		   strcmp(lines[0].actor, "ann") == 0 &&
		   strcmp(lines[0].note, "reward service fixed") == 0,
	   "logged with who, the event, the ticket and why");
	operator_log_free(lines, n);
	is_int(outbox_retry(l, 1, "p", NOW, &who, &changed), LD_OK, "again");
	is_int((int)changed, 0, "... nothing to do, nothing logged");
	operator_log_list(l, 10, &lines, &n);
	is_int((int)n, 6, "still one retry line");
	operator_log_free(lines, n);
}

int main(void)
{
	if (sodium_init() < 0)
		bail("sodium");
	testdb_open(&t, "operator");
	if (token_key_set(&key, "0123456789abcdef0123456789abcdef", 32) != LD_OK ||
	    token_key_set(&other, "0123456789abcdef0123456789abcdeX", 32) != LD_OK)
		bail("keys");
	test_roles();
	test_key();
	test_tokens();
	test_operators();
	test_retry_log();
	token_key_release(&key);
	token_key_release(&other);
	/* the key test's files */
	static const char *const files[] = { "token.secret", "copy.secret", "console.secret",
					     "link.secret" };
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char p[400];
		snprintf(p, sizeof p, "%s/%s", t.dir, files[i]);
		unlink(p);
	}
	testdb_remove(&t);
	return done_testing();
}
