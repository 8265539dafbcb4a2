/*
 * cmd_basic.c - init, promo load|list|show, token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "token.h"

int cmd_init(struct ctl *c, int argc, char **argv)
{
	int from, to;

	(void)argv;
	if (argc != 1)
		ctl_die("usage: luckydicectl init");
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
static int promo_load(struct ctl *c, const char *path)
{
	struct promo *p;
	int created;

	p = ctl_read_promo(path);
	if (ledger_promo_store(ctl_ledger(c), p, ld_now_ms(), &created) != LD_OK) {
		promo_free(p);
		ctl_die("%s", ledger_errmsg(c->ledger));
	}
	printf("%s promotion '%s' (%s to %s, %s, %zu prizes)\n", created ? "loaded" : "updated",
	       p->id, p->first_day, p->last_day, p->time_zone, p->nprizes);
	promo_free(p);
	return 0;
}

static int promo_list(struct ctl *c)
{
	int64_t now = ld_now_ms();
	const struct promo *const *ps;
	size_t n;

	ps = ledger_promos(ctl_ledger(c), now, &n);
	for (size_t i = 0; i < n; i++)
		printf("%-24s %s..%s %-16s %-8s %s\n", ps[i]->id, ps[i]->first_day,
		       ps[i]->last_day, ps[i]->time_zone,
		       promo_active(ps[i], now) ? "active" : promo_day(ps[i], now) < 0
		       ? "upcoming" : "ended", ps[i]->name);
	return 0;
}

int cmd_promo(struct ctl *c, int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "load") == 0)
		return promo_load(c, argv[2]);
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return promo_list(c);
	if (argc >= 3 && strcmp(argv[1], "simulate") == 0)
		return ctl_promo_simulate(c, argc, argv);
	if (argc == 3 && strcmp(argv[1], "show") == 0) {
		puts(ctl_promo(c, argv[2])->json);
		return 0;
	}
	ctl_die("usage: luckydicectl promo load FILE | list | show ID | simulate FILE ...");
}

/* token [--ttl SECONDS] UID...: one token per UID, one per line. */
int cmd_token(struct ctl *c, int argc, char **argv)
{
	struct token_key key;
	char err[512], tok[TOKEN_MAX];
	long long ttl = 30 * 86400;
	int i = 1;

	if (argc > 2 && strcmp(argv[1], "--ttl") == 0) {
		char *end;
		ttl = strtoll(argv[2], &end, 10);
		if (*end || ttl <= 0 || ttl > 10LL * 365 * 86400)
			ctl_die("--ttl: '%s' is not a number of seconds", argv[2]);
		i = 3;
	}
	if (i >= argc)
		ctl_die("usage: luckydicectl token [--ttl SECONDS] UID...");
	if (token_key_load(c->cfg.token_secret_file, &key, err, sizeof err) != LD_OK)
		ctl_die("%s", err);
	for (; i < argc; i++) {
		if (token_issue(&key, argv[i], ld_now_ms() / 1000 + ttl, tok) != LD_OK) {
			token_key_release(&key);
			ctl_die("'%s' is not a valid user id (1-64 of A-Z a-z 0-9 _ -)", argv[i]);
		}
		puts(tok);
	}
	token_key_release(&key);
	return 0;
}
