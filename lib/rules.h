/*
 * rules.h - the rules of a promotion: visit grants, invite codes and
 * claims, draws. Each call is one BEGIN IMMEDIATE transaction on the
 * ledger: either everything it decides is recorded (grants, balances,
 * invites, draws, stock, outbox rows) or nothing is.
 *
 * Return values: enum ld_err for failures (database, busy); the business
 * answer is *outcome (RULE_OK or a refusal), so "no tickets" is a value,
 * not an error. Times are passed in (now_ms), never read here.
 */
#ifndef LD_RULES_H
#define LD_RULES_H

#include "ledger.h"
#include "promo.h"

#define INVITE_CODE_LEN 10
#define REQUEST_ID_MIN  8
#define REQUEST_ID_MAX  64
#define CLIENT_ID_MAX   64

enum rule_outcome {
	RULE_OK = 0,
	RULE_NOT_ACTIVE,       /* outside the promotion's days */
	RULE_UNKNOWN_CODE,     /* no such invite code in this promotion */
	RULE_SELF_INVITE,      /* the invitee owns the code */
	RULE_ALREADY_CREDITED, /* the invitee was credited before */
	RULE_NOT_NEW_USER,     /* first seen longer ago than the window */
	RULE_CLAIM_LIMITED,    /* the client's credited claims today hit the cap */
	RULE_NO_TICKETS,       /* balance is zero */
	RULE_PAUSED,           /* an operator paused the promotion (promo pause) */
};

/* The API's snake_case name of an outcome ("no_tickets"). */
const char *rule_code(enum rule_outcome o);

/* Whether the promotion takes visits, claims and new draws at now_ms:
 * RULE_OK, RULE_PAUSED (before the days are even looked at) or
 * RULE_NOT_ACTIVE. */
enum rule_outcome rules_open(const struct promo *p, int64_t now_ms);

/* The first visit grant. r->granted tells whether this call granted it. */
struct visit_result {
	int granted;
	struct ld_balance bal;
};
enum ld_err rules_visit(struct ledger *l, const struct promo *p, const char *uid, int64_t now_ms,
			enum rule_outcome *outcome, struct visit_result *r);

/* The user's invite code, made on first call (works outside the days
 * too) from rng's numbers (NULL: libsodium's). */
enum ld_err rules_invite_code(struct ledger *l, const struct promo *p, const char *uid,
			      int64_t now_ms, const struct ld_rng *rng,
			      char code[INVITE_CODE_LEN + 1]);

/*
 * An invite claim by uid with code; client (may be NULL) identifies the
 * device or address for the per-client cap. On RULE_OK the invitee was
 * credited (and got the visit grant too if it had not happened); the
 * inviter got a grant unless past the cap (inviter_granted). Refusals by
 * a rule about a real code are recorded in claim_refusals.
 */
struct claim_result {
	int granted;
	int inviter_granted;
	int visit_granted; /* the claim also made the invitee's visit grant */
	char inviter[65];
	struct ld_balance bal;         /* the invitee's */
	struct ld_balance inviter_bal; /* valid when inviter_granted */
};
enum ld_err rules_claim(struct ledger *l, const struct promo *p, const char *uid, const char *code,
			const char *client, int64_t now_ms, enum rule_outcome *outcome,
			struct claim_result *r);

/* A uniform integer in [0, PROMO_SCALE); production: libsodium. */
typedef uint32_t (*rules_rng)(void *arg);
uint32_t rules_rng_sodium(void *arg);

/*
 * One roll: spends a ticket and records the draw. The same request_id
 * (per promotion and user) returns the recorded draw again with
 * r->replay set and spends nothing. prize is the index into p->prizes or
 * -1 (a miss, or a replayed win of a prize since removed from the file:
 * prize_id tells which).
 */
struct draw_result {
	int64_t id;
	int replay;
	int prize;
	char prize_id[PRIZE_ID_MAX + 1]; /* the prize won ("" for a miss), also
					  * when a reloaded file no longer has it */
	uint32_t rand;
	int64_t at_ms;
	struct ld_balance bal;
};
enum ld_err rules_draw(struct ledger *l, const struct promo *p, const char *uid,
		       const char *request_id, int64_t now_ms, rules_rng rng, void *rng_arg,
		       enum rule_outcome *outcome, struct draw_result *r);

#endif
