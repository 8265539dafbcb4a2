/*
 * rules_pg.h - the write rules' data steps on PostgreSQL (rules_pg.c),
 * called by rules.c once it has decided what needs no data, and by the
 * writer's batch (rules_pg_batch). Private to lib/.
 */
#ifndef LD_RULES_PG_H
#define LD_RULES_PG_H

#include "rules.h"

/* One rule run alone, in a transaction of its own or the batch's
 * savepoint (as rules_visit/claim/draw). */
enum ld_err rules_pg_visit(struct ledger *l, const struct promo *p, const char *uid, int64_t now_ms,
			   struct visit_result *r);
enum ld_err rules_pg_claim(struct ledger *l, const struct promo *p, const char *uid,
			   const char *code, const char *client, int64_t now_ms,
			   enum rule_outcome *outcome, struct claim_result *r);
/* rand: the roll, drawn before knowing whether it is needed. */
enum ld_err rules_pg_draw(struct ledger *l, const struct promo *p, const char *uid,
			  const char *request_id, int64_t now_ms, uint32_t rand,
			  enum rule_outcome *outcome, struct draw_result *r);

/* A batch of rule calls: p NULL skips one (its promotion is gone). */
enum rules_pg_op { RULES_PG_VISIT = 1, RULES_PG_CLAIM, RULES_PG_DRAW };
struct rules_pg_call {
	enum rules_pg_op op;
	const struct promo *p;
	const char *uid;
	const char *arg;    /* the code, or the draw's request_id */
	const char *client; /* claims; may be NULL */
	int64_t now_ms;
	uint32_t rand; /* draws */
};
struct rules_pg_answer {
	enum rule_outcome outcome;
	union {
		struct visit_result visit;
		struct claim_result claim;
		struct draw_result draw;
	};
};

/*
 * Runs calls[0..n) as one transaction in one pipeline: every call sent,
 * then COMMIT, then the answers read. LD_OK: committed, answers[i] set
 * for each call with a promotion. Anything else (a call failed, or the
 * server could not be reached): nothing was kept, and the caller runs
 * the batch again one call at a time (with savepoints), which answers
 * each call on its own.
 */
enum ld_err rules_pg_batch(struct ledger *l, size_t n, const struct rules_pg_call *calls,
			   struct rules_pg_answer *answers);

#endif
