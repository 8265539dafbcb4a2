/*
 * rules_pg.h - the write rules' data steps on PostgreSQL (rules_pg.c),
 * called by rules.c once it has decided what needs no data. Private to
 * lib/rules.c.
 */
#ifndef LD_RULES_PG_H
#define LD_RULES_PG_H

#include "rules.h"

enum ld_err rules_pg_visit(struct ledger *l, const struct promo *p, const char *uid,
			   int64_t now_ms, const char *day, struct visit_result *r);
enum ld_err rules_pg_claim(struct ledger *l, const struct promo *p, const char *uid,
			   const char *code, const char *client, int64_t now_ms, const char *day,
			   enum rule_outcome *outcome, struct claim_result *r);
/* rand: the roll, drawn before knowing whether it is needed. */
enum ld_err rules_pg_draw(struct ledger *l, const struct promo *p, const char *uid,
			  const char *request_id, int64_t now_ms, uint32_t rand,
			  enum rule_outcome *outcome, struct draw_result *r);

#endif
