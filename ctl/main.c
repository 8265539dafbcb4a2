/*
 * main.c - luckydicectl: parses the command name and hands over to
 * cmd_<name>() with the config loaded.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ctl.h"

struct command {
	const char *name;
	int (*fn)(struct ctl *c, int argc, char **argv);
	int needs_config;
	const char *usage;
};

static const struct command commands[] = {
	{ "init", cmd_init, 1, "init                       create or migrate the database" },
	{ "promo", cmd_promo, 1, "promo load FILE | list | show ID | simulate FILE --participants N\n"
	  "        [--draws-per-user K] [--invited F] [--seed S] [--hourly]   dry run, writes nothing" },
	{ "stats", cmd_stats, 1, "stats PROMO [--json]       per local day: visits, invites, draws, wins, stock left" },
	{ "token", cmd_token, 1, "token [--ttl SECONDS] UID...   one token per line" },
	{ "user", cmd_user, 1, "user show PROMO UID [--json]   grants, invites, draws, rewards, balance vs cache" },
	{ "grant", cmd_grant, 1, "grant PROMO UID N --reason TEXT --ticket ID   support compensation" },
	{ "revoke", cmd_revoke, 1, "revoke PROMO UID N --reason TEXT --ticket ID   take dice back (never below 0)" },
	{ "revoke-reward", cmd_revoke_reward, 1, "revoke-reward PROMO DRAW_ID --reason TEXT --ticket ID   stop an undelivered reward" },
	{ "cache", cmd_cache, 1, "cache verify PROMO | rebuild PROMO" },
	{ "export", cmd_export, 1, "export winners PROMO [--day YYYY-MM-DD]   RFC 4180 CSV on stdout" },
	{ "outbox", cmd_outbox, 1, "outbox list [--dead] [--all] [--limit N] | retry ID | retry --all-dead" },
};

void ctl_die(const char *fmt, ...)
{
	va_list ap;

	fputs("error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
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

static void usage(FILE *f)
{
	fputs("usage: luckydicectl COMMAND ...   (config from $LUCKYDICE_CONFIG)\n", f);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %s\n", commands[i].usage);
}

int main(int argc, char **argv)
{
	struct ctl c;
	char err[512];
	int rc;

	memset(&c, 0, sizeof c);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (sodium_init() < 0)
		ctl_die("cannot initialise libsodium");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(commands[i].name, argv[1]) != 0)
			continue;
		/* promo simulate is a dry run of a file: no config needed */
		if (commands[i].needs_config &&
		    !(argc > 2 && strcmp(argv[1], "promo") == 0 && strcmp(argv[2], "simulate") == 0) &&
		    config_load_default(&c.cfg, err, sizeof err) != LD_OK)
			ctl_die("%s", err);
		rc = commands[i].fn(&c, argc - 1, argv + 1);
		ledger_free(c.ledger);
		config_release(&c.cfg);
		return rc;
	}
	fprintf(stderr, "error: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
