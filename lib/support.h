/*
 * support.h - what support does by hand through luckydicectl: give dice
 * as a compensation, take dice back, and stop a reward that was not
 * delivered yet. Each call is one BEGIN IMMEDIATE transaction; each is
 * recorded in the ledger with the ticket, the reason and the operator,
 * and is idempotent by ticket (the same ticket twice changes nothing the
 * second time).
 *
 * Grants and revokes are rows of the grants table (reason 'support' and
 * 'revoke', ref = the ticket, note = "reason (by operator)"); a revoke's
 * amount is negative, so a balance is still the sum of its grants minus
 * what was spent, and the schema's CHECK (granted >= spent) backs the
 * "never below zero" rule checked here first.
 */
#ifndef LD_SUPPORT_H
#define LD_SUPPORT_H

#include "ledger.h"
#include "promo.h"

#define SUPPORT_AMOUNT_MAX 1000000
#define SUPPORT_TICKET_MAX 64
#define SUPPORT_REASON_MAX 200

enum support_outcome {
	SUPPORT_DONE = 0,
	SUPPORT_ALREADY,    /* the ticket was used before: r->uid, r->amount tell for whom */
	SUPPORT_BELOW_ZERO, /* revoke: the balance is smaller than the amount */
	SUPPORT_NO_DRAW,    /* revoke-reward: no such draw in this promotion */
	SUPPORT_NO_REWARD,  /* revoke-reward: the draw won nothing */
	SUPPORT_DELIVERED,  /* revoke-reward: the reward service has it already */
	SUPPORT_IN_FLIGHT,  /* revoke-reward: the dispatcher is sending it right now */
};

/* Who asks and why. ticket: 1..SUPPORT_TICKET_MAX of [A-Za-z0-9_-];
 * reason: 1..SUPPORT_REASON_MAX bytes of UTF-8 without control
 * characters; by: the operator at the keyboard. */
struct support_request {
	const char *ticket;
	const char *reason;
	const char *by;
};

struct support_result {
	struct ld_balance bal; /* after the change; the current one on a refusal */
	char uid[65];          /* ALREADY: whom the ticket was for; revoke-reward: the winner */
	int64_t amount;        /* ALREADY: what the ticket granted (negative: revoked) */
	char state[16];        /* revoke-reward: the reward event's state before */
	int revoked;           /* revoke-reward: events marked 'revoked' */
};

/* Checks a request's fields; LD_ERR_INVALID with a message naming the
 * field in err. */
enum ld_err support_check(const struct support_request *rq, char *err, size_t errlen);

/*
 * Gives (support_grant) or takes back (support_revoke) n tickets
 * (1..SUPPORT_AMOUNT_MAX) of uid in promotion p, and bumps the balance's
 * version. The caller publishes r->bal to the cache after a DONE.
 * Outcomes: DONE, ALREADY, and for a revoke BELOW_ZERO (nothing changed).
 */
enum ld_err support_grant(struct ledger *l, const struct promo *p, const char *uid, int64_t n,
			  const struct support_request *rq, int64_t now_ms, enum support_outcome *o,
			  struct support_result *r);
enum ld_err support_revoke(struct ledger *l, const struct promo *p, const char *uid, int64_t n,
			   const struct support_request *rq, int64_t now_ms,
			   enum support_outcome *o, struct support_result *r);

/*
 * Marks the reward.issue and notify.win events of draw draw_id 'revoked'
 * when the reward was not delivered (state pending or dead, and no
 * dispatcher lease running), noting ticket, reason and operator in their
 * last_error. The dispatcher only ever claims 'pending' rows, so a revoked
 * reward is never sent. Outcomes: DONE, ALREADY (revoked before),
 * NO_DRAW, NO_REWARD, DELIVERED, IN_FLIGHT (try again after the lease).
 */
enum ld_err support_revoke_reward(struct ledger *l, const struct promo *p, int64_t draw_id,
				  const struct support_request *rq, int64_t now_ms,
				  enum support_outcome *o, struct support_result *r);

#endif
