/*
 * main.c - luckydicectl: the global options, the table of command
 * tables, finding the command (and subcommand) named on the command line,
 * and what the commands share (the ledger, promotions, JSON output).
 * Parsing a command's own options is args.c's.
 */
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ctl.h"

/* Every command, in the order luckydicectl --help lists them. */
static const struct ctl_cmd *const tables[] = {
	ctl_cmds_basic, ctl_cmds_secrets, ctl_cmds_stats,  ctl_cmds_user,   ctl_cmds_support,
	ctl_cmds_cache, ctl_cmds_export,  ctl_cmds_outbox, ctl_cmds_ledger, ctl_cmds_operator,
};
#define NTABLES (sizeof tables / sizeof tables[0])

void ctl_die(const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ld_log(LOG_ERR, "error: %s", msg);
	exit(CTL_EXIT_USAGE);
}

const char *ctl_operator(void)
{
	const char *u = getenv("SUDO_USER");
	struct passwd *pw;

	if (u && *u)
		return u;
	if ((u = getenv("USER")) && *u)
		return u;
	pw = getpwuid(getuid());
	return pw ? pw->pw_name : "unknown";
}

void ctl_print_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

struct ledger *ctl_ledger(struct ctl *c)
{
	struct ledger_options lo = { 0 };
	char err[512];

	if (c->ledger)
		return c->ledger;
	lo.busy_timeout_ms = c->cfg.busy_timeout_ms;
	lo.synchronous_full = c->cfg.synchronous_full;
	lo.create = c->create;
	if (ledger_open(c->cfg.db, &lo, &c->ledger, err, sizeof err) != LD_OK)
		ctl_die("%s", err);
	if (!c->create && ledger_check_schema(c->ledger) != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	return c->ledger;
}

const struct promo *ctl_promo(struct ctl *c, const char *id)
{
	const struct promo *p = ledger_promo(ctl_ledger(c), id, ld_now_ms());

	if (!p)
		ctl_die("no promotion '%s' (see 'luckydicectl promo list')", id);
	return p;
}

struct promo *ctl_read_promo(const char *path)
{
	char err[512];
	struct promo *p;
	size_t len;
	char *json;

	if (ld_read_file(path, PROMO_FILE_MAX, &json, &len, err, sizeof err) != LD_OK)
		ctl_die("%s", err);
	if (promo_parse(json, len, &p, err, sizeof err) != LD_OK) {
		free(json);
		ctl_die("promotion file '%s': %s", path, err);
	}
	free(json);
	return p;
}

/* Whether some command is in group. */
static int group_exists(const char *group)
{
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct ctl_cmd *cmd = tables[t]; cmd->group; cmd++)
			if (strcmp(cmd->group, group) == 0)
				return 1;
	return 0;
}

/* The command "group name", or with name NULL the group that is a command
 * itself ("stats"); NULL when there is none. */
static const struct ctl_cmd *find_cmd(const char *group, const char *name)
{
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct ctl_cmd *cmd = tables[t]; cmd->group; cmd++)
			if (strcmp(cmd->group, group) == 0 &&
			    (name ? cmd->name && strcmp(cmd->name, name) == 0 : !cmd->name))
				return cmd;
	return NULL;
}

/* Every command of group: its synopsis, then its summary. */
static void group_lines(const char *group, FILE *f)
{
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct ctl_cmd *cmd = tables[t]; cmd->group; cmd++)
			if (strcmp(cmd->group, group) == 0) {
				fputs("  ", f);
				ctl_synopsis(cmd, f);
				fprintf(f, "\n      %s\n", cmd->summary);
			}
}

/* Whether cmd is the first command of its group in the tables. */
static int first_of_group(const struct ctl_cmd *cmd)
{
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct ctl_cmd *x = tables[t]; x->group; x++)
			if (strcmp(x->group, cmd->group) == 0)
				return x == cmd;
	return 0;
}

static void help(FILE *f)
{
	fputs("usage: luckydicectl [--config FILE] COMMAND [ARGUMENTS] [OPTIONS]\n"
	      "       luckydicectl COMMAND --help\n"
	      "       luckydicectl --help | --version\n\n"
	      "The operator's tool of luckydice: the database, promotions, secrets and tokens,\n"
	      "support, the balance cache, reports and the outbox. Options may come before or\n"
	      "after the arguments.\n\ncommands:\n",
	      f);
	/* each group together, in the order the tables first name it */
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct ctl_cmd *cmd = tables[t]; cmd->group; cmd++)
			if (first_of_group(cmd))
				group_lines(cmd->group, f);
	fputs("\noptions (also after the command):\n", f);
	ctl_config_help(f);
	fputs("  -h, --help             print this help and exit (after a command: its help)\n"
	      "  --version              print the version and exit\n\n"
	      "exit status: 0 done; 1 the command ran and found a problem (cache drift, a refused\n"
	      "revoke, ...: see the command's --help); 2 cannot run (usage, config, database).\n\n"
	      "See luckydicectl(8), luckydice.json(5), luckydice-promotion(5).\n",
	      f);
}

/* The subcommands of group, for "luckydicectl promo --help" and its
 * usage error. */
static void group_help(const char *group, FILE *f)
{
	fprintf(f, "usage: luckydicectl %s COMMAND ...\n\ncommands:\n", group);
	group_lines(group, f);
	fprintf(f, "\n'luckydicectl %s COMMAND --help' describes one.\n", group);
}

static int is_help(const char *s)
{
	return strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0;
}

/* luckydicectl help [GROUP [NAME]]: the help of what is named. */
static int help_cmd(int argc, char **argv)
{
	const struct ctl_cmd *cmd;

	if (argc == 0) {
		help(stdout);
		return 0;
	}
	if (!group_exists(argv[0]))
		ctl_die("unknown command '%s' (see 'luckydicectl --help')", argv[0]);
	if ((cmd = find_cmd(argv[0], argc > 1 ? argv[1] : NULL)))
		ctl_cmd_help(cmd, stdout);
	else if (argc == 1)
		group_help(argv[0], stdout);
	else
		ctl_die("unknown command '%s %s' (see 'luckydicectl %s --help')", argv[0], argv[1],
			argv[0]);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const struct ctl_cmd *cmd;
	const char *group;
	struct ctl c;
	int ch, rc;

	memset(&c, 0, sizeof c);
	/* "+": the first operand is the command; its options are its own. */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:h", longs, NULL)) != -1) {
		switch (ch) {
		case 'c': c.config_path = optarg; break;
		case 'h': help(stdout); return 0;
		case 'V': printf("luckydicectl (luckydice) %s\n", PACKAGE_VERSION); return 0;
		case ':':
			ld_log(LOG_ERR, "error: option '%s' needs an argument", argv[optind - 1]);
			return CTL_EXIT_USAGE;
		default:
			ld_log(LOG_ERR, "error: unknown option '%s' (see 'luckydicectl --help')",
			       argv[optind - 1]);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		help(stderr);
		return CTL_EXIT_USAGE;
	}
	group = argv[optind];
	if (strcmp(group, "help") == 0)
		return help_cmd(argc - optind - 1, argv + optind + 1);
	if (!group_exists(group))
		ctl_die("unknown command '%s' (see 'luckydicectl --help')", group);
	if (sodium_init() < 0)
		ctl_die("cannot initialise libsodium");
	if ((cmd = find_cmd(group, NULL))) {
		rc = ctl_run(&c, cmd, argc - optind, argv + optind);
	} else {
		const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
		if (name && is_help(name)) {
			group_help(group, stdout);
			return 0;
		}
		if (!name || name[0] == '-' || !(cmd = find_cmd(group, name))) {
			if (name)
				ld_log(LOG_ERR, "error: unknown command '%s %s'", group, name);
			group_help(group, stderr);
			return CTL_EXIT_USAGE;
		}
		rc = ctl_run(&c, cmd, argc - optind - 1, argv + optind + 1);
	}
	ledger_free(c.ledger);
	config_release(&c.cfg);
	return rc;
}
