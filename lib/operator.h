/*
 * operator.h - the people who use the web console, and how they sign in.
 *
 * An operator is a name and a role in the ledger's operators table
 * (luckydicectl operator ...), apart from the users of promotions. The
 * roles are ordered, each may do what the one before it may:
 *
 *	viewer   reads a promotion's numbers
 *	support  also looks users up, grants and revokes dice with a ticket,
 *	         and makes a dead reward delivery due again
 *	owner    also pauses and resumes a promotion
 *
 * Tokens. `luckydicectl operator token NAME` prints a sign-in token
 * "op.NAME.SERIAL.EXPIRY.SIG", which the console's sign-in page trades
 * for a session "os.NAME.SERIAL.EXPIRY.SIG" kept in an HttpOnly cookie.
 * EXPIRY is Unix seconds; SIG is the unpadded base64url HMAC-SHA256 of
 * everything before its dot under the console secret
 * ("console_secret_file"), which is never a user token secret
 * (operator_key_load refuses one): no user token opens the console, and
 * no operator token is a user's. The two kinds sign different strings,
 * so a session is not a sign-in token nor the other way round.
 *
 * Every request checks the signature and the expiry, then the operator's
 * row (operator_authenticate): it must be there, enabled, and have the
 * token's serial. The role is the row's, so a change of role, and a
 * disabled operator, take effect at the next request. Disabling moves
 * the serial on: the tokens and sessions issued before stay dead when
 * the operator is enabled again.
 */
#ifndef LD_OPERATOR_H
#define LD_OPERATOR_H

#include "config.h"
#include "ledger.h"
#include "token.h"

#define OPERATOR_NAME_MAX  32  /* [A-Za-z0-9_-] */
#define OPERATOR_TOKEN_MAX 160 /* longest token, plus room */

enum operator_role {
	OPERATOR_VIEWER = 1,
	OPERATOR_SUPPORT = 2,
	OPERATOR_OWNER = 3,
};

/* "viewer", "support", "owner" (NULL for another value), and back (0
 * for a name that is none of them). */
const char *operator_role_name(enum operator_role role);
enum operator_role operator_role_parse(const char *name);

struct operator
{
	char name[OPERATOR_NAME_MAX + 1];
	enum operator_role role;
	int64_t serial; /* what its tokens must carry */
	int disabled;
	int64_t created_at, changed_at; /* ms */
};

/*
 * The console's key: the file "console_secret_file" names, read as a
 * token secret is (token_key_load: at least 32 bytes). LD_ERR_NOTFOUND
 * when the config names none (no console); LD_ERR_INVALID when it is
 * the file, or holds the bytes, of "token_secret_file" or
 * "token_previous_secret_file": operators need a secret of their own.
 * Other failures are token_key_load's. The message goes to err.
 */
enum ld_err operator_key_load(const struct ld_config *cfg, struct token_key *key, char *err,
			      size_t errlen);

/* The operator called name into *op; *found 0 when there is none. */
enum ld_err operator_get(struct ledger *l, const char *name, struct operator* op, int *found);

/* Every operator, by name, into *out (a new array of *n; the caller
 * frees it; NULL when there is none). */
enum ld_err operator_list(struct ledger *l, struct operator** out, size_t *n);

/*
 * Changes to operators, each one transaction that also writes a line of
 * operator_log naming actor (who made the change). name is 1 to
 * OPERATOR_NAME_MAX characters of [A-Za-z0-9_-] (LD_ERR_INVALID
 * otherwise).
 *  - operator_add: a new operator with role; *created 0 (and nothing
 *    changed) when the name is taken.
 *  - operator_set_role: *changed 0 when it had that role already.
 *  - operator_set_disabled: disabled 1 disables it (and moves its serial
 *    on), 0 enables it; *changed 0 when it was so already.
 * The last two answer LD_ERR_NOTFOUND when there is no such operator.
 */
enum ld_err operator_add(struct ledger *l, const char *name, enum operator_role role,
			 const char *actor, int64_t now_ms, int *created);
enum ld_err operator_set_role(struct ledger *l, const char *name, enum operator_role role,
			      const char *actor, int64_t now_ms, int *changed);
enum ld_err operator_set_disabled(struct ledger *l, const char *name, int disabled,
				  const char *actor, int64_t now_ms, int *changed);

/*
 * Adds a line to operator_log inside the caller's open transaction: at
 * now_ms actor did action (a word: "outbox.retry", "operator.add") to
 * subject (an event id, an operator's name), with the ticket and a note
 * (both may be NULL).
 */
enum ld_err operator_log_add(struct db *db, int64_t now_ms, const char *actor, const char *action,
			     const char *subject, const char *ticket, const char *note);

/* A line of operator_log; strings belong to the array. */
struct operator_log_line {
	int64_t id, at;
	char *actor, *action, *subject, *ticket, *note; /* ticket, note may be NULL */
};

/* The newest limit (1..10000) lines, newest first, into *out (*n of
 * them); freed with operator_log_free. */
enum ld_err operator_log_list(struct ledger *l, size_t limit, struct operator_log_line **out,
			      size_t *n);
void operator_log_free(struct operator_log_line *lines, size_t n);

/* The two kinds of operator token (see the top of this file). */
enum operator_token {
	OPERATOR_SIGNIN,  /* "op.": printed by luckydicectl, traded at sign-in */
	OPERATOR_SESSION, /* "os.": the console's cookie */
};

/* Writes a token of kind for the operator (name, serial) expiring at
 * expiry_s into out, signed with key. LD_ERR_INVALID for a bad name or
 * a negative number. */
enum ld_err operator_token_issue(const struct token_key *key, enum operator_token kind,
				 const char *name, int64_t serial, int64_t expiry_s,
				 char out[OPERATOR_TOKEN_MAX]);

/*
 * Checks tok (len bytes, not necessarily NUL-terminated) of kind at
 * now_s: its shape, then its signature under key (constant time), then
 * its expiry. On TOKEN_OK name, *serial and *expiry_s (each may be NULL)
 * get what it says. A token of the other kind, a user token or anything
 * else is TOKEN_MALFORMED.
 */
enum token_status operator_token_verify(const struct token_key *key, enum operator_token kind,
					const char *tok, size_t len, int64_t now_s,
					char name[OPERATOR_NAME_MAX + 1], int64_t *serial,
					int64_t *expiry_s);

/* Why a request's operator was not let in. */
enum operator_status {
	OPERATOR_OK = 0,
	OPERATOR_BAD_TOKEN, /* see the token_status */
	OPERATOR_UNKNOWN,   /* no such operator (any more) */
	OPERATOR_DISABLED,
	OPERATOR_REVOKED, /* a token from before the operator was disabled */
};

/* A short description of st ("operator disabled"). */
const char *operator_strstatus(enum operator_status st);

/*
 * The operator a token of kind signs in, at now_ms: operator_token_verify,
 * then the row. *st tells whether it is let in (OPERATOR_OK: *op is the
 * row, with its role now); *ts the token's status for OPERATOR_BAD_TOKEN.
 * Returns LD_OK, or a database error.
 */
enum ld_err operator_authenticate(struct ledger *l, const struct token_key *key,
				  enum operator_token kind, const char *tok, size_t len,
				  int64_t now_ms, struct operator* op, enum operator_status *st,
				  enum token_status *ts);

#endif
