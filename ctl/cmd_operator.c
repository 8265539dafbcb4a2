/*
 * cmd_operator.c - operator add|list|role|disable|enable|token|log: the
 * web console's operators (lib/operator.c), who may do what there, and
 * the sign-in tokens they trade for a session.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "operator.h"

#define TOKEN_TTL_DEFAULT (7 * 86400)
#define TOKEN_TTL_MAX     (90 * 86400)

/* The role named by s; dies naming the roles when it is none. */
static enum operator_role role_arg(const char *s)
{
	enum operator_role r = operator_role_parse(s);

	if (!r)
		ctl_die("'%s' is not a role (viewer, support or owner)", s);
	return r;
}

/* The operator name operand, checked; dies when malformed. */
static const char *name_arg(const char *s)
{
	if (!ld_is_ident(s, OPERATOR_NAME_MAX))
		ctl_die("'%s' is not an operator name (1 to %d of A-Z a-z 0-9 _ -)", s,
			OPERATOR_NAME_MAX);
	return s;
}

/* Dies with the ledger's message, or "no operator" for LD_ERR_NOTFOUND. */
static void check(struct ctl *c, enum ld_err e)
{
	if (e != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
}

static void time_text(int64_t ms, char buf[32])
{
	ld_iso_time(ms, 0, buf);
}

static int add_run(struct ctl *c, const struct ctl_call *call)
{
	const char *name = name_arg(call->argv[0]);
	enum operator_role role = role_arg(ctl_value(call, "role"));
	int created;

	check(c, operator_add(ctl_ledger(c), name, role, ctl_operator(), ld_now_ms(), &created));
	if (!created) {
		fprintf(stderr,
			"error: operator '%s' exists (see 'luckydicectl operator list');"
			" nothing changed\n",
			name);
		return CTL_EXIT_PROBLEM;
	}
	printf("added operator '%s' (%s); 'luckydicectl operator token %s' prints a sign-in"
	       " token\n",
	       name, operator_role_name(role), name);
	return 0;
}

static int list_run(struct ctl *c, const struct ctl_call *call)
{
	struct operator* ops;
	char at[32];
	size_t n;

	check(c, operator_list(ctl_ledger(c), &ops, &n));
	if (ctl_flag(call, "json")) {
		struct json_object *arr = json_object_new_array(), *o;
		for (size_t i = 0; i < n; i++) {
			o = json_object_new_object();
			time_text(ops[i].changed_at, at);
			json_object_object_add(o, "name", json_object_new_string(ops[i].name));
			json_object_object_add(
				o, "role",
				json_object_new_string(operator_role_name(ops[i].role)
							       ? operator_role_name(ops[i].role)
							       : "?"));
			json_object_object_add(o, "disabled",
					       json_object_new_boolean(ops[i].disabled));
			json_object_object_add(o, "serial", json_object_new_int64(ops[i].serial));
			json_object_object_add(o, "changed_at", json_object_new_string(at));
			json_object_array_add(arr, o);
		}
		o = json_object_new_object();
		json_object_object_add(o, "operators", arr);
		ctl_print_json(o);
	} else {
		printf("%-32s %-8s %-9s %s\n", "name", "role", "state", "changed (UTC)");
		for (size_t i = 0; i < n; i++) {
			time_text(ops[i].changed_at, at);
			printf("%-32s %-8s %-9s %s\n", ops[i].name,
			       operator_role_name(ops[i].role) ? operator_role_name(ops[i].role)
							       : "?",
			       ops[i].disabled ? "disabled" : "enabled", at);
		}
	}
	free(ops);
	return 0;
}

static int role_run(struct ctl *c, const struct ctl_call *call)
{
	const char *name = name_arg(call->argv[0]);
	enum operator_role role = role_arg(call->argv[1]);
	int changed;

	check(c,
	      operator_set_role(ctl_ledger(c), name, role, ctl_operator(), ld_now_ms(), &changed));
	printf(changed ? "operator '%s' is now %s (from its next request)\n"
		       : "operator '%s' is %s already; nothing changed\n",
	       name, operator_role_name(role));
	return 0;
}

static int able(struct ctl *c, const struct ctl_call *call, int disabled)
{
	const char *name = name_arg(call->argv[0]);
	int changed;

	check(c,
	      operator_set_disabled(ctl_ledger(c), name, disabled, ctl_operator(), ld_now_ms(),
				    &changed));
	if (!changed)
		printf("operator '%s' is %s already; nothing changed\n", name,
		       disabled ? "disabled" : "enabled");
	else if (disabled)
		printf("disabled operator '%s': its sessions and tokens stop working now, and"
		       " stay dead if it is enabled again\n",
		       name);
	else
		printf("enabled operator '%s': it signs in with a new token ('luckydicectl"
		       " operator token %s')\n",
		       name, name);
	return 0;
}

static int disable_run(struct ctl *c, const struct ctl_call *call)
{
	return able(c, call, 1);
}

static int enable_run(struct ctl *c, const struct ctl_call *call)
{
	return able(c, call, 0);
}

static int token_run(struct ctl *c, const struct ctl_call *call)
{
	long long ttl = ctl_number(call, "ttl", 60, TOKEN_TTL_MAX, TOKEN_TTL_DEFAULT);
	const char *name = name_arg(call->argv[0]);
	char err[512], tok[OPERATOR_TOKEN_MAX];
	struct token_key key;
	struct operator op;
	int found;

	check(c, operator_get(ctl_ledger(c), name, &op, &found));
	if (!found)
		ctl_die("no operator '%s' (see 'luckydicectl operator list')", name);
	if (op.disabled)
		ctl_die("operator '%s' is disabled ('luckydicectl operator enable %s' first)", name,
			name);
	if (operator_key_load(&c->cfg, &key, err, sizeof err) != LD_OK)
		ctl_die("%s", err);
	if (operator_token_issue(&key, OPERATOR_SIGNIN, name, op.serial, ld_now_ms() / 1000 + ttl,
				 tok) != LD_OK)
		ctl_die("cannot make a token for '%s'", name);
	token_key_release(&key);
	puts(tok);
	return 0;
}

static int log_run(struct ctl *c, const struct ctl_call *call)
{
	long long limit = ctl_number(call, "limit", 1, 10000, 50);
	struct operator_log_line *lines;
	char at[32];
	size_t n;

	check(c, operator_log_list(ctl_ledger(c), (size_t)limit, &lines, &n));
	if (ctl_flag(call, "json")) {
		struct json_object *arr = json_object_new_array(), *o;
		for (size_t i = 0; i < n; i++) {
			o = json_object_new_object();
			time_text(lines[i].at, at);
			json_object_object_add(o, "at", json_object_new_string(at));
			json_object_object_add(o, "actor", json_object_new_string(lines[i].actor));
			json_object_object_add(o, "action",
					       json_object_new_string(lines[i].action));
			json_object_object_add(o, "subject",
					       json_object_new_string(lines[i].subject));
			json_object_object_add(
				o, "ticket",
				lines[i].ticket ? json_object_new_string(lines[i].ticket) : NULL);
			json_object_object_add(o, "note",
					       lines[i].note ? json_object_new_string(lines[i].note)
							     : NULL);
			json_object_array_add(arr, o);
		}
		o = json_object_new_object();
		json_object_object_add(o, "lines", arr);
		ctl_print_json(o);
	} else {
		for (size_t i = 0; i < n; i++) {
			time_text(lines[i].at, at);
			printf("%s  %-16s %-16s %-20s ticket %s  %s\n", at, lines[i].actor,
			       lines[i].action, lines[i].subject,
			       lines[i].ticket ? lines[i].ticket : "-",
			       lines[i].note ? lines[i].note : "");
		}
	}
	operator_log_free(lines, n);
	return 0;
}

/* clang-format off */
const struct ctl_cmd ctl_cmds_operator[] = {
	{ "operator", "add", add_run, "NAME", 1, 1, 0,
	  "add a web console operator with a role (viewer, support, owner)",
	  "Adds operator NAME (1-32 of A-Z a-z 0-9 _ -) with --role: viewer reads\n"
	  "the campaign's numbers; support also looks users up, grants and revokes\n"
	  "with a ticket and retries a dead reward; owner also pauses and resumes a\n"
	  "promotion. Operators are not users: a user token never opens the console.",
	  "0 added; 1 the name is taken (nothing changed); 2 cannot run",
	  { { "role", "ROLE", "viewer, support or owner", 1 }, { NULL } } },
	{ "operator", "list", list_run, "", 0, 0, 0,
	  "the console's operators: name, role, enabled or disabled",
	  "Lists every operator: name, role, whether it is enabled, and when it last\n"
	  "changed (UTC).",
	  NULL, { CTL_OPT_JSON, { NULL } } },
	{ "operator", "role", role_run, "NAME ROLE", 2, 2, 0,
	  "give an operator another role (from its next request)",
	  "Gives operator NAME the role ROLE (viewer, support or owner). The console\n"
	  "reads the role on every request: the change holds from the next one,\n"
	  "signed-in sessions included.",
	  "0 done (or it had the role); 2 no such operator, or cannot run", { { NULL } } },
	{ "operator", "disable", disable_run, "NAME", 1, 1, 0,
	  "end an operator's sessions and tokens now",
	  "Disables operator NAME: its next request is refused, sessions and tokens\n"
	  "alike, and they stay refused if the operator is enabled again.",
	  "0 done (or it was disabled); 2 no such operator, or cannot run", { { NULL } } },
	{ "operator", "enable", enable_run, "NAME", 1, 1, 0,
	  "let a disabled operator sign in again, with a new token",
	  "Enables operator NAME again. Its old tokens stay dead: it needs a new one\n"
	  "(operator token).",
	  "0 done (or it was enabled); 2 no such operator, or cannot run", { { NULL } } },
	{ "operator", "token", token_run, "NAME", 1, 1, 0,
	  "a sign-in token for an operator, for the console's sign-in page",
	  "Prints a sign-in token for operator NAME, signed with \"console_secret_file\"\n"
	  "(never the user token secret) and valid for --ttl seconds (7 days by\n"
	  "default, at most 90). The console's sign-in page trades it for a session\n"
	  "of at most 12 hours in an HttpOnly cookie. Give it to the operator as a\n"
	  "password: whoever holds it signs in as them until it expires or the\n"
	  "operator is disabled.",
	  "0 printed; 2 no such operator, it is disabled, no console secret, or cannot\n"
	  "run",
	  { { "ttl", "SECONDS", "how long the token is valid (default 604800, 7 days)", 0 },
	    { NULL } } },
	{ "operator", "log", log_run, "", 0, 0, 0,
	  "what operators changed that no other record keeps",
	  "Prints the newest lines of the operator log, newest first: dead events\n"
	  "made due again (from the console or 'outbox retry') and changes to\n"
	  "operators, each with who, when (UTC), the ticket and a note. Grants and\n"
	  "revokes keep their ticket and operator with the grant (user show).",
	  NULL,
	  { { "limit", "N", "at most N lines (default 50)", 0 }, CTL_OPT_JSON, { NULL } } },
	{ NULL },
};
/* clang-format on */
