/*
 * cmd_basic.c - init, promo load|list|show, token.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "token.h"

/*
 * As root, a database that does not exist yet is made (empty) for the
 * owner of its directory - the service's user, who owns the state
 * directory - so that the service can write what root created. SQLite
 * gives the -wal and -shm files it makes as root the database file's
 * owner, so later commands run as root leave the service's files alone.
 */
static void init_owner(const char *db)
{
	char *dir, *slash;
	struct stat st;
	int found, fd;

	/* the config makes "db" absolute: its directory is before the last '/' */
	if (geteuid() != 0 || access(db, F_OK) == 0 || !(slash = strrchr(db, '/')))
		return;
	dir = slash == db ? xstrdup("/") : xstrndup(db, (size_t)(slash - db));
	found = stat(dir, &st) == 0 && st.st_uid != 0;
	free(dir);
	if (!found)
		return;
	if ((fd = open(db, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) < 0)
		ctl_die("cannot create database '%s': %s", db, strerror(errno));
	if (fchown(fd, st.st_uid, st.st_gid) != 0)
		ctl_die("cannot give database '%s' to the owner of its directory: %s", db,
			strerror(errno));
	close(fd);
}

/* init: create the database, or apply the migrations it lacks. */
static int init_run(struct ctl *c, const struct ctl_call *call)
{
	int from, to;

	(void)call;
	init_owner(c->cfg.db);
	c->create = 1;
	if (ledger_migrate(ctl_ledger(c), &from, &to) != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	if (from == to)
		printf("database '%s' is at schema version %d\n", c->cfg.db, to);
	else
		printf("database '%s' migrated from schema version %d to %d\n", c->cfg.db, from, to);
	return 0;
}

/* promo load FILE: validate, then store (insert or update by id). */
static int promo_load(struct ctl *c, const struct ctl_call *call)
{
	struct promo *p;
	int created;

	p = ctl_read_promo(call->argv[0]);
	if (ledger_promo_store(ctl_ledger(c), p, ld_now_ms(), &created) != LD_OK) {
		promo_free(p);
		ctl_die("%s", ledger_errmsg(c->ledger));
	}
	printf("%s promotion '%s' (%s to %s, %s, %zu prizes)\n", created ? "loaded" : "updated",
	       p->id, p->first_day, p->last_day, p->time_zone, p->nprizes);
	promo_free(p);
	return 0;
}

static const char *promo_state(const struct promo *p, int64_t now)
{
	return promo_active(p, now) ? "active" : promo_day(p, now) < 0 ? "upcoming" : "ended";
}

static int promo_list(struct ctl *c, const struct ctl_call *call)
{
	int64_t now = ld_now_ms();
	const struct promo *const *ps;
	struct json_object *arr;
	size_t n;

	ps = ledger_promos(ctl_ledger(c), now, &n);
	if (!ctl_flag(call, "json")) {
		for (size_t i = 0; i < n; i++)
			printf("%-24s %s..%s %-16s %-8s %s\n", ps[i]->id, ps[i]->first_day,
			       ps[i]->last_day, ps[i]->time_zone, promo_state(ps[i], now),
			       ps[i]->name);
		return 0;
	}
	arr = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(ps[i]->id));
		json_object_object_add(o, "name", json_object_new_string(ps[i]->name));
		json_object_object_add(o, "time_zone", json_object_new_string(ps[i]->time_zone));
		json_object_object_add(o, "first_day", json_object_new_string(ps[i]->first_day));
		json_object_object_add(o, "last_day", json_object_new_string(ps[i]->last_day));
		json_object_object_add(o, "state", json_object_new_string(promo_state(ps[i], now)));
		json_object_object_add(o, "prizes", json_object_new_int64((int64_t)ps[i]->nprizes));
		json_object_array_add(arr, o);
	}
	{
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "promotions", arr);
		ctl_print_json(o);
	}
	return 0;
}

/* promo show ID: the rules in words, or with --json the definition as
 * stored (a promotion file: "promo load" takes it back). */
static int promo_show(struct ctl *c, const struct ctl_call *call)
{
	const struct promo *p = ctl_promo(c, call->argv[0]);
	int64_t now = ld_now_ms();
	char hours[32];

	if (ctl_flag(call, "json")) {
		puts(p->json);
		return 0;
	}
	snprintf(hours, sizeof hours, "%g", (double)p->invitee_new_within_ms / 3600000.0);
	printf("promotion  %s (%s)\n", p->id, p->name);
	printf("days       %s..%s, %d days in %s, %s\n", p->first_day, p->last_day, p->ndays,
	       p->time_zone, promo_state(p, now));
	printf("grants     visit %lld, inviter %lld, invitee %lld\n", (long long)p->grant_visit,
	       (long long)p->grant_inviter, (long long)p->grant_invitee);
	printf("invites    at most %lld credited per inviter; an invitee is new for %s hours\n",
	       (long long)p->max_credited_per_inviter, hours);
	if (p->claims_per_client_per_day)
		printf("abuse      at most %lld credited claims per client per day\n",
		       (long long)p->claims_per_client_per_day);
	printf("prizes     %zu\n", p->nprizes);
	for (size_t i = 0; i < p->nprizes; i++) {
		const struct promo_prize *z = &p->prizes[i];
		int64_t total = 0;
		for (int d = 0; d < p->ndays; d++)
			total += z->stock[d];
		printf("  %-16s %-9s daily %-8lld total %-9lld probability %-10.9g %s\n", z->id,
		       z->release == RELEASE_EVEN ? "even" : "midnight", (long long)z->daily_stock,
		       (long long)total, z->probability, z->name);
	}
	return 0;
}

/* token [--ttl SECONDS] UID...: one token per UID, one per line. */
static int token_run(struct ctl *c, const struct ctl_call *call)
{
	long long ttl = ctl_number(call, "ttl", 1, 10LL * 365 * 86400, 30 * 86400);
	int64_t expiry = ld_now_ms() / 1000 + ttl;
	struct json_object *arr = NULL, *o;
	struct token_key key;
	char err[512], tok[TOKEN_MAX];

	for (int i = 0; i < call->argc; i++)
		if (!ld_is_ident(call->argv[i], TOKEN_UID_MAX))
			ctl_die("'%s' is not a valid user id (1-64 of A-Z a-z 0-9 _ -)", call->argv[i]);
	if (token_key_load(c->cfg.token_secret_file, &key, err, sizeof err) != LD_OK)
		ctl_die("%s", err);
	if (ctl_flag(call, "json"))
		arr = json_object_new_array();
	for (int i = 0; i < call->argc; i++) {
		if (token_issue(&key, call->argv[i], expiry, tok) != LD_OK) {
			token_key_release(&key);
			ctl_die("cannot issue a token for '%s'", call->argv[i]);
		}
		if (!arr) {
			puts(tok);
			continue;
		}
		o = json_object_new_object();
		json_object_object_add(o, "user", json_object_new_string(call->argv[i]));
		json_object_object_add(o, "token", json_object_new_string(tok));
		json_object_object_add(o, "expires", json_object_new_int64(expiry));
		json_object_array_add(arr, o);
	}
	token_key_release(&key);
	if (arr) {
		o = json_object_new_object();
		json_object_object_add(o, "tokens", arr);
		ctl_print_json(o);
	}
	return 0;
}

const struct ctl_cmd ctl_cmds_basic[] = {
	{ "init", NULL, init_run, "", 0, 0, 0,
	  "create the database, or apply the migrations it lacks",
	  "Creates the database named by \"db\" in the config, or applies the\n"
	  "migrations it does not have yet (each in its own transaction), and prints\n"
	  "its schema version. Run as root, a new database file is given to the owner\n"
	  "of its directory (the service's user).",
	  NULL, { { NULL } } },
	{ "promo", "load", promo_load, "FILE", 1, 1, 0,
	  "validate a promotion file and store it (insert, or update by id)",
	  "Reads and validates the promotion file FILE (luckydice-promotion(5)) and\n"
	  "stores it. An error names the field; nothing is stored then. Loading the\n"
	  "same id again updates the rules without touching what was granted or won.",
	  NULL, { { NULL } } },
	{ "promo", "list", promo_list, "", 0, 0, 0,
	  "the stored promotions: id, days, time zone, state, name",
	  "Lists the stored promotions, one a line: id, first..last day, time zone,\n"
	  "state (upcoming, active or ended) and name.",
	  NULL, { CTL_OPT_JSON, { NULL } } },
	{ "promo", "show", promo_show, "ID", 1, 1, 0,
	  "one promotion's rules; with --json its definition as stored",
	  "Shows promotion ID: its days and state, grants, invite rules, client cap\n"
	  "and each prize (release, daily and total stock, probability). With --json,\n"
	  "prints the definition as stored, a promotion file that 'promo load' takes.",
	  "0 shown; 2 no such promotion, or cannot run (usage, config, database)",
	  { CTL_OPT_JSON, { NULL } } },
	{ "token", NULL, token_run, "UID...", 1, -1, 0,
	  "a signed user token for each UID, one per line",
	  "Prints a token (uid.expiry.signature, signed with \"token_secret_file\") for\n"
	  "each UID, one a line, valid for --ttl seconds (30 days by default). A UID\n"
	  "is 1-64 of A-Z a-z 0-9 _ -; one starting with '-' goes after \"--\".",
	  NULL,
	  { { "ttl", "SECONDS", "how long the tokens are valid (default 2592000, 30 days)", 0 },
	    CTL_OPT_JSON, { NULL } } },
	{ NULL },
};
