/*
 * cmd_support.c - grant, revoke, revoke-reward: what support does for one
 * user, through lib/support.c, with the cache updated after the commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "ctl.h"
#include "support.h"

#define STR_(x)                 #x
#define STR(x)                  STR_(x)
#define SUPPORT_AMOUNT_MAX_TEXT STR(SUPPORT_AMOUNT_MAX)

/* The request of a support command: --reason and --ticket (required by
 * the table), checked; dies naming what is wrong. */
static void support_request(const struct ctl_call *call, struct support_request *rq)
{
	char err[256];

	memset(rq, 0, sizeof *rq);
	rq->reason = ctl_value(call, "reason");
	rq->ticket = ctl_value(call, "ticket");
	rq->by = ctl_operator();
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
static void publish(struct ctl *c, const char *promo, const char *uid, const struct ld_balance *b)
{
	struct cache *cache = ctl_cache_open(c);

	if (!cache)
		return;
	if (cache_put(cache, promo, uid, b->version, BALANCE(*b), NULL) != LD_OK)
		ld_log(LOG_WARNING,
		       "warning: %s: the cache of '%s' was not updated"
		       " (it refills from the ledger; 'luckydicectl cache rebuild %s' fixes it now)",
		       cache_errmsg(cache), uid, promo);
	cache_free(cache);
}

static int revoke_reward(struct ctl *c, const struct promo *p, const char *draw,
			 const struct support_request *rq);

/* grant|revoke PROMO UID N --reason TEXT --ticket ID
 * revoke --reward DRAW_ID PROMO ... is revoke-reward. */
static int grant_or_revoke(struct ctl *c, int revoke, const struct ctl_call *call)
{
	const char *uid = call->argv[1];
	struct support_request rq;
	struct support_result r;
	enum support_outcome o;
	const struct promo *p;
	int64_t n;
	enum ld_err e;

	if (call->argc != 3)
		ctl_usage_error(call, "%s PROMO UID N", revoke ? "revoke" : "grant");
	support_request(call, &rq);
	if (!ld_is_ident(uid, 64))
		ctl_die("'%s' is not a valid user id (1-64 of A-Z a-z 0-9 _ -)", uid);
	n = parse_count(call->argv[2], "N");
	p = ctl_promo(c, call->argv[0]);
	e = (revoke ? support_revoke : support_grant)(ctl_ledger(c), p, uid, n, &rq, ld_now_ms(),
						      &o, &r);
	if (e != LD_OK)
		ctl_die("cannot %s: %s", revoke ? "revoke" : "grant", ledger_errmsg(c->ledger));
	switch (o) {
	case SUPPORT_DONE:
		publish(c, p->id, uid, &r.bal);
		printf("%s %lld %s '%s' in '%s' by ticket %s: balance %lld (version %lld)\n",
		       revoke ? "revoked" : "granted", (long long)n, revoke ? "from" : "to", uid,
		       p->id, rq.ticket, (long long)BALANCE(r.bal), (long long)r.bal.version);
		return 0;
	case SUPPORT_ALREADY:
		printf("already %s by ticket %s (%lld to '%s'); nothing changed\n",
		       revoke ? "revoked" : "granted", rq.ticket,
		       (long long)(r.amount < 0 ? -r.amount : r.amount), r.uid);
		return 0;
	case SUPPORT_BELOW_ZERO:
		ld_log(LOG_ERR,
		       "error: cannot revoke %lld from '%s': the balance is %lld"
		       " (granted %lld, spent %lld) and never goes below zero",
		       (long long)n, uid, (long long)BALANCE(r.bal), (long long)r.bal.granted,
		       (long long)r.bal.spent);
		return CTL_EXIT_PROBLEM;
	default: ctl_die("unexpected outcome %d", (int)o);
	}
}

static int grant_run(struct ctl *c, const struct ctl_call *call)
{
	return grant_or_revoke(c, 0, call);
}

static int revoke_run(struct ctl *c, const struct ctl_call *call)
{
	struct support_request rq;
	const char *draw = ctl_value(call, "reward");

	if (!draw)
		return grant_or_revoke(c, 1, call);
	if (call->argc != 1)
		ctl_usage_error(call, "revoke --reward DRAW_ID PROMO");
	support_request(call, &rq);
	return revoke_reward(c, ctl_promo(c, call->argv[0]), draw, &rq);
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
		       " %d event(s) will not be sent\n",
		       id, r.uid, r.state, rq->ticket, r.revoked);
		return 0;
	case SUPPORT_ALREADY:
		printf("the reward of draw %lld was already revoked; nothing changed\n", id);
		return 0;
	case SUPPORT_NO_DRAW:
		ld_log(LOG_ERR, "error: no draw %lld in promotion '%s'", id, p->id);
		return 1;
	case SUPPORT_NO_REWARD:
		ld_log(LOG_ERR, "error: draw %lld of '%s' won nothing: no reward to revoke", id,
		       r.uid);
		return 1;
	case SUPPORT_DELIVERED:
		ld_log(LOG_ERR,
		       "error: cannot revoke the reward of draw %lld: it was delivered"
		       " to the reward service already (take it back there)",
		       id);
		return 1;
	case SUPPORT_IN_FLIGHT:
		ld_log(LOG_ERR,
		       "error: the reward of draw %lld is being sent right now;"
		       " try again in a minute",
		       id);
		return 1;
	default: ctl_die("unexpected outcome %d", (int)o);
	}
}

/* revoke-reward PROMO DRAW_ID --reason TEXT --ticket ID */
static int revoke_reward_run(struct ctl *c, const struct ctl_call *call)
{
	struct support_request rq;

	support_request(call, &rq);
	return revoke_reward(c, ctl_promo(c, call->argv[0]), call->argv[1], &rq);
}

#define SUPPORT_OPTS                                                                         \
	{ "reason", "TEXT", "why, in words (kept with the change, shown by user show)", 1 }, \
	{                                                                                    \
		"ticket", "ID", "the support ticket: a change is made once per ticket", 1    \
	}

/* clang-format off */
const struct ctl_cmd ctl_cmds_support[] = {
	{ "grant", NULL, grant_run, "PROMO UID N", 3, 3, 0,
	  "give N dice to a user (support compensation, once per ticket)",
	  "Grants N dice (1-" SUPPORT_AMOUNT_MAX_TEXT ") to user UID in promotion PROMO, recording the\n"
	  "reason, the ticket and the operator ($SUDO_USER, else $USER). The same\n"
	  "ticket again changes nothing. The cache is updated after the commit.",
	  NULL, { SUPPORT_OPTS, { NULL } } },
	{ "revoke", NULL, revoke_run, "PROMO UID N", 1, 3, 0,
	  "take N dice back from a user (never below zero)",
	  "Takes N dice back from user UID in promotion PROMO, recorded like a grant;\n"
	  "never below zero (refused, exit 1). 'revoke --reward DRAW_ID PROMO' is\n"
	  "revoke-reward.",
	  "0 done (or done before by this ticket); 1 refused: the balance would go\n"
	  "below zero, or (--reward) the reward cannot be revoked; 2 cannot run",
	  { SUPPORT_OPTS,
	    { "reward", "DRAW_ID", "revoke the reward of this draw instead (revoke-reward)", 0 },
	    { NULL } } },
	{ "revoke-reward", NULL, revoke_reward_run, "PROMO DRAW_ID", 2, 2, 0,
	  "stop the undelivered reward of a draw",
	  "Stops the reward of draw DRAW_ID in promotion PROMO from being sent: its\n"
	  "reward.issue and notify.win events will not be delivered. Refused when\n"
	  "the reward was delivered already or is being sent right now.",
	  "0 done (or revoked before); 1 refused: no such draw, the draw won nothing,\n"
	  "the reward was delivered or is in flight; 2 cannot run",
	  { SUPPORT_OPTS, { NULL } } },
	{ NULL },
};
/* clang-format on */
