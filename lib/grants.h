/*
 * grants.h - tickets given and taken back: the one path every grant
 * takes, the rules' (visit, invite) and support's (compensation, revoke)
 * alike. A grant is a row of the grants table, which the schema's unique
 * indexes keep from happening twice (one visit grant per user, one
 * support grant per ticket, ...), and a change of the user's balances
 * row; both inside the caller's transaction.
 */
#ifndef LD_GRANTS_H
#define LD_GRANTS_H

#include "db.h"
#include "ledger.h"

struct grant {
	const char *promo, *uid;
	const char *reason; /* visit, inviter, invitee, support or revoke */
	int64_t amount;     /* negative for a revoke */
	const char *ref;    /* the invitee (inviter grant), the inviter (invitee
			     * grant), the ticket (support, revoke); may be NULL */
	const char *note;   /* support's "reason (by operator)"; may be NULL */
	const char *day;    /* the promotion-local day, "YYYY-MM-DD" */
	int64_t now_ms;
};

/* Records g unless a unique index says this grant exists already
 * (*inserted = 0). The balance is the caller's: grant_balance_add, or
 * grant_add for both. */
enum ld_err grant_record(struct db *db, const struct grant *g, int *inserted);

/*
 * Adds amount tickets to uid's balance and bumps its version; bal gets
 * the balance after. A positive amount makes the user's balances row on
 * their first grant (first seen: now_ms), in one statement, so a
 * request changes each balances row once. A negative amount takes back
 * from a row that exists; the schema's CHECK (granted >= spent) refuses
 * to go below zero, which callers check first to answer with a refusal.
 */
enum ld_err grant_balance_add(struct ledger *l, const char *promo, const char *uid, int64_t amount,
			      int64_t now_ms, struct ld_balance *bal);

/* grant_record, then grant_balance_add when the grant is new; bal is
 * untouched otherwise. */
enum ld_err grant_add(struct ledger *l, const struct grant *g, int *inserted,
		      struct ld_balance *bal);

#endif
