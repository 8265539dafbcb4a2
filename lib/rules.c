/*
 * rules.c - visit grants, invite codes and claims, draws: the rules of
 * DESIGN.md "Rules of a promotion", each applied in one transaction.
 *
 * The unique indexes of sql/ back every "at most once" here; the code
 * checks first so that it can answer with the right refusal, and the
 * constraint catches what a bug would let through.
 */
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>
#include <sodium.h>

#include "outbox.h"
#include "rules.h"

const char *rule_code(enum rule_outcome o)
{
	switch (o) {
	case RULE_OK: return "ok";
	case RULE_NOT_ACTIVE: return "promotion_not_active";
	case RULE_UNKNOWN_CODE: return "unknown_code";
	case RULE_SELF_INVITE: return "self_invite";
	case RULE_ALREADY_CREDITED: return "already_credited";
	case RULE_NOT_NEW_USER: return "not_new_user";
	case RULE_CLAIM_LIMITED: return "claim_limited";
	case RULE_NO_TICKETS: return "no_tickets";
	}
	return "unknown";
}

uint32_t rules_rng_sodium(void *arg)
{
	(void)arg;
	return randombytes_uniform(PROMO_SCALE);
}

/* The local day name of now_ms ("YYYY-MM-DD"). */
static void today(const struct promo *p, int64_t now_ms, char day[11])
{
	promo_day_name(p, promo_day(p, now_ms), day);
}

/* Steps a statement that returns no row; resets it. */
static enum ld_err run(struct ledger *l, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? LD_OK : ledger_fail(l, rc, what);
}

/* Steps a statement expected to return at most one integer; *found tells
 * whether it did. */
static enum ld_err run_int(struct ledger *l, sqlite3_stmt *st, int64_t *v,
			   int *found, const char *what)
{
	int rc = sqlite3_step(st);

	*found = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? LD_OK : ledger_fail(l, rc, what);
}

/* Runs st, an insert or update, to its end; *changed tells whether it
 * changed a row (not RETURNING: see ledger_balance_write). */
static enum ld_err run_write(struct ledger *l, sqlite3_stmt *st, int *changed,
			     const char *what)
{
	enum ld_err e = run(l, st, what);

	*changed = e == LD_OK && sqlite3_changes(ledger_sqlite(l)) > 0;
	return e;
}

/* Records a grant of amount tickets, unless a unique index says this
 * grant exists already (*inserted = 0). The balance is the caller's:
 * balance_add, or add_grant for both. */
static enum ld_err grant_row(struct ledger *l, const char *promo, const char *uid,
			     const char *reason, int64_t amount, const char *ref,
			     int64_t now_ms, const char *day, int *inserted)
{
	sqlite3_stmt *st = ledger_stmt(l,
		"INSERT INTO grants (promo, uid, reason, amount, ref, created_at, day)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING");

	if (!st)
		return LD_ERR_DB;
	sqlite3_bind_text(st, 1, promo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, amount);
	if (ref)
		sqlite3_bind_text(st, 5, ref, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now_ms);
	sqlite3_bind_text(st, 7, day, -1, SQLITE_STATIC);
	return run_write(l, st, inserted, "cannot record grant");
}

/* Adds amount tickets to uid's balance, making their balances row (its
 * first_seen is then now_ms) on their first grant; bal gets the balance
 * after. One statement: every balances row is changed once per request. */
static enum ld_err balance_add(struct ledger *l, const char *promo, const char *uid,
			       int64_t amount, int64_t now_ms, struct ld_balance *bal)
{
	sqlite3_stmt *st = ledger_stmt(l,
		"INSERT INTO balances (promo, uid, first_seen, granted, version)"
		" VALUES (?1, ?2, ?4, ?3, 1) ON CONFLICT DO UPDATE"
		" SET granted = granted + excluded.granted, version = version + 1");
	enum ld_err e;
	int found;

	if (!st)
		return LD_ERR_DB;
	sqlite3_bind_text(st, 1, promo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, amount);
	sqlite3_bind_int64(st, 4, now_ms);
	if ((e = ledger_balance_write(l, st, promo, uid, bal, &found,
					"cannot update balance")) != LD_OK)
		return e;
	/* an upsert always changes its row: never */
	return found ? LD_OK : ledger_fail(l, SQLITE_CONSTRAINT, "balance not updated");
}

/* grant_row, then balance_add when the grant is new (*inserted); bal
 * untouched otherwise. */
static enum ld_err add_grant(struct ledger *l, const char *promo, const char *uid,
			     const char *reason, int64_t amount, const char *ref,
			     int64_t now_ms, const char *day, int *inserted,
			     struct ld_balance *bal)
{
	enum ld_err e = grant_row(l, promo, uid, reason, amount, ref, now_ms, day, inserted);

	if (e != LD_OK || !*inserted)
		return e;
	return balance_add(l, promo, uid, amount, now_ms, bal);
}

enum ld_err rules_visit(struct ledger *l, const struct promo *p, const char *uid,
			int64_t now_ms, enum rule_outcome *outcome,
			struct visit_result *r)
{
	char day[11];
	enum ld_err e;

	memset(r, 0, sizeof *r);
	if (!promo_active(p, now_ms)) {
		*outcome = RULE_NOT_ACTIVE;
		return LD_OK;
	}
	*outcome = RULE_OK;
	today(p, now_ms, day);
	if ((e = ledger_begin(l)) != LD_OK)
		return e;
	if ((e = add_grant(l, p->id, uid, "visit", p->grant_visit, NULL, now_ms, day,
			   &r->granted, &r->bal)) != LD_OK ||
	    (!r->granted && (e = ledger_balance(l, p->id, uid, &r->bal)) != LD_OK)) {
		ledger_rollback(l);
		return e;
	}
	return ledger_commit(l);
}

/* A new random invite code: INVITE_CODE_LEN characters of an alphabet
 * without look-alikes, drawn without modulo bias. */
static void new_code(char code[INVITE_CODE_LEN + 1])
{
	static const char abc[] = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";

	for (int i = 0; i < INVITE_CODE_LEN; i++)
		code[i] = abc[randombytes_uniform(sizeof abc - 1)];
	code[INVITE_CODE_LEN] = '\0';
}

enum ld_err rules_invite_code(struct ledger *l, const struct promo *p,
			      const char *uid, int64_t now_ms,
			      char code[INVITE_CODE_LEN + 1])
{
	static const char SQL_GET[] =
		"SELECT code FROM invite_codes WHERE promo = ?1 AND uid = ?2";
	sqlite3_stmt *st;
	enum ld_err e;
	int rc;

	/* Usually the code exists: a plain read, no write transaction. */
	for (int attempt = 0; attempt < 8; attempt++) {
		st = ledger_stmt(l, SQL_GET);
		if (!st)
			return LD_ERR_DB;
		sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			snprintf(code, INVITE_CODE_LEN + 1, "%s", sqlite3_column_text(st, 0));
		sqlite3_reset(st);
		if (rc == SQLITE_ROW)
			return LD_OK;
		if (rc != SQLITE_DONE)
			return ledger_fail(l, rc, "cannot read invite code");

		/* Make one; a concurrent request for the same user or a code
		 * collision makes the insert a no-op, and the loop reads again. */
		new_code(code);
		st = ledger_stmt(l,
			"INSERT INTO invite_codes (code, promo, uid, created_at)"
			" VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING");
		if (!st)
			return LD_ERR_DB;
		sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, p->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, uid, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, now_ms);
		if ((e = run(l, st, "cannot record invite code")) != LD_OK)
			return e;
	}
	return ledger_fail(l, SQLITE_ERROR, "cannot make a unique invite code");
}

static enum ld_err refuse(struct ledger *l, const struct promo *p, const char *uid,
			  const char *inviter, const char *code, const char *client,
			  enum rule_outcome why, int64_t now_ms, const char *day)
{
	sqlite3_stmt *st = ledger_stmt(l,
		"INSERT INTO claim_refusals (promo, invitee, inviter, code, reason, client,"
		" created_at, day) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
	if (!st)
		return LD_ERR_DB;
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, inviter, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, rule_code(why), -1, SQLITE_STATIC);
	if (client)
		sqlite3_bind_text(st, 6, client, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, now_ms);
	sqlite3_bind_text(st, 8, day, -1, SQLITE_STATIC);
	return run(l, st, "cannot record refused claim");
}

/* Which rule, if any, refuses uid's claim of inviter's code. */
static enum ld_err claim_check(struct ledger *l, const struct promo *p,
			       const char *uid, const char *inviter,
			       const char *client, int64_t now_ms, const char *day,
			       enum rule_outcome *why)
{
	sqlite3_stmt *st;
	int64_t v = 0;
	int found;
	enum ld_err e;

	*why = RULE_OK;
	if (strcmp(uid, inviter) == 0) {
		*why = RULE_SELF_INVITE;
		return LD_OK;
	}
	if (!(st = ledger_stmt(l, "SELECT 1 FROM invites WHERE promo = ?1 AND invitee = ?2")))
		return LD_ERR_DB;
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
	if ((e = run_int(l, st, &v, &found, "cannot read invites")) != LD_OK)
		return e;
	if (found) {
		*why = RULE_ALREADY_CREDITED;
		return LD_OK;
	}
	if (!(st = ledger_stmt(l, "SELECT first_seen FROM balances WHERE promo = ?1 AND uid = ?2")))
		return LD_ERR_DB;
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
	if ((e = run_int(l, st, &v, &found, "cannot read user")) != LD_OK)
		return e;
	if (found && now_ms - v > p->invitee_new_within_ms) {
		*why = RULE_NOT_NEW_USER;
		return LD_OK;
	}
	if (p->claims_per_client_per_day > 0 && client) {
		if (!(st = ledger_stmt(l, "SELECT count(*) FROM invites"
				       " WHERE promo = ?1 AND client = ?2 AND day = ?3")))
			return LD_ERR_DB;
		sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, client, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, day, -1, SQLITE_STATIC);
		if ((e = run_int(l, st, &v, &found, "cannot count claims")) != LD_OK)
			return e;
		if (v >= p->claims_per_client_per_day)
			*why = RULE_CLAIM_LIMITED;
	}
	return LD_OK;
}

/* Serialises a json-c object into the outbox and drops it. */
static enum ld_err add_event(struct ledger *l, const char *kind, const char *key,
			     const char *promo, const char *uid,
			     struct json_object *o, int64_t now_ms)
{
	enum ld_err e;

	json_object_object_add(o, "event", json_object_new_string(kind));
	json_object_object_add(o, "key", json_object_new_string(key));
	json_object_object_add(o, "promotion", json_object_new_string(promo));
	json_object_object_add(o, "user", json_object_new_string(uid));
	e = outbox_add(l, kind, key, promo, uid,
		       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE), now_ms);
	json_object_put(o);
	return e;
}

/* The invite credit itself: invitee's visit (if missing) and invite
 * grants, the invites row, the inviter's grant under the cap, and the
 * notify.invite event. Runs inside the caller's transaction. Each of the
 * two balances rows is changed by one statement. */
static enum ld_err claim_credit(struct ledger *l, const struct promo *p,
				const char *uid, const char *inviter,
				const char *code, const char *client,
				int64_t now_ms, const char *day,
				struct claim_result *r)
{
	sqlite3_stmt *st;
	int found;
	char key[200];
	enum ld_err e;

	if ((e = grant_row(l, p->id, uid, "visit", p->grant_visit, NULL, now_ms, day,
			   &r->visit_granted)) != LD_OK ||
	    (e = grant_row(l, p->id, uid, "invitee", p->grant_invitee, inviter, now_ms,
			   day, &r->granted)) != LD_OK)
		return e;
	if (!r->granted) /* the unique index disagrees with the check before */
		return ledger_fail(l, SQLITE_CONSTRAINT, "invitee credited twice");
	if ((e = balance_add(l, p->id, uid, p->grant_invitee +
			     (r->visit_granted ? p->grant_visit : 0), now_ms, &r->bal)) != LD_OK)
		return e;

	/* The inviter's grant under the cap: one more credited invite and
	 * the tickets on their balances row (made here if they have none),
	 * unless they are at the cap. */
	if (!(st = ledger_stmt(l,
		"INSERT INTO balances (promo, uid, first_seen, invites_credited, granted, version)"
		" VALUES (?1, ?2, ?3, 1, ?5, 1) ON CONFLICT DO UPDATE"
		" SET invites_credited = invites_credited + 1,"
		" granted = granted + excluded.granted, version = version + 1"
		" WHERE invites_credited < ?4")))
		return LD_ERR_DB;
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, inviter, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms);
	sqlite3_bind_int64(st, 4, p->max_credited_per_inviter);
	sqlite3_bind_int64(st, 5, p->grant_inviter);
	if ((e = ledger_balance_write(l, st, p->id, inviter, &r->inviter_bal,
					&r->inviter_granted, "cannot credit the inviter")) != LD_OK)
		return e;

	if (!(st = ledger_stmt(l,
		"INSERT INTO invites (promo, invitee, inviter, code, inviter_granted, client,"
		" created_at, day) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")))
		return LD_ERR_DB;
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, inviter, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, code, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, r->inviter_granted);
	if (client)
		sqlite3_bind_text(st, 6, client, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, now_ms);
	sqlite3_bind_text(st, 8, day, -1, SQLITE_STATIC);
	if ((e = run(l, st, "cannot record invite")) != LD_OK)
		return e;
	if (!r->inviter_granted)
		return LD_OK;
	if ((e = grant_row(l, p->id, inviter, "inviter", p->grant_inviter, uid, now_ms,
			   day, &found)) != LD_OK)
		return e;
	if (!found)
		return ledger_fail(l, SQLITE_CONSTRAINT, "inviter credited twice for one invitee");
	if (ld_fmt(key, sizeof key, OUTBOX_KEY_INVITE, p->id, uid) != 0)
		return ledger_fail(l, SQLITE_TOOBIG, "outbox key too long");
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "invitee", json_object_new_string(uid));
	json_object_object_add(o, "granted", json_object_new_int64(p->grant_inviter));
	json_object_object_add(o, "balance", json_object_new_int64(BALANCE(r->inviter_bal)));
	return add_event(l, "notify.invite", key, p->id, inviter, o, now_ms);
}

enum ld_err rules_claim(struct ledger *l, const struct promo *p, const char *uid,
			const char *code, const char *client, int64_t now_ms,
			enum rule_outcome *outcome, struct claim_result *r)
{
	sqlite3_stmt *st;
	char day[11];
	enum ld_err e;
	int rc;

	memset(r, 0, sizeof *r);
	if (!promo_active(p, now_ms)) {
		*outcome = RULE_NOT_ACTIVE;
		return LD_OK;
	}
	today(p, now_ms, day);
	if ((e = ledger_begin(l)) != LD_OK)
		return e;
	if (!(st = ledger_stmt(l, "SELECT uid FROM invite_codes WHERE code = ?1 AND promo = ?2"))) {
		e = LD_ERR_DB;
		goto fail;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(r->inviter, sizeof r->inviter, "%s", sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		*outcome = RULE_UNKNOWN_CODE;
		ledger_rollback(l);
		return LD_OK;
	}
	if (rc != SQLITE_ROW) {
		e = ledger_fail(l, rc, "cannot read invite code");
		goto fail;
	}
	if ((e = claim_check(l, p, uid, r->inviter, client, now_ms, day, outcome)) != LD_OK)
		goto fail;
	if (*outcome != RULE_OK) {
		if ((e = refuse(l, p, uid, r->inviter, code, client, *outcome, now_ms, day)) != LD_OK)
			goto fail;
		if ((e = ledger_balance(l, p->id, uid, &r->bal)) != LD_OK)
			goto fail;
		return ledger_commit(l);
	}
	if ((e = claim_credit(l, p, uid, r->inviter, code, client, now_ms, day, r)) != LD_OK)
		goto fail;
	return ledger_commit(l);
fail:
	ledger_rollback(l);
	memset(r, 0, sizeof *r);
	return e;
}

/* Reads back a recorded draw for (promo, uid, request_id). */
static enum ld_err draw_find(struct ledger *l, const struct promo *p, const char *uid,
			     const char *request_id, int *found, struct draw_result *r)
{
	sqlite3_stmt *st = ledger_stmt(l,
		"SELECT id, created_at, rand, prize FROM draws"
		" WHERE promo = ?1 AND uid = ?2 AND request_id = ?3");
	int rc;

	if (!st)
		return LD_ERR_DB;
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, request_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*found = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW) {
		const char *prize = (const char *)sqlite3_column_text(st, 3);
		const struct promo_prize *z = prize ? promo_prize_find(p, prize) : NULL;
		r->id = sqlite3_column_int64(st, 0);
		r->at_ms = sqlite3_column_int64(st, 1);
		r->rand = (uint32_t)sqlite3_column_int64(st, 2);
		r->prize = z ? (int)(z - p->prizes) : -1;
		if (prize)
			snprintf(r->prize_id, sizeof r->prize_id, "%s", prize);
		r->replay = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? LD_OK : ledger_fail(l, rc, "cannot read draw");
}

/*
 * Takes one unit of prize z's stock for day if any is open now. *won tells
 * whether it did; *left is the day's stock left after this draw.
 */
static enum ld_err take_stock(struct ledger *l, const struct promo *p,
			      const struct promo_prize *z, int d, const char *day,
			      int64_t now_ms, int *won, int64_t *left)
{
	int64_t open = promo_released(p, z, d, now_ms), taken = 0;
	sqlite3_stmt *st;
	enum ld_err e;
	int found;

	*won = 0;
	if (open > 0) {
		if (!(st = ledger_stmt(l,
			"INSERT INTO stock (promo, day, prize, taken) VALUES (?1, ?2, ?3, 1)"
			" ON CONFLICT DO UPDATE SET taken = taken + 1 WHERE taken < ?4")))
			return LD_ERR_DB;
		sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, z->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, open);
		if ((e = run_write(l, st, won, "cannot take stock")) != LD_OK)
			return e;
	}
	if (!(st = ledger_stmt(l, "SELECT taken FROM stock"
			       " WHERE promo = ?1 AND day = ?2 AND prize = ?3")))
		return LD_ERR_DB;
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, z->id, -1, SQLITE_STATIC);
	if ((e = run_int(l, st, &taken, &found, "cannot read stock")) != LD_OK)
		return e;
	*left = promo_stock(p, z, d) - taken;
	return LD_OK;
}

/* The reward.issue and notify.win events of a win. */
static enum ld_err win_events(struct ledger *l, const struct promo *p, const char *uid,
			      const struct promo_prize *z, const struct draw_result *r,
			      const char *day, int64_t now_ms)
{
	static const char *const kinds[2] = { "reward.issue", "notify.win" };
	static const char *const suffix[2] = { "reward", "notify" };
	char key[200], at[32];
	enum ld_err e;

	ld_iso_time(r->at_ms, 0, at);
	for (int i = 0; i < 2; i++) {
		struct json_object *o = json_object_new_object(), *prize = json_object_new_object();
		if (ld_fmt(key, sizeof key, OUTBOX_KEY_DRAW, p->id, (long long)r->id,
			   suffix[i]) != 0) {
			json_object_put(o);
			json_object_put(prize);
			return ledger_fail(l, SQLITE_TOOBIG, "outbox key too long");
		}
		json_object_object_add(prize, "id", json_object_new_string(z->id));
		json_object_object_add(prize, "name", json_object_new_string(z->name));
		json_object_object_add(o, "prize", prize);
		json_object_object_add(o, "draw_id", json_object_new_int64(r->id));
		json_object_object_add(o, "day", json_object_new_string(day));
		json_object_object_add(o, "won_at", json_object_new_string(at));
		if ((e = add_event(l, kinds[i], key, p->id, uid, o, now_ms)) != LD_OK)
			return e;
	}
	return LD_OK;
}

/* Spends the ticket, rolls, takes stock and records the draw. */
static enum ld_err draw_new(struct ledger *l, const struct promo *p, const char *uid,
			    const char *request_id, int64_t now_ms, rules_rng rng,
			    void *rng_arg, enum rule_outcome *outcome,
			    struct draw_result *r)
{
	int d = promo_day(p, now_ms), picked, won = 0;
	int64_t left = 0;
	sqlite3_stmt *st;
	char day[11];
	enum ld_err e;
	int spent;

	promo_day_name(p, d, day);
	if (!(st = ledger_stmt(l,
		"UPDATE balances SET spent = spent + 1, version = version + 1"
		" WHERE promo = ?1 AND uid = ?2 AND granted > spent")))
		return LD_ERR_DB;
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
	if ((e = ledger_balance_write(l, st, p->id, uid, &r->bal, &spent,
					"cannot spend ticket")) != LD_OK)
		return e;
	if (!spent) {
		*outcome = RULE_NO_TICKETS;
		return LD_OK;
	}

	r->rand = rng(rng_arg);
	r->at_ms = now_ms;
	picked = promo_pick(p, r->rand);
	if (picked >= 0 &&
	    (e = take_stock(l, p, &p->prizes[picked], d, day, now_ms, &won, &left)) != LD_OK)
		return e;
	r->prize = won ? picked : -1;
	if (won)
		memcpy(r->prize_id, p->prizes[picked].id, sizeof r->prize_id);

	if (!(st = ledger_stmt(l,
		"INSERT INTO draws (promo, uid, request_id, created_at, day, rand, picked,"
		" prize, stock_left) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")))
		return LD_ERR_DB;
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, request_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now_ms);
	sqlite3_bind_text(st, 5, day, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, r->rand);
	if (picked >= 0) {
		sqlite3_bind_text(st, 7, p->prizes[picked].id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 9, left);
	}
	if (won)
		sqlite3_bind_text(st, 8, p->prizes[picked].id, -1, SQLITE_STATIC);
	if ((e = run(l, st, "cannot record draw")) != LD_OK)
		return e;
	r->id = sqlite3_last_insert_rowid(ledger_sqlite(l));
	if (!won)
		return LD_OK;
	return win_events(l, p, uid, &p->prizes[picked], r, day, now_ms);
}

enum ld_err rules_draw(struct ledger *l, const struct promo *p, const char *uid,
		       const char *request_id, int64_t now_ms, rules_rng rng,
		       void *rng_arg, enum rule_outcome *outcome,
		       struct draw_result *r)
{
	enum ld_err e;
	int found;

	memset(r, 0, sizeof *r);
	r->prize = -1;
	*outcome = RULE_OK;
	if ((e = ledger_begin(l)) != LD_OK)
		return e;
	/* A request_id seen before answers with the recorded draw, even after
	 * the promotion's last day. */
	if ((e = draw_find(l, p, uid, request_id, &found, r)) != LD_OK)
		goto fail;
	if (found) {
		if ((e = ledger_balance(l, p->id, uid, &r->bal)) != LD_OK)
			goto fail;
		return ledger_commit(l);
	}
	if (!promo_active(p, now_ms)) {
		*outcome = RULE_NOT_ACTIVE;
		ledger_rollback(l);
		return LD_OK;
	}
	if ((e = draw_new(l, p, uid, request_id, now_ms, rng, rng_arg, outcome, r)) != LD_OK)
		goto fail;
	if (*outcome != RULE_OK) {
		ledger_rollback(l);
		return LD_OK;
	}
	return ledger_commit(l);
fail:
	ledger_rollback(l);
	return e;
}
