/*
 * support.c - compensations, revokes and stopped rewards (see support.h).
 */
#include <stdio.h>
#include <string.h>

#include "grants.h"
#include "outbox.h"
#include "support.h"

enum ld_err support_check(const struct support_request *rq, char *err, size_t errlen)
{
	size_t n;

	if (!rq->ticket || !ld_is_ident(rq->ticket, SUPPORT_TICKET_MAX)) {
		ld_fmt(err, errlen, "--ticket: must be 1 to %d characters of A-Z a-z 0-9 _ -",
		       SUPPORT_TICKET_MAX);
		return LD_ERR_INVALID;
	}
	n = rq->reason ? strlen(rq->reason) : 0;
	if (n == 0 || n > SUPPORT_REASON_MAX || !ld_utf8_valid(rq->reason, n)) {
		ld_fmt(err, errlen, "--reason: must be 1 to %d bytes of UTF-8 text",
		       SUPPORT_REASON_MAX);
		return LD_ERR_INVALID;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)rq->reason[i] < 0x20 || rq->reason[i] == 0x7f) {
			ld_fmt(err, errlen, "--reason: must not contain control characters");
			return LD_ERR_INVALID;
		}
	if (!rq->by || !*rq->by || strlen(rq->by) > 64) {
		ld_fmt(err, errlen, "cannot tell who the operator is (set $USER)");
		return LD_ERR_INVALID;
	}
	return LD_OK;
}

/* The note kept with a support action: "reason (by operator)". */
static void note(const struct support_request *rq, char buf[512])
{
	snprintf(buf, 512, "%s (by %s)", rq->reason, rq->by);
}

/* A ticket's grant. The query names the condition of the partial index
 * grants_one_per_ticket, so that SQLite may use it: with the reason a
 * parameter it cannot tell the condition holds, and would read every
 * grant of the promotion instead. */
static const char SQL_TICKET[] = "SELECT uid, amount FROM grants WHERE promo = ?1"
				 " AND reason IN ('support', 'revoke') AND reason = ?2 AND ref = ?3";

/* Looks the ticket up among grants of this reason; fills r->uid and
 * r->amount and sets *found when it was used. */
static enum ld_err ticket_find(struct db *db, const struct promo *p, const char *reason,
			       const char *ticket, int *found, struct support_result *r)
{
	struct db_stmt *st;
	enum ld_err e;

	if ((e = db_query(db, &st, SQL_TICKET, "ttt", p->id, reason, ticket)) != LD_OK)
		return e;
	if ((*found = db_step(st) > 0)) {
		snprintf(r->uid, sizeof r->uid, "%s", db_col_text(st, 0));
		r->amount = db_col_int(st, 1);
	}
	return db_end(db, st, "cannot read grants");
}

/*
 * The body of grant and revoke of n tickets (1..SUPPORT_AMOUNT_MAX): sign
 * 1 gives, -1 takes back, through the same grant path as the rules
 * (grants.h). Runs its own transaction. The ticket is looked up first,
 * so the same ticket again answers ALREADY even when a revoke would now
 * go below zero.
 */
static enum ld_err change(struct ledger *l, const struct promo *p, const char *uid,
			  const char *reason, int64_t n, int sign, const struct support_request *rq,
			  int64_t now_ms, enum support_outcome *o, struct support_result *r)
{
	struct db *db = ledger_db(l);
	char day[11], text[512];
	int64_t amount;
	enum ld_err e;
	int found;

	memset(r, 0, sizeof *r);
	*o = SUPPORT_DONE;
	if (n < 1 || n > SUPPORT_AMOUNT_MAX)
		return db_error(db, LD_ERR_INVALID, "cannot %s %lld: not from 1 to %d",
				sign > 0 ? "grant" : "revoke", (long long)n, SUPPORT_AMOUNT_MAX);
	amount = sign * n;
	promo_day_name(p, promo_day(p, now_ms), day);
	note(rq, text);
	struct grant g = { p->id, uid, reason, amount, rq->ticket, text, day, now_ms };
	if ((e = db_begin(db)) != LD_OK)
		return e;
	if ((e = ticket_find(db, p, reason, rq->ticket, &found, r)) != LD_OK)
		goto fail;
	if (found)
		goto already;
	if ((e = ledger_balance_for_update(l, p->id, uid, &r->bal)) != LD_OK)
		goto fail;
	if (BALANCE(r->bal) + amount < 0) {
		*o = SUPPORT_BELOW_ZERO;
		db_rollback(db);
		return LD_OK;
	}
	if ((e = grant_add(l, &g, &found, &r->bal)) != LD_OK)
		goto fail;
	if (!found) {
		/* The unique index disagrees with ticket_find: on a server
		 * database (whose transactions do not queue for one write
		 * lock) another run has committed the same ticket since, and
		 * its row is seen now. */
		if ((e = ticket_find(db, p, reason, rq->ticket, &found, r)) != LD_OK)
			goto fail;
		if (found)
			goto already;
		e = db_error(db, LD_ERR_DB, "cannot record grant: ticket '%s' used twice",
			     rq->ticket);
		goto fail;
	}
	r->amount = amount;
	snprintf(r->uid, sizeof r->uid, "%s", uid);
	return db_commit(db);
already:
	*o = SUPPORT_ALREADY;
	if ((e = ledger_balance(l, p->id, uid, &r->bal)) != LD_OK)
		goto fail;
	db_rollback(db);
	return LD_OK;
fail:
	db_rollback(db);
	return e;
}

enum ld_err support_grant(struct ledger *l, const struct promo *p, const char *uid, int64_t n,
			  const struct support_request *rq, int64_t now_ms, enum support_outcome *o,
			  struct support_result *r)
{
	return change(l, p, uid, "support", n, 1, rq, now_ms, o, r);
}

enum ld_err support_revoke(struct ledger *l, const struct promo *p, const char *uid, int64_t n,
			   const struct support_request *rq, int64_t now_ms,
			   enum support_outcome *o, struct support_result *r)
{
	return change(l, p, uid, "revoke", n, -1, rq, now_ms, o, r);
}

/* The draw's winner and whether it won (*o NO_DRAW when there is none). */
static enum ld_err draw_won(struct db *db, const struct promo *p, int64_t draw_id,
			    enum support_outcome *o, struct support_result *r, int *won)
{
	struct db_stmt *st;
	enum ld_err e;

	if ((e = db_query(db, &st, "SELECT uid, prize FROM draws WHERE promo = ?1 AND id = ?2",
			  "tl", p->id, draw_id)) != LD_OK)
		return e;
	if (db_step(st) > 0) {
		snprintf(r->uid, sizeof r->uid, "%s", db_col_text(st, 0));
		*won = !db_col_null(st, 1);
	} else {
		*o = SUPPORT_NO_DRAW;
	}
	return db_end(db, st, "cannot read draw");
}

/* The reward event's state and lease (*o NO_REWARD when there is none).
 * On PostgreSQL the row is locked until the revoke commits: a dispatcher
 * claiming it meanwhile skips it, and one that claimed it first makes
 * this wait and then see its lease. (SQLite's write transaction holds
 * every dispatcher off already.) */
static enum ld_err reward_state(struct db *db, int64_t draw_id, enum support_outcome *o,
				struct support_result *r, int64_t *lease_until)
{
	static const char SQL[] = "SELECT state, lease_until FROM outbox"
				  " WHERE draw_id = ?1 AND kind = 'reward.issue'";
	static const char SQL_PG[] = "SELECT state, lease_until FROM outbox"
				     " WHERE draw_id = ?1 AND kind = 'reward.issue' FOR UPDATE";
	struct db_stmt *st;
	enum ld_err e;

	if ((e = db_query(db, &st, db_engine(db) == DB_PG ? SQL_PG : SQL, "l", draw_id)) != LD_OK)
		return e;
	if (db_step(st) > 0) {
		snprintf(r->state, sizeof r->state, "%s", db_col_text(st, 0));
		*lease_until = db_col_int(st, 1);
	} else {
		*o = SUPPORT_NO_REWARD;
	}
	return db_end(db, st, "cannot read outbox");
}

enum ld_err support_revoke_reward(struct ledger *l, const struct promo *p, int64_t draw_id,
				  const struct support_request *rq, int64_t now_ms,
				  enum support_outcome *o, struct support_result *r)
{
	char text[512], why[600];
	struct db *db = ledger_db(l);
	int64_t lease_until = 0;
	enum ld_err e;
	int won = 0;

	memset(r, 0, sizeof *r);
	*o = SUPPORT_DONE;
	note(rq, text);
	snprintf(why, sizeof why, "revoked by ticket %s: %s", rq->ticket, text);
	if ((e = db_begin(db)) != LD_OK)
		return e;
	if ((e = draw_won(db, p, draw_id, o, r, &won)) != LD_OK)
		goto fail;
	if (*o == SUPPORT_DONE && !won)
		*o = SUPPORT_NO_REWARD;
	if (*o == SUPPORT_DONE && (e = reward_state(db, draw_id, o, r, &lease_until)) != LD_OK)
		goto fail;
	if (*o == SUPPORT_DONE && strcmp(r->state, "delivered") == 0)
		*o = SUPPORT_DELIVERED;
	else if (*o == SUPPORT_DONE && strcmp(r->state, "revoked") == 0)
		*o = SUPPORT_ALREADY;
	else if (*o == SUPPORT_DONE && strcmp(r->state, "pending") == 0 && lease_until > now_ms)
		*o = SUPPORT_IN_FLIGHT;
	if (*o != SUPPORT_DONE) {
		db_rollback(db);
		return LD_OK;
	}

	/* Both events of the win that were not delivered: a notification
	 * about a prize that will not come would only confuse the winner. */
	if ((e = db_exec(db,
			 "UPDATE outbox SET state = 'revoked', last_error = ?2, done_at = ?3"
			 " WHERE draw_id = ?1 AND state IN ('pending', 'dead')",
			 "cannot revoke reward", "ltl", draw_id, why, now_ms)) != LD_OK)
		goto fail;
	r->revoked = (int)db_changes(db);
	return db_commit(db);
fail:
	db_rollback(db);
	return e;
}
