/*
 * support.c - compensations, revokes and stopped rewards (see support.h).
 */
#include <stdio.h>
#include <string.h>

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

/* Looks the ticket up among grants of this reason; fills r->uid and
 * r->amount and sets *found when it was used. */
static enum ld_err ticket_find(struct ledger *l, const struct promo *p, const char *reason,
			       const char *ticket, int *found, struct support_result *r)
{
	sqlite3_stmt *st = ledger_stmt(l,
		"SELECT uid, amount FROM grants WHERE promo = ?1 AND reason = ?2 AND ref = ?3");
	int rc;

	if (!st)
		return LD_ERR_DB;
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, ticket, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*found = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW) {
		snprintf(r->uid, sizeof r->uid, "%s", sqlite3_column_text(st, 0));
		r->amount = sqlite3_column_int64(st, 1);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? LD_OK : ledger_fail(l, rc, "cannot read grants");
}

/*
 * The body of grant and revoke: amount > 0 gives, < 0 takes back. Runs
 * its own transaction. The ticket is looked up first, so the same ticket
 * again answers ALREADY even when a revoke would now go below zero.
 */
static enum ld_err change(struct ledger *l, const struct promo *p, const char *uid,
			  const char *reason, int64_t amount,
			  const struct support_request *rq, int64_t now_ms,
			  enum support_outcome *o, struct support_result *r)
{
	char day[11], text[512];
	sqlite3_stmt *st;
	enum ld_err e;
	int found, rc;

	memset(r, 0, sizeof *r);
	*o = SUPPORT_DONE;
	promo_day_name(p, promo_day(p, now_ms), day);
	note(rq, text);
	if ((e = ledger_begin(l)) != LD_OK)
		return e;
	if ((e = ticket_find(l, p, reason, rq->ticket, &found, r)) != LD_OK)
		goto fail;
	if (found) {
		*o = SUPPORT_ALREADY;
		if ((e = ledger_balance(l, p->id, uid, &r->bal)) != LD_OK)
			goto fail;
		ledger_rollback(l);
		return LD_OK;
	}
	if ((e = ledger_balance(l, p->id, uid, &r->bal)) != LD_OK)
		goto fail;
	if (BALANCE(r->bal) + amount < 0) {
		*o = SUPPORT_BELOW_ZERO;
		ledger_rollback(l);
		return LD_OK;
	}
	if (!(st = ledger_stmt(l,
		"INSERT INTO balances (promo, uid, first_seen) VALUES (?1, ?2, ?3)"
		" ON CONFLICT DO NOTHING"))) {
		e = LD_ERR_DB;
		goto fail;
	}
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		e = ledger_fail(l, rc, "cannot record user");
		goto fail;
	}
	if (!(st = ledger_stmt(l,
		"INSERT INTO grants (promo, uid, reason, amount, ref, note, created_at, day)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"))) {
		e = LD_ERR_DB;
		goto fail;
	}
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, amount);
	sqlite3_bind_text(st, 5, rq->ticket, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, now_ms);
	sqlite3_bind_text(st, 8, day, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		e = ledger_fail(l, rc, "cannot record grant");
		goto fail;
	}
	/* CHECK (granted >= spent) in the schema refuses what the check
	 * above would have let through. */
	if (!(st = ledger_stmt(l,
		"UPDATE balances SET granted = granted + ?3, version = version + 1"
		" WHERE promo = ?1 AND uid = ?2"))) {
		e = LD_ERR_DB;
		goto fail;
	}
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, amount);
	if ((e = ledger_balance_write(l, st, p->id, uid, &r->bal, &found,
					"cannot update balance")) != LD_OK)
		goto fail;
	r->amount = amount;
	snprintf(r->uid, sizeof r->uid, "%s", uid);
	return ledger_commit(l);
fail:
	ledger_rollback(l);
	return e;
}

enum ld_err support_grant(struct ledger *l, const struct promo *p, const char *uid,
			  int64_t n, const struct support_request *rq, int64_t now_ms,
			  enum support_outcome *o, struct support_result *r)
{
	if (n < 1 || n > SUPPORT_AMOUNT_MAX)
		return LD_ERR_INVALID;
	return change(l, p, uid, "support", n, rq, now_ms, o, r);
}

enum ld_err support_revoke(struct ledger *l, const struct promo *p, const char *uid,
			   int64_t n, const struct support_request *rq, int64_t now_ms,
			   enum support_outcome *o, struct support_result *r)
{
	if (n < 1 || n > SUPPORT_AMOUNT_MAX)
		return LD_ERR_INVALID;
	return change(l, p, uid, "revoke", -n, rq, now_ms, o, r);
}

enum ld_err support_revoke_reward(struct ledger *l, const struct promo *p, int64_t draw_id,
				  const struct support_request *rq, int64_t now_ms,
				  enum support_outcome *o, struct support_result *r)
{
	char reward_key[200], notify_key[200], text[512], why[600];
	int64_t lease_until = 0;
	sqlite3_stmt *st;
	enum ld_err e;
	int rc, won = 0;

	memset(r, 0, sizeof *r);
	*o = SUPPORT_DONE;
	/* The keys rules.c gives the events of a win. */
	if (ld_fmt(reward_key, sizeof reward_key, OUTBOX_KEY_DRAW, p->id,
		   (long long)draw_id, "reward") != 0 ||
	    ld_fmt(notify_key, sizeof notify_key, OUTBOX_KEY_DRAW, p->id,
		   (long long)draw_id, "notify") != 0)
		return LD_ERR_INVALID;
	note(rq, text);
	snprintf(why, sizeof why, "revoked by ticket %s: %s", rq->ticket, text);
	if ((e = ledger_begin(l)) != LD_OK)
		return e;

	if (!(st = ledger_stmt(l, "SELECT uid, prize IS NOT NULL FROM draws"
			       " WHERE promo = ?1 AND id = ?2"))) {
		e = LD_ERR_DB;
		goto fail;
	}
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, draw_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(r->uid, sizeof r->uid, "%s", sqlite3_column_text(st, 0));
		won = sqlite3_column_int(st, 1);
		rc = SQLITE_DONE;
	} else {
		*o = SUPPORT_NO_DRAW;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		e = ledger_fail(l, rc, "cannot read draw");
		goto fail;
	}
	if (*o == SUPPORT_DONE && !won)
		*o = SUPPORT_NO_REWARD;
	if (*o != SUPPORT_DONE)
		goto refuse;

	if (!(st = ledger_stmt(l, "SELECT state, lease_until FROM outbox WHERE key = ?1"))) {
		e = LD_ERR_DB;
		goto fail;
	}
	sqlite3_bind_text(st, 1, reward_key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(r->state, sizeof r->state, "%s", sqlite3_column_text(st, 0));
		lease_until = sqlite3_column_int64(st, 1);
		rc = SQLITE_DONE;
	} else if (rc == SQLITE_DONE) {
		*o = SUPPORT_NO_REWARD;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		e = ledger_fail(l, rc, "cannot read outbox");
		goto fail;
	}
	if (*o != SUPPORT_DONE)
		goto refuse;
	if (strcmp(r->state, "delivered") == 0) {
		*o = SUPPORT_DELIVERED;
		goto refuse;
	}
	if (strcmp(r->state, "revoked") == 0) {
		*o = SUPPORT_ALREADY;
		goto refuse;
	}
	if (strcmp(r->state, "pending") == 0 && lease_until > now_ms) {
		*o = SUPPORT_IN_FLIGHT;
		goto refuse;
	}

	/* Both events of the win that were not delivered: a notification
	 * about a prize that will not come would only confuse the winner. */
	if (!(st = ledger_stmt(l,
		"UPDATE outbox SET state = 'revoked', last_error = ?3, done_at = ?4"
		" WHERE key IN (?1, ?2) AND state IN ('pending', 'dead')"))) {
		e = LD_ERR_DB;
		goto fail;
	}
	sqlite3_bind_text(st, 1, reward_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, notify_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, why, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now_ms);
	rc = sqlite3_step(st);
	r->revoked = sqlite3_changes(ledger_sqlite(l));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		e = ledger_fail(l, rc, "cannot revoke reward");
		goto fail;
	}
	return ledger_commit(l);
refuse:
	ledger_rollback(l);
	return LD_OK;
fail:
	ledger_rollback(l);
	return e;
}
