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

#include "grants.h"
#include "outbox.h"
#include "rules.h"
#include "rules_pg.h"

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
	case RULE_PAUSED: return "promotion_paused";
	}
	return "unknown";
}

enum rule_outcome rules_open(const struct promo *p, int64_t now_ms)
{
	if (p->paused_reason)
		return RULE_PAUSED;
	return promo_active(p, now_ms) ? RULE_OK : RULE_NOT_ACTIVE;
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

enum ld_err rules_visit(struct ledger *l, const struct promo *p, const char *uid, int64_t now_ms,
			enum rule_outcome *outcome, struct visit_result *r)
{
	struct db *db = ledger_db(l);
	char day[11];
	enum ld_err e;

	memset(r, 0, sizeof *r);
	if ((*outcome = rules_open(p, now_ms)) != RULE_OK)
		return LD_OK;
	today(p, now_ms, day);
	if (db_engine(db) == DB_PG)
		return rules_pg_visit(l, p, uid, now_ms, r);
	struct grant g = { p->id, uid, "visit", p->grant_visit, NULL, NULL, day, now_ms };
	if ((e = db_begin(db)) != LD_OK)
		return e;
	if ((e = grant_add(l, &g, &r->granted, &r->bal)) != LD_OK ||
	    (!r->granted && (e = ledger_balance(l, p->id, uid, &r->bal)) != LD_OK)) {
		db_rollback(db);
		return e;
	}
	return db_commit(db);
}

/* A new random invite code: INVITE_CODE_LEN characters of an alphabet
 * without look-alikes, drawn without modulo bias. */
static void new_code(const struct ld_rng *rng, char code[INVITE_CODE_LEN + 1])
{
	static const char abc[] = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";

	for (int i = 0; i < INVITE_CODE_LEN; i++)
		code[i] = abc[ld_uniform(rng, sizeof abc - 1)];
	code[INVITE_CODE_LEN] = '\0';
}

enum ld_err rules_invite_code(struct ledger *l, const struct promo *p, const char *uid,
			      int64_t now_ms, const struct ld_rng *rng,
			      char code[INVITE_CODE_LEN + 1])
{
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	enum ld_err e;
	int found;

	/* Usually the code exists: a plain read, no write transaction. */
	for (int attempt = 0; attempt < 8; attempt++) {
		if ((e = db_query(db, &st,
				  "SELECT code FROM invite_codes WHERE promo = ?1 AND uid = ?2",
				  "tt", p->id, uid)) != LD_OK)
			return e;
		if ((found = db_step(st) > 0))
			snprintf(code, INVITE_CODE_LEN + 1, "%s", db_col_text(st, 0));
		if ((e = db_end(db, st, "cannot read invite code")) != LD_OK || found)
			return e;

		/* Make one; a concurrent request for the same user or a code
		 * collision makes the insert a no-op, and the loop reads again. */
		new_code(rng, code);
		if ((e = db_exec(db,
				 "INSERT INTO invite_codes (code, promo, uid, created_at)"
				 " VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
				 "cannot record invite code", "tttl", code, p->id, uid, now_ms)) !=
		    LD_OK)
			return e;
	}
	return db_error(db, LD_ERR_DB, "cannot make a unique invite code");
}

static enum ld_err refuse(struct ledger *l, const struct promo *p, const char *uid,
			  const char *inviter, const char *code, const char *client,
			  enum rule_outcome why, int64_t now_ms, const char *day)
{
	return db_exec(ledger_db(l),
		       "INSERT INTO claim_refusals (promo, invitee, inviter, code, reason, client,"
		       " created_at, day) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
		       "cannot record refused claim", "ttttttlt", p->id, uid, inviter, code,
		       rule_code(why), client, now_ms, day);
}

/* Which rule, if any, refuses uid's claim of inviter's code. */
static enum ld_err claim_check(struct ledger *l, const struct promo *p, const char *uid,
			       const char *inviter, const char *client, int64_t now_ms,
			       const char *day, enum rule_outcome *why)
{
	struct db *db = ledger_db(l);
	int64_t v = 0;
	int found;
	enum ld_err e;

	*why = RULE_OK;
	if (strcmp(uid, inviter) == 0) {
		*why = RULE_SELF_INVITE;
		return LD_OK;
	}
	if ((e = db_int(db, "SELECT 1 FROM invites WHERE promo = ?1 AND invitee = ?2",
			"cannot read invites", &v, &found, "tt", p->id, uid)) != LD_OK)
		return e;
	if (found) {
		*why = RULE_ALREADY_CREDITED;
		return LD_OK;
	}
	if ((e = db_int(db, "SELECT first_seen FROM balances WHERE promo = ?1 AND uid = ?2",
			"cannot read user", &v, &found, "tt", p->id, uid)) != LD_OK)
		return e;
	if (found && now_ms - v > p->invitee_new_within_ms) {
		*why = RULE_NOT_NEW_USER;
		return LD_OK;
	}
	if (p->claims_per_client_per_day > 0 && client) {
		if ((e = db_int(db,
				"SELECT count(*) FROM invites"
				" WHERE promo = ?1 AND client = ?2 AND day = ?3",
				"cannot count claims", &v, NULL, "ttt", p->id, client, day)) !=
		    LD_OK)
			return e;
		if (v >= p->claims_per_client_per_day)
			*why = RULE_CLAIM_LIMITED;
	}
	return LD_OK;
}

/* Serialises a json-c object into the outbox and drops it. */
static enum ld_err add_event(struct ledger *l, const char *kind, const char *key, const char *promo,
			     const char *uid, int64_t draw_id, const char *invitee,
			     struct json_object *o, int64_t now_ms)
{
	enum ld_err e;

	json_object_object_add(o, "event", json_object_new_string(kind));
	json_object_object_add(o, "key", json_object_new_string(key));
	json_object_object_add(o, "promotion", json_object_new_string(promo));
	json_object_object_add(o, "user", json_object_new_string(uid));
	e = outbox_add(l, kind, key, promo, uid,
		       json_object_to_json_string_ext(
			       o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
		       draw_id, invitee, now_ms);
	json_object_put(o);
	return e;
}

/* The invite credit itself: invitee's visit (if missing) and invite
 * grants, the invites row, the inviter's grant under the cap, and the
 * notify.invite event. Runs inside the caller's transaction. Each of the
 * two balances rows is changed by one statement. */
static enum ld_err claim_credit(struct ledger *l, const struct promo *p, const char *uid,
				const char *inviter, const char *code, const char *client,
				int64_t now_ms, const char *day, struct claim_result *r)
{
	struct db *db = ledger_db(l);
	struct grant visit = { p->id, uid, "visit", p->grant_visit, NULL, NULL, day, now_ms };
	struct grant invitee = {
		p->id, uid, "invitee", p->grant_invitee, inviter, NULL, day, now_ms
	};
	struct grant by = { p->id, inviter, "inviter", p->grant_inviter, uid, NULL, day, now_ms };
	const char *lid;
	int found;
	char key[200];
	enum ld_err e;

	if ((e = ledger_id(l, &lid)) != LD_OK ||
	    (e = grant_record(db, &visit, &r->visit_granted)) != LD_OK ||
	    (e = grant_record(db, &invitee, &r->granted)) != LD_OK)
		return e;
	if (!r->granted) /* the unique index disagrees with the check before */
		return db_error(db, LD_ERR_DB, "invitee credited twice");
	if ((e = grant_balance_add(l, p->id, uid,
				   p->grant_invitee + (r->visit_granted ? p->grant_visit : 0),
				   now_ms, &r->bal)) != LD_OK)
		return e;

	/* The inviter's grant under the cap: one more credited invite and
	 * the tickets on their balances row (made here if they have none),
	 * unless they are at the cap. */
	if ((e = db_exec(
		     db,
		     "INSERT INTO balances (promo, uid, first_seen, invites_credited, granted, version)"
		     " VALUES (?1, ?2, ?3, 1, ?5, 1) ON CONFLICT (promo, uid) DO UPDATE"
		     " SET invites_credited = balances.invites_credited + 1,"
		     " granted = balances.granted + excluded.granted, version = balances.version + 1"
		     " WHERE balances.invites_credited < ?4",
		     "cannot credit the inviter", "ttlll", p->id, inviter, now_ms,
		     p->max_credited_per_inviter, p->grant_inviter)) != LD_OK ||
	    (e = ledger_balance_changed(l, p->id, inviter, &r->inviter_bal, &r->inviter_granted)) !=
		    LD_OK)
		return e;

	if ((e = db_exec(
		     db,
		     "INSERT INTO invites (promo, invitee, inviter, code, inviter_granted, client,"
		     " created_at, day) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
		     "cannot record invite", "ttttitlt", p->id, uid, inviter, code,
		     r->inviter_granted, client, now_ms, day)) != LD_OK)
		return e;
	if (!r->inviter_granted)
		return LD_OK;
	if ((e = grant_record(db, &by, &found)) != LD_OK)
		return e;
	if (!found)
		return db_error(db, LD_ERR_DB, "inviter credited twice for one invitee");
	if (ld_fmt(key, sizeof key, OUTBOX_KEY_INVITE, p->id, lid, uid) != 0)
		return db_error(db, LD_ERR_DB, "outbox key too long");
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "invitee", json_object_new_string(uid));
	json_object_object_add(o, "granted", json_object_new_int64(p->grant_inviter));
	json_object_object_add(o, "balance", json_object_new_int64(BALANCE(r->inviter_bal)));
	return add_event(l, "notify.invite", key, p->id, inviter, 0, uid, o, now_ms);
}

enum ld_err rules_claim(struct ledger *l, const struct promo *p, const char *uid, const char *code,
			const char *client, int64_t now_ms, enum rule_outcome *outcome,
			struct claim_result *r)
{
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	char day[11];
	enum ld_err e;
	int found;

	memset(r, 0, sizeof *r);
	if ((*outcome = rules_open(p, now_ms)) != RULE_OK)
		return LD_OK;
	today(p, now_ms, day);
	if (db_engine(db) == DB_PG) {
		*outcome = RULE_OK;
		return rules_pg_claim(l, p, uid, code, client, now_ms, outcome, r);
	}
	if ((e = db_begin(db)) != LD_OK)
		return e;
	if ((e = db_query(db, &st, "SELECT uid FROM invite_codes WHERE code = ?1 AND promo = ?2",
			  "tt", code, p->id)) != LD_OK)
		goto fail;
	if ((found = db_step(st) > 0))
		snprintf(r->inviter, sizeof r->inviter, "%s", db_col_text(st, 0));
	if ((e = db_end(db, st, "cannot read invite code")) != LD_OK)
		goto fail;
	if (!found) {
		*outcome = RULE_UNKNOWN_CODE;
		db_rollback(db);
		return LD_OK;
	}
	if ((e = claim_check(l, p, uid, r->inviter, client, now_ms, day, outcome)) != LD_OK)
		goto fail;
	if (*outcome != RULE_OK) {
		if ((e = refuse(l, p, uid, r->inviter, code, client, *outcome, now_ms, day)) !=
		    LD_OK)
			goto fail;
		if ((e = ledger_balance(l, p->id, uid, &r->bal)) != LD_OK)
			goto fail;
		return db_commit(db);
	}
	if ((e = claim_credit(l, p, uid, r->inviter, code, client, now_ms, day, r)) != LD_OK)
		goto fail;
	return db_commit(db);
fail:
	db_rollback(db);
	memset(r, 0, sizeof *r);
	return e;
}

/* Reads back a recorded draw for (promo, uid, request_id). */
static enum ld_err draw_find(struct ledger *l, const struct promo *p, const char *uid,
			     const char *request_id, int *found, struct draw_result *r)
{
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	enum ld_err e;

	if ((e = db_query(db, &st,
			  "SELECT id, created_at, rand, prize FROM draws"
			  " WHERE promo = ?1 AND uid = ?2 AND request_id = ?3",
			  "ttt", p->id, uid, request_id)) != LD_OK)
		return e;
	if ((*found = db_step(st) > 0)) {
		const char *prize = db_col_text(st, 3);
		const struct promo_prize *z = prize ? promo_prize_find(p, prize) : NULL;
		r->id = db_col_int(st, 0);
		r->at_ms = db_col_int(st, 1);
		r->rand = (uint32_t)db_col_int(st, 2);
		r->prize = z ? (int)(z - p->prizes) : -1;
		if (prize)
			snprintf(r->prize_id, sizeof r->prize_id, "%s", prize);
		r->replay = 1;
	}
	return db_end(db, st, "cannot read draw");
}

/*
 * Takes one unit of prize z's stock for day if any is open now. *won tells
 * whether it did; *left is the day's stock left after this draw.
 */
static enum ld_err take_stock(struct ledger *l, const struct promo *p, const struct promo_prize *z,
			      int d, const char *day, int64_t now_ms, int *won, int64_t *left)
{
	int64_t open = promo_released(p, z, d, now_ms), taken = 0;
	struct db *db = ledger_db(l);
	enum ld_err e;

	*won = 0;
	if (open > 0) {
		if ((e = db_exec(
			     db,
			     "INSERT INTO stock (promo, day, prize, taken) VALUES (?1, ?2, ?3, 1)"
			     " ON CONFLICT (promo, day, prize) DO UPDATE SET taken = stock.taken + 1"
			     " WHERE stock.taken < ?4",
			     "cannot take stock", "tttl", p->id, day, z->id, open)) != LD_OK)
			return e;
		*won = db_changes(db) > 0;
	}
	if ((e = db_int(db, "SELECT taken FROM stock WHERE promo = ?1 AND day = ?2 AND prize = ?3",
			"cannot read stock", &taken, NULL, "ttt", p->id, day, z->id)) != LD_OK)
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
	const char *lid;
	enum ld_err e;

	if ((e = ledger_id(l, &lid)) != LD_OK)
		return e;
	ld_iso_time(r->at_ms, 0, at);
	for (int i = 0; i < 2; i++) {
		struct json_object *o = json_object_new_object(), *prize = json_object_new_object();
		if (ld_fmt(key, sizeof key, OUTBOX_KEY_DRAW, p->id, lid, (long long)r->id,
			   suffix[i]) != 0) {
			json_object_put(o);
			json_object_put(prize);
			return db_error(ledger_db(l), LD_ERR_DB, "outbox key too long");
		}
		json_object_object_add(prize, "id", json_object_new_string(z->id));
		json_object_object_add(prize, "name", json_object_new_string(z->name));
		json_object_object_add(o, "prize", prize);
		json_object_object_add(o, "draw_id", json_object_new_int64(r->id));
		json_object_object_add(o, "day", json_object_new_string(day));
		json_object_object_add(o, "won_at", json_object_new_string(at));
		if ((e = add_event(l, kinds[i], key, p->id, uid, r->id, NULL, o, now_ms)) != LD_OK)
			return e;
	}
	return LD_OK;
}

/* Spends the ticket, rolls, takes stock and records the draw. */
static enum ld_err draw_new(struct ledger *l, const struct promo *p, const char *uid,
			    const char *request_id, int64_t now_ms, rules_rng rng, void *rng_arg,
			    enum rule_outcome *outcome, struct draw_result *r)
{
	int d = promo_day(p, now_ms), picked, won = 0;
	struct db *db = ledger_db(l);
	int64_t left = 0;
	char day[11];
	enum ld_err e;
	int spent;

	promo_day_name(p, d, day);
	if ((e = db_exec(db,
			 "UPDATE balances SET spent = spent + 1, version = version + 1"
			 " WHERE promo = ?1 AND uid = ?2 AND granted > spent",
			 "cannot spend ticket", "tt", p->id, uid)) != LD_OK ||
	    (e = ledger_balance_changed(l, p->id, uid, &r->bal, &spent)) != LD_OK)
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

	if ((e = db_insert(
		     db,
		     "INSERT INTO draws (promo, uid, request_id, created_at, day, rand, picked,"
		     " prize, stock_left) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
		     "cannot record draw", &r->id, "tttltlttL", p->id, uid, request_id, now_ms, day,
		     (int64_t)r->rand, picked >= 0 ? p->prizes[picked].id : NULL,
		     won ? p->prizes[picked].id : NULL, picked >= 0 ? &left : NULL)) != LD_OK)
		return e;
	if (!won)
		return LD_OK;
	return win_events(l, p, uid, &p->prizes[picked], r, day, now_ms);
}

enum ld_err rules_draw(struct ledger *l, const struct promo *p, const char *uid,
		       const char *request_id, int64_t now_ms, rules_rng rng, void *rng_arg,
		       enum rule_outcome *outcome, struct draw_result *r)
{
	struct db *db = ledger_db(l);
	enum ld_err e;
	int found;

	memset(r, 0, sizeof *r);
	r->prize = -1;
	*outcome = RULE_OK;
	if (db_engine(db) == DB_PG)
		return rules_pg_draw(l, p, uid, request_id, now_ms, rng(rng_arg), outcome, r);
	if ((e = db_begin(db)) != LD_OK)
		return e;
	/* A request_id seen before answers with the recorded draw, even after
	 * the promotion's last day. */
	if ((e = draw_find(l, p, uid, request_id, &found, r)) != LD_OK)
		goto fail;
	if (found) {
		if ((e = ledger_balance(l, p->id, uid, &r->bal)) != LD_OK)
			goto fail;
		return db_commit(db);
	}
	if ((*outcome = rules_open(p, now_ms)) != RULE_OK) {
		db_rollback(db);
		return LD_OK;
	}
	if ((e = draw_new(l, p, uid, request_id, now_ms, rng, rng_arg, outcome, r)) != LD_OK)
		goto fail;
	if (*outcome != RULE_OK) {
		db_rollback(db);
		return LD_OK;
	}
	return db_commit(db);
fail:
	db_rollback(db);
	return e;
}
