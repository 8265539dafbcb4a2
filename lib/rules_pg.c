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
 * eleven of them, the function one. Measured in docs/performance.md.
 *
 * Concurrency: every statement a function runs is atomic on its own (a
 * conditional update, an upsert, an insert under a unique index), so two
 * hosts writing at once never both pass a check that only one may: the
 * second waits for the first's row and then sees it, or fails on the
 * unique index and is run again by the caller (the writer reruns its
 * batch), when it then refuses or replays. The per-client claim cap,
 * a count, is taken under a lock on (promotion, client, day); the stock
 * rows of a day are locked in one order.
 */
#include <stdio.h>
#include <string.h>

#include "outbox.h"
#include "rules.h"
#include "rules_pg.h"

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

/* Runs one rule function in a transaction of its own (or the batch's
 * savepoint); read() takes its one row. */
#define RULE_CALL(db, st, sql, fmt, ...)                                            \
	do {                                                                         \
		if ((e = db_begin(db)) != LD_OK)                                     \
			return e;                                                    \
		if ((e = db_query(db, &st, sql, fmt, __VA_ARGS__)) != LD_OK) {       \
			db_rollback(db);                                             \
			return e;                                                    \
		}                                                                    \
	} while (0)

static enum ld_err rule_done(struct db *db, struct db_stmt *st, int found, const char *what)
{
	enum ld_err e = db_end(db, st, what);

	if (e == LD_OK && !found)
		e = db_error(db, LD_ERR_DB, "%s: no row", what);
	if (e != LD_OK) {
		db_rollback(db);
		return e;
	}
	return db_commit(db);
}

enum ld_err rules_pg_visit(struct ledger *l, const struct promo *p, const char *uid,
			   int64_t now_ms, const char *day, struct visit_result *r)
{
	static const char SQL[] = "SELECT * FROM ld_visit(?1, ?2, ?3, ?4, ?5)";
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	enum ld_err e;
	int found;

	RULE_CALL(db, st, SQL, "ttllt", p->id, uid, p->grant_visit, now_ms, day);
	if ((found = db_step(st) > 0)) {
		r->granted = (int)db_col_int(st, 0);
		balance_at(st, 1, &r->bal);
	}
	return rule_done(db, st, found, "cannot record the visit");
}

enum ld_err rules_pg_claim(struct ledger *l, const struct promo *p, const char *uid,
			   const char *code, const char *client, int64_t now_ms, const char *day,
			   enum rule_outcome *outcome, struct claim_result *r)
{
	static const char SQL[] =
		"SELECT * FROM ld_claim(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	const char *lid;
	char key[200];
	enum ld_err e;
	int found;

	if ((e = ledger_id(l, &lid)) != LD_OK)
		return e;
	if (ld_fmt(key, sizeof key, OUTBOX_KEY_INVITE, p->id, lid, uid) != 0)
		return db_error(db, LD_ERR_DB, "outbox key too long");
	RULE_CALL(db, st, SQL, "ttttltllllllt", p->id, uid, code,
		  client, now_ms, day, p->grant_visit,
		  p->grant_invitee, p->grant_inviter, p->max_credited_per_inviter,
		  p->invitee_new_within_ms, p->claims_per_client_per_day, key);
	if ((found = db_step(st) > 0)) {
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
	return rule_done(db, st, found, "cannot record the claim");
}

enum ld_err rules_pg_draw(struct ledger *l, const struct promo *p, const char *uid,
			  const char *request_id, int64_t now_ms, uint32_t rand,
			  enum rule_outcome *outcome, struct draw_result *r)
{
	static const char SQL[] = "SELECT * FROM ld_draw(?1, ?2, ?3, ?4, ?5, ?6 <> 0, ?7, ?8, ?9,"
				  " ?10, ?11, ?12, ?13, ?14)";
	int d = promo_day(p, now_ms), picked = promo_pick(p, rand);
	const struct promo_prize *z = picked >= 0 ? &p->prizes[picked] : NULL;
	int64_t open = z ? promo_released(p, z, d, now_ms) : 0;
	int64_t stock = z ? promo_stock(p, z, d) : 0;
	char day[11], at[32], key_reward[200], key_notify[200];
	enum rule_outcome closed = rules_open(p, now_ms);
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	const char *lid;
	enum ld_err e;
	int found;

	promo_day_name(p, d, day);
	ld_iso_time(now_ms, 0, at);
	if ((e = ledger_id(l, &lid)) != LD_OK)
		return e;
	if (ld_fmt(key_reward, sizeof key_reward, OUTBOX_KEY_DRAW_TEMPLATE, p->id, lid,
		   "reward") != 0 ||
	    ld_fmt(key_notify, sizeof key_notify, OUTBOX_KEY_DRAW_TEMPLATE, p->id, lid,
		   "notify") != 0)
		return db_error(db, LD_ERR_DB, "outbox key too long");
	RULE_CALL(db, st, SQL, "tttltilttllttt", p->id, uid, request_id, now_ms, day,
		  closed == RULE_OK, (int64_t)rand, z ? z->id : NULL, z ? z->name : NULL,
		  open, stock, at, key_reward, key_notify);
	if ((found = db_step(st) > 0)) {
		/* the function knows "not open", not why */
		*outcome = outcome_of(db_col_text(st, 0));
		if (*outcome == RULE_NOT_ACTIVE)
			*outcome = closed;
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
	return rule_done(db, st, found, "cannot record the draw");
}
