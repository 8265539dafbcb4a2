/*
 * ctl.h - luckydicectl, the operator's tool: one cmd_<group>.c per
 * command group (git builtin/ style), each with a table of its commands
 * (struct ctl_cmd), sharing the opened config and ledger.
 *
 * Parsing is done once, in args.c, for every command: getopt_long over
 * the command's options (struct ctl_opt), in any order before or after the
 * operands, plus --config FILE and -h/--help everywhere. A command's
 * run() then reads typed values through ctl_flag(), ctl_value() and
 * ctl_number(). --help needs no config and no database.
 *
 * Exit codes: 0 done, 1 the command ran and found a problem (e.g. cache
 * drift; each command's help says which), 2 cannot run (usage, config,
 * database).
 */
#ifndef LD_CTL_H
#define LD_CTL_H

#include <stdio.h>

#include <json-c/json.h>

#include "config.h"
#include "log.h"
#include "ledger.h"
#include "cache.h"

#define CTL_EXIT_PROBLEM 1
#define CTL_EXIT_USAGE   2

struct ctl {
	const char *config_path; /* --config, else config_default_path() */
	struct ld_config cfg;
	struct ledger *ledger; /* opened on first ctl_ledger() */
	int create;            /* init: create the database file */
};

/* One option of a command: "--name" or "--name ARG". */
struct ctl_opt {
	const char *name; /* long name, without "--" */
	const char *arg;  /* its argument in the help ("N"); NULL: a flag */
	const char *help; /* one line for --help */
	int required;     /* the command cannot run without it */
};

#define CTL_MAX_OPTS 8

/* The usual --json option (its output is documented in luckydicectl(8)). */
#define CTL_OPT_JSON                                                                \
	{                                                                           \
		"json", NULL, "print JSON instead of text (see luckydicectl(8))", 0 \
	}

struct ctl_call;

/* A command: "stats", or a subcommand of a group ("promo load"). */
struct ctl_cmd {
	const char *group; /* "promo", "stats" */
	const char *name;  /* "load"; NULL when the group is the command */
	int (*run)(struct ctl *c, const struct ctl_call *call);
	const char *operands;              /* for the synopsis: "PROMO UID" */
	int min_args, max_args;            /* how many operands (max -1: any) */
	int no_config;                     /* runs without the config (a dry run of a file) */
	const char *summary;               /* one line for luckydicectl --help */
	const char *help;                  /* what it does and prints, for its --help */
	const char *exit;                  /* its exit statuses; NULL: "0 done, 2 cannot run" */
	struct ctl_opt opts[CTL_MAX_OPTS]; /* ends at the first without a name */
};

/* One run of a command, as parsed: its operands (options removed, in
 * order) and each option's argument ("" for a flag given, NULL when not
 * given; the last one given wins). */
struct ctl_call {
	const struct ctl_cmd *cmd;
	int argc;
	char **argv;
	const char *val[CTL_MAX_OPTS];
};

/* The command tables, each ending with an entry whose group is NULL. */
extern const struct ctl_cmd ctl_cmds_basic[];    /* init, promo, token */
extern const struct ctl_cmd ctl_cmds_stats[];    /* stats, promo simulate */
extern const struct ctl_cmd ctl_cmds_user[];     /* user show */
extern const struct ctl_cmd ctl_cmds_support[];  /* grant, revoke, revoke-reward */
extern const struct ctl_cmd ctl_cmds_cache[];    /* cache verify|rebuild */
extern const struct ctl_cmd ctl_cmds_export[];   /* export winners */
extern const struct ctl_cmd ctl_cmds_outbox[];   /* outbox list|retry */
extern const struct ctl_cmd ctl_cmds_secrets[];  /* secrets */
extern const struct ctl_cmd ctl_cmds_ledger[];   /* backup, restore, ledger, purge */
extern const struct ctl_cmd ctl_cmds_operator[]; /* operator add|list|role|... */

/*
 * Runs cmd (args.c): parses argv[0..argc) (argv[0] is the command's own
 * name) against the command's options, --config and -h/--help; prints the
 * help and exits 0 for --help; exits 2 on a usage error; loads the config
 * unless the command needs none; then returns what cmd->run returns.
 */
int ctl_run(struct ctl *c, const struct ctl_cmd *cmd, int argc, char **argv);

/* "promo load [--json] FILE": the command's words, options and operands. */
void ctl_synopsis(const struct ctl_cmd *cmd, FILE *f);

/* The help of cmd: synopsis, what it does, options, exit status. */
void ctl_cmd_help(const struct ctl_cmd *cmd, FILE *f);

/* The help line of --config, naming the default (shared with main.c). */
void ctl_config_help(FILE *f);

/* Whether the flag name was given. */
int ctl_flag(const struct ctl_call *call, const char *name);
/* The argument of option name, or NULL when not given. */
const char *ctl_value(const struct ctl_call *call, const char *name);
/* The argument of option name as an integer in [min, max], def when not
 * given; exits 2 naming the option when it is not one. */
long long ctl_number(const struct ctl_call *call, const char *name, long long min, long long max,
		     long long def);
/* The same for a real number. */
double ctl_real(const struct ctl_call *call, const char *name, double min, double max, double def);
/* Prints "error: ...", the command's usage line, and exits 2. */
void ctl_usage_error(const struct ctl_call *call, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* Prints o as pretty JSON and a newline on stdout, then puts o. */
void ctl_print_json(struct json_object *o);

/* The ledger, opened (and schema-checked unless creating) on first use;
 * exits 2 with a message on failure. */
struct ledger *ctl_ledger(struct ctl *c);

/* The promotion with this id; exits 2 when there is none. */
const struct promo *ctl_promo(struct ctl *c, const char *id);

/* Reads and validates a promotion file; exits 2 with the file's name and
 * the failing field on error. The caller frees the result (promo_free). */
struct promo *ctl_read_promo(const char *path);

/* The person at the keyboard, as support commands and promotion changes
 * record them: who ran sudo ($SUDO_USER), else $USER, else the login
 * name of the user id. */
const char *ctl_operator(void);

/* Prints "error: ..." and exits 2. */
void ctl_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A new cache client for the config's "redis" (the caller frees it with
 * cache_free), or NULL when no cache is configured. */
struct cache *ctl_cache_open(struct ctl *c);

#endif
