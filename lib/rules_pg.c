/*
 * rules_pg.c - the write rules on PostgreSQL: each rule's data steps run
 * as one server-side function (sql/pg/), called with what lib/rules.c
 * decided without data (the promotion's days, the local day, the random
 * number, the prize it picked and how much of its stock is open, the
 * event keys). The functions run the statements rules.c runs on SQLite,
 * in the same order and with the same unique indexes behind them.
 *
 * Why functions: a rule on SQLite is a few in-process statements, but on
 * a server each statement is a round trip; a claim's eleven would cost
 * eleven of them, the function one. And the writer sends a whole batch
 * of calls in one pipeline (rules_pg_batch): one round trip for all.
 *
 * Concurrency: every statement a function runs is atomic on its own (a
 * conditional update, an upsert, an insert under a unique index), so two
 * connections writing at once (hosts, or write workers) never both pass a
 * check that only one may: the second waits for the first's row and then
 * sees it. A user's draws take the user's balance row first, and one
 * invitee's claims a lock of their own, so that the second of two at
 * once finds the first's draw or invite and replays or refuses, as on
 * SQLite, instead of failing on the unique index (whose last line it
 * stays). The per-client claim cap, a count, is taken under a lock on
 * (promotion, client, day); the stock rows of a day are locked in one
 * order.
 */
#include <stdio.h>
#include <string.h>

#include "outbox.h"
#include "rules.h"
#include "rules_pg.h"

static const char SQL_VISIT[] = "SELECT * FROM ld_visit(?1, ?2, ?3, ?4, ?5)";
static const char SQL_CLAIM[] =
	"SELECT * FROM ld_claim(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
static const char SQL_DRAW[] =
	"SELECT * FROM ld_draw(?1, ?2, ?3, ?4, ?5, ?6 <> 0, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/* The outcome whose code is s (rule_code's inverse). */
static enum rule_outcome outcome_of(const char *s)
{
	for (int o = RULE_OK; o <= RULE_PAUSED; o++)
		if (s && strcmp(rule_code((enum rule_outcome)o), s) == 0)
			return (enum rule_outcome)o;
	return RULE_OK;
}

/* Reads three columns from col as a balance. */
static void balance_at(struct db_stmt *st, int col, struct ld_balance *b)
{
	b->granted = db_col_int(st, col);
	b->spent = db_col_int(st, col + 1);
	b->version = db_col_int(st, col + 2);
}

/*
 * Each rule's call: with st, run now (db_query); without, sent into the
 * open pipeline (db_pipe_send), its row read later. Then its read: the
 * row into the rule's result.
 */
static enum ld_err visit_call(struct db *db, struct db_stmt **st, const struct promo *p,
			      const char *uid, int64_t now_ms)
{
	char day[11];

	promo_day_name(p, promo_day(p, now_ms), day);
	return st ? db_query(db, st, SQL_VISIT, "ttllt", p->id, uid, p->grant_visit, now_ms, day)
		  : db_pipe_send(db, SQL_VISIT, "ttllt", p->id, uid, p->grant_visit, now_ms, day);
}

static void visit_read(struct db_stmt *st, struct visit_result *r)
{
	r->granted = (int)db_col_int(st, 0);
	balance_at(st, 1, &r->bal);
}

static enum ld_err claim_call(struct ledger *l, struct db_stmt **st, const struct promo *p,
			      const char *uid, const char *code, const char *client, int64_t now_ms)
{
	struct db *db = ledger_db(l);
	char day[11], key[200];
	const char *lid;
	enum ld_err e;

	promo_day_name(p, promo_day(p, now_ms), day);
	if ((e = ledger_id(l, &lid)) != LD_OK)
		return e;
	if (ld_fmt(key, sizeof key, OUTBOX_KEY_INVITE, p->id, lid, uid) != 0)
		return db_error(db, LD_ERR_DB, "outbox key too long");
	if (st)
		return db_query(db, st, SQL_CLAIM, "ttttltllllllt", p->id, uid, code, client,
				now_ms, day, p->grant_visit, p->grant_invitee, p->grant_inviter,
				p->max_credited_per_inviter, p->invitee_new_within_ms,
				p->claims_per_client_per_day, key);
	return db_pipe_send(db, SQL_CLAIM, "ttttltllllllt", p->id, uid, code, client, now_ms, day,
			    p->grant_visit, p->grant_invitee, p->grant_inviter,
			    p->max_credited_per_inviter, p->invitee_new_within_ms,
			    p->claims_per_client_per_day, key);
}

static void claim_read(struct db_stmt *st, enum rule_outcome *outcome, struct claim_result *r)
{
	*outcome = outcome_of(db_col_text(st, 0));
	if (!db_col_null(st, 1))
		snprintf(r->inviter, sizeof r->inviter, "%s", db_col_text(st, 1));
	r->granted = (int)db_col_int(st, 2);
	r->visit_granted = (int)db_col_int(st, 3);
	r->inviter_granted = (int)db_col_int(st, 4);
	balance_at(st, 5, &r->bal);
	if (r->inviter_granted)
		balance_at(st, 8, &r->inviter_bal);
}

static enum ld_err draw_call(struct ledger *l, struct db_stmt **st, const struct promo *p,
			     const char *uid, const char *request_id, int64_t now_ms, uint32_t rand)
{
	struct db *db = ledger_db(l);
	const char *lid;
	enum ld_err e;
	int d = promo_day(p, now_ms), picked = promo_pick(p, rand);
	const struct promo_prize *z = picked >= 0 ? &p->prizes[picked] : NULL;
	int64_t open = z ? promo_released(p, z, d, now_ms) : 0;
	int64_t stock = z ? promo_stock(p, z, d) : 0;
	char day[11], at[32], kr[200], kn[200];
	int active = rules_open(p, now_ms) == RULE_OK;

	promo_day_name(p, d, day);
	ld_iso_time(now_ms, 0, at);
	if ((e = ledger_id(l, &lid)) != LD_OK)
		return e;
	if (ld_fmt(kr, sizeof kr, OUTBOX_KEY_DRAW_TEMPLATE, p->id, lid, "reward") != 0 ||
	    ld_fmt(kn, sizeof kn, OUTBOX_KEY_DRAW_TEMPLATE, p->id, lid, "notify") != 0)
		return db_error(db, LD_ERR_DB, "outbox key too long");
	if (st)
		return db_query(db, st, SQL_DRAW, "tttltilttllttt", p->id, uid, request_id, now_ms,
				day, active, (int64_t)rand, z ? z->id : NULL, z ? z->name : NULL,
				open, stock, at, kr, kn);
	return db_pipe_send(db, SQL_DRAW, "tttltilttllttt", p->id, uid, request_id, now_ms, day,
			    active, (int64_t)rand, z ? z->id : NULL, z ? z->name : NULL, open,
			    stock, at, kr, kn);
}

static void draw_read(struct db_stmt *st, const struct promo *p, int64_t now_ms,
		      enum rule_outcome *outcome, struct draw_result *r)
{
	/* the function knows "not open", not why (its days, or a pause) */
	*outcome = outcome_of(db_col_text(st, 0));
	if (*outcome == RULE_NOT_ACTIVE)
		*outcome = rules_open(p, now_ms);
	r->replay = (int)db_col_int(st, 1);
	r->id = db_col_int(st, 2);
	r->at_ms = db_col_int(st, 3);
	r->rand = (uint32_t)db_col_int(st, 4);
	const char *won = db_col_text(st, 5);
	const struct promo_prize *w = won ? promo_prize_find(p, won) : NULL;
	r->prize = w ? (int)(w - p->prizes) : -1;
	if (won)
		snprintf(r->prize_id, sizeof r->prize_id, "%s", won);
	balance_at(st, 6, &r->bal);
}

/* Call c: with st, run now (db_query); without, sent into the pipeline. */
static enum ld_err call(struct ledger *l, struct db_stmt **st, const struct rules_pg_call *c)
{
	switch (c->op) {
	case RULES_PG_VISIT: return visit_call(ledger_db(l), st, c->p, c->uid, c->now_ms);
	case RULES_PG_CLAIM: return claim_call(l, st, c->p, c->uid, c->arg, c->client, c->now_ms);
	case RULES_PG_DRAW: return draw_call(l, st, c->p, c->uid, c->arg, c->now_ms, c->rand);
	}
	return db_error(ledger_db(l), LD_ERR_INVALID, "unknown rule call");
}

/* Call c's row into a. */
static void answer(struct db_stmt *st, const struct rules_pg_call *c, struct rules_pg_answer *a)
{
	switch (c->op) {
	case RULES_PG_VISIT:
		a->outcome = RULE_OK;
		visit_read(st, &a->visit);
		break;
	case RULES_PG_CLAIM: claim_read(st, &a->outcome, &a->claim); break;
	case RULES_PG_DRAW: draw_read(st, c->p, c->now_ms, &a->outcome, &a->draw); break;
	}
}

/* Call c run alone: in a transaction of its own, or the batch's
 * savepoint; committed when its row came, else rolled back. */
static enum ld_err alone(struct ledger *l, const struct rules_pg_call *c, struct rules_pg_answer *a)
{
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	enum ld_err e;
	int found;

	memset(a, 0, sizeof *a);
	if ((e = db_begin(db)) != LD_OK)
		return e;
	if ((e = call(l, &st, c)) != LD_OK) {
		db_rollback(db);
		return e;
	}
	if ((found = db_step(st) > 0))
		answer(st, c, a);
	e = db_end(db, st, "cannot run the rule");
	if (e == LD_OK && !found)
		e = db_error(db, LD_ERR_DB, "cannot run the rule: no row");
	if (e != LD_OK) {
		db_rollback(db);
		return e;
	}
	return db_commit(db);
}

enum ld_err rules_pg_visit(struct ledger *l, const struct promo *p, const char *uid, int64_t now_ms,
			   struct visit_result *r)
{
	struct rules_pg_call c = { .op = RULES_PG_VISIT, .p = p, .uid = uid, .now_ms = now_ms };
	struct rules_pg_answer a;
	enum ld_err e = alone(l, &c, &a);

	*r = a.visit;
	return e;
}

enum ld_err rules_pg_claim(struct ledger *l, const struct promo *p, const char *uid,
			   const char *code, const char *client, int64_t now_ms,
			   enum rule_outcome *outcome, struct claim_result *r)
{
	struct rules_pg_call c = { .op = RULES_PG_CLAIM,
				   .p = p,
				   .uid = uid,
				   .arg = code,
				   .client = client,
				   .now_ms = now_ms };
	struct rules_pg_answer a;
	enum ld_err e = alone(l, &c, &a);

	*outcome = a.outcome;
	*r = a.claim;
	return e;
}

enum ld_err rules_pg_draw(struct ledger *l, const struct promo *p, const char *uid,
			  const char *request_id, int64_t now_ms, uint32_t rand,
			  enum rule_outcome *outcome, struct draw_result *r)
{
	struct rules_pg_call c = { .op = RULES_PG_DRAW,
				   .p = p,
				   .uid = uid,
				   .arg = request_id,
				   .now_ms = now_ms,
				   .rand = rand };
	struct rules_pg_answer a;
	enum ld_err e = alone(l, &c, &a);

	*outcome = a.outcome;
	*r = a.draw;
	if (e != LD_OK)
		r->prize = -1; /* no draw: as rules_draw leaves it */
	return e;
}

/* Whether call c goes to the server: not when its promotion is gone, nor
 * a visit or claim while the promotion is not open (outside its days, or
 * paused: rules.c decides those without data; a draw replays a recorded
 * one even then). */
static int pipe_sends(const struct rules_pg_call *c)
{
	return c->p && (c->op == RULES_PG_DRAW || rules_open(c->p, c->now_ms) == RULE_OK);
}

enum ld_err rules_pg_batch(struct ledger *l, size_t n, const struct rules_pg_call *calls,
			   struct rules_pg_answer *answers)
{
	struct db *db = ledger_db(l);
	enum ld_err e, end;
	size_t i;

	if ((e = db_pipe_begin(db)) != LD_OK)
		return e;
	for (i = 0, e = LD_OK; i < n && e == LD_OK; i++)
		if (pipe_sends(&calls[i]))
			e = call(l, NULL, &calls[i]);
	if (e == LD_OK)
		e = db_pipe_commit(db);
	for (i = 0; i < n && e == LD_OK; i++) {
		const struct rules_pg_call *c = &calls[i];
		struct db_stmt *st;
		if (!pipe_sends(c)) {
			answers[i].outcome = c->p ? rules_open(c->p, c->now_ms) : RULE_OK;
			continue;
		}
		if ((e = db_pipe_next(db, &st, "cannot run the batch")) != LD_OK)
			break;
		if (db_step(st) <= 0) {
			e = db_error(db, LD_ERR_DB, "cannot run the batch: a rule gave no row");
			break;
		}
		answer(st, c, &answers[i]);
	}
	end = db_pipe_end(db);
	return e != LD_OK ? e : end;
}
