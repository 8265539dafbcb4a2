/*
 * cmd_support.c - grant, revoke, revoke-reward: what support does for one
 * user, through lib/support.c, with the cache updated after the commit.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "ctl.h"
#include "support.h"

/* The person at the keyboard: who ran sudo, else the login user. */
static const char *operator_name(void)
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

/* Parses --reason TEXT --ticket ID (any order) from argv[from..]; dies on
 * anything else. */
static void parse_request(int argc, char **argv, int from, struct support_request *rq,
			  const char *usage)
{
	char err[256];

	memset(rq, 0, sizeof *rq);
	for (int i = from; i < argc; i++) {
		if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
			rq->reason = argv[++i];
		else if (strcmp(argv[i], "--ticket") == 0 && i + 1 < argc)
			rq->ticket = argv[++i];
		else
			ctl_die("usage: %s", usage);
	}
	if (!rq->reason || !rq->ticket)
		ctl_die("usage: %s", usage);
	rq->by = operator_name();
	if (support_check(rq, err, sizeof err) != LD_OK)
		ctl_die("%s", err);
}

static int64_t parse_count(const char *s, const char *what)
{
	char *end;
	long long n = strtoll(s, &end, 10);

	if (*s < '1' || *s > '9' || *end || n < 1 || n > SUPPORT_AMOUNT_MAX)
		ctl_die("%s: '%s' is not a number from 1 to %d", what, s, SUPPORT_AMOUNT_MAX);
	return n;
}

/* After a commit: publish the new balance like the service does. */
static void publish(struct ctl *c, const char *promo, const char *uid,
		    const struct ld_balance *b)
{
	struct cache *cache = ctl_cache_open(c);
	int rc;

	if (!cache)
		return;
	rc = cache_put(cache, promo, uid, b->version, BALANCE(*b));
	if (rc < 0)
		fprintf(stderr, "warning: redis unavailable: the cache of '%s' was not updated"
			" (it refills from the ledger; 'luckydicectl cache rebuild %s' fixes it now)\n",
			uid, promo);
	cache_free(cache);
}

static int revoke_reward(struct ctl *c, const struct promo *p, const char *draw,
			 const struct support_request *rq);

/* grant|revoke PROMO UID N --reason TEXT --ticket ID
 * revoke --reward DRAW_ID PROMO ... is revoke-reward. */
static int grant_or_revoke(struct ctl *c, int revoke, int argc, char **argv)
{
	const char *usage = revoke
		? "luckydicectl revoke PROMO UID N --reason TEXT --ticket ID"
		: "luckydicectl grant PROMO UID N --reason TEXT --ticket ID";
	struct support_request rq;
	struct support_result r;
	enum support_outcome o;
	const struct promo *p;
	int64_t n;
	enum ld_err e;

	if (revoke && argc >= 2 && strcmp(argv[1], "--reward") == 0) {
		if (argc < 4)
			ctl_die("usage: luckydicectl revoke --reward DRAW_ID PROMO --reason TEXT --ticket ID");
		parse_request(argc, argv, 4, &rq,
			      "luckydicectl revoke --reward DRAW_ID PROMO --reason TEXT --ticket ID");
		return revoke_reward(c, ctl_promo(c, argv[3]), argv[2], &rq);
	}
	if (argc < 4)
		ctl_die("usage: %s", usage);
	parse_request(argc, argv, 4, &rq, usage);
	if (!ld_is_ident(argv[2], 64))
		ctl_die("'%s' is not a valid user id (1-64 of A-Z a-z 0-9 _ -)", argv[2]);
	n = parse_count(argv[3], "N");
	p = ctl_promo(c, argv[1]);
	e = (revoke ? support_revoke : support_grant)(ctl_ledger(c), p, argv[2], n, &rq,
						      ld_now_ms(), &o, &r);
	if (e != LD_OK)
		ctl_die("cannot %s: %s", revoke ? "revoke" : "grant", ledger_errmsg(c->ledger));
	switch (o) {
	case SUPPORT_DONE:
		publish(c, p->id, argv[2], &r.bal);
		printf("%s %lld %s '%s' in '%s' by ticket %s: balance %lld (version %lld)\n",
		       revoke ? "revoked" : "granted", (long long)n, revoke ? "from" : "to",
		       argv[2], p->id, rq.ticket,
		       (long long)BALANCE(r.bal), (long long)r.bal.version);
		return 0;
	case SUPPORT_ALREADY:
		printf("already %s by ticket %s (%lld to '%s'); nothing changed\n",
		       revoke ? "revoked" : "granted", rq.ticket,
		       (long long)(r.amount < 0 ? -r.amount : r.amount), r.uid);
		return 0;
	case SUPPORT_BELOW_ZERO:
		fprintf(stderr, "error: cannot revoke %lld from '%s': the balance is %lld"
			" (granted %lld, spent %lld) and never goes below zero\n",
			(long long)n, argv[2], (long long)BALANCE(r.bal),
			(long long)r.bal.granted, (long long)r.bal.spent);
		return 1;
	default:
		ctl_die("unexpected outcome %d", (int)o);
	}
}

int cmd_grant(struct ctl *c, int argc, char **argv)
{
	return grant_or_revoke(c, 0, argc, argv);
}

int cmd_revoke(struct ctl *c, int argc, char **argv)
{
	return grant_or_revoke(c, 1, argc, argv);
}

static int revoke_reward(struct ctl *c, const struct promo *p, const char *draw,
			 const struct support_request *rq)
{
	struct support_result r;
	enum support_outcome o;
	long long id;
	char *end;

	id = strtoll(draw, &end, 10);
	if (*draw < '1' || *draw > '9' || *end || id < 1)
		ctl_die("DRAW_ID: '%s' is not a draw id", draw);
	if (support_revoke_reward(ctl_ledger(c), p, id, rq, ld_now_ms(), &o, &r) != LD_OK)
		ctl_die("cannot revoke reward: %s", ledger_errmsg(c->ledger));
	switch (o) {
	case SUPPORT_DONE:
		printf("revoked the reward of draw %lld ('%s', was %s) by ticket %s:"
		       " %d event(s) will not be sent\n", id, r.uid, r.state, rq->ticket, r.revoked);
		return 0;
	case SUPPORT_ALREADY:
		printf("the reward of draw %lld was already revoked; nothing changed\n", id);
		return 0;
	case SUPPORT_NO_DRAW:
		fprintf(stderr, "error: no draw %lld in promotion '%s'\n", id, p->id);
		return 1;
	case SUPPORT_NO_REWARD:
		fprintf(stderr, "error: draw %lld of '%s' won nothing: no reward to revoke\n", id, r.uid);
		return 1;
	case SUPPORT_DELIVERED:
		fprintf(stderr, "error: cannot revoke the reward of draw %lld: it was delivered"
			" to the reward service already (take it back there)\n", id);
		return 1;
	case SUPPORT_IN_FLIGHT:
		fprintf(stderr, "error: the reward of draw %lld is being sent right now;"
			" try again in a minute\n", id);
		return 1;
	default:
		ctl_die("unexpected outcome %d", (int)o);
	}
}

/* revoke-reward PROMO DRAW_ID --reason TEXT --ticket ID */
int cmd_revoke_reward(struct ctl *c, int argc, char **argv)
{
	static const char usage[] =
		"luckydicectl revoke-reward PROMO DRAW_ID --reason TEXT --ticket ID";
	struct support_request rq;

	if (argc < 3)
		ctl_die("usage: %s", usage);
	parse_request(argc, argv, 3, &rq, usage);
	return revoke_reward(c, ctl_promo(c, argv[1]), argv[2], &rq);
}
