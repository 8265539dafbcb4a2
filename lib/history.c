/*
 * history.c - one user's grants, invites, draws and rewards as JSON.
 */
#include <stdio.h>
#include <string.h>

#include "history.h"
#include "outbox.h"
#include "rules.h"

/* Column i as a JSON string, or null. */
static struct json_object *text_or_null(struct db_stmt *st, int i)
{
	const char *s = db_col_text(st, i);
	return s ? json_object_new_string(s) : NULL;
}

/* Column i as a JSON integer, or null. */
static struct json_object *int_or_null(struct db_stmt *st, int i)
{
	return db_col_null(st, i) ? NULL : json_object_new_int64(db_col_int(st, i));
}

static struct json_object *prize_json(const struct promo *p, const char *id)
{
	const struct promo_prize *z = id ? promo_prize_find(p, id) : NULL;
	struct json_object *o;

	if (!id)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "name", json_object_new_string(z ? z->name : id));
	return o;
}

/* Runs sql (its parameters: promo, uid, limit) and appends to arr one
 * object per row, made by row(). */
static enum ld_err rows(struct db *db, const char *sql, const struct promo *p, const char *uid,
			struct json_object *arr,
			struct json_object *(*row)(const struct promo *, struct db_stmt *))
{
	struct db_stmt *st;
	enum ld_err e;

	if ((e = db_query(db, &st, sql, "tti", p->id, uid, HISTORY_MAX_ROWS)) != LD_OK)
		return e;
	while (db_step(st) > 0)
		json_object_array_add(arr, row(p, st));
	return db_end(db, st, "cannot read history");
}

static struct json_object *grant_row(const struct promo *p, struct db_stmt *st)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "reason", text_or_null(st, 0));
	json_object_object_add(o, "amount", json_object_new_int64(db_col_int(st, 1)));
	json_object_object_add(o, "ref", text_or_null(st, 2));
	json_object_object_add(o, "note", text_or_null(st, 3));
	json_object_object_add(o, "at", promo_time_json(p, db_col_int(st, 4)));
	return o;
}

/* A grant as the user sees it: what and when, never support's ref and
 * note (a ticket, the reason, the operator) nor the other user of an
 * invite; a support change says only that support made it. */
static struct json_object *user_grant_row(const struct promo *p, struct db_stmt *st)
{
	struct json_object *o = json_object_new_object();
	const char *reason = db_col_text(st, 0);

	json_object_object_add(o, "reason", text_or_null(st, 0));
	json_object_object_add(o, "amount", json_object_new_int64(db_col_int(st, 1)));
	if (reason && (strcmp(reason, "support") == 0 || strcmp(reason, "revoke") == 0))
		json_object_object_add(o, "text", json_object_new_string(HISTORY_SUPPORT_TEXT));
	json_object_object_add(o, "at", promo_time_json(p, db_col_int(st, 4)));
	return o;
}

/* Another user's id as a user may see it: its first two characters and
 * "***" (just "***" for an id of four characters or fewer). */
static struct json_object *masked_uid(struct db_stmt *st, int i)
{
	const char *s = db_col_text(st, i);
	char buf[8];

	if (!s)
		return NULL;
	if (strlen(s) <= 4)
		return json_object_new_string("***");
	snprintf(buf, sizeof buf, "%.2s***", s);
	return json_object_new_string(buf);
}

static struct json_object *draw_row(const struct promo *p, struct db_stmt *st)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(db_col_int(st, 0)));
	json_object_object_add(o, "request_id", text_or_null(st, 1));
	json_object_object_add(o, "at", promo_time_json(p, db_col_int(st, 2)));
	json_object_object_add(o, "prize", prize_json(p, db_col_text(st, 3)));
	return o;
}

static struct json_object *invite_row(const struct promo *p, struct db_stmt *st)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "invitee", text_or_null(st, 0));
	json_object_object_add(o, "inviter_granted",
			       json_object_new_boolean(db_col_int(st, 1) != 0));
	json_object_object_add(o, "at", promo_time_json(p, db_col_int(st, 2)));
	return o;
}

static struct json_object *user_invite_row(const struct promo *p, struct db_stmt *st)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "invitee", masked_uid(st, 0));
	json_object_object_add(o, "inviter_granted",
			       json_object_new_boolean(db_col_int(st, 1) != 0));
	json_object_object_add(o, "at", promo_time_json(p, db_col_int(st, 2)));
	return o;
}

static struct json_object *refusal_row(const struct promo *p, struct db_stmt *st)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "reason", text_or_null(st, 0));
	json_object_object_add(o, "inviter", text_or_null(st, 1));
	json_object_object_add(o, "code", text_or_null(st, 2));
	json_object_object_add(o, "client", text_or_null(st, 3));
	json_object_object_add(o, "at", promo_time_json(p, db_col_int(st, 4)));
	return o;
}

static struct json_object *event_row(const struct promo *p, struct db_stmt *st)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(db_col_int(st, 0)));
	json_object_object_add(o, "kind", text_or_null(st, 1));
	json_object_object_add(o, "key", text_or_null(st, 2));
	json_object_object_add(o, "state", text_or_null(st, 3));
	json_object_object_add(o, "attempts", json_object_new_int64(db_col_int(st, 4)));
	json_object_object_add(o, "last_status", int_or_null(st, 5));
	json_object_object_add(o, "last_error", text_or_null(st, 6));
	json_object_object_add(o, "at", promo_time_json(p, db_col_int(st, 7)));
	return o;
}

static const char SQL_GRANTS[] = "SELECT reason, amount, ref, note, created_at FROM grants"
				 " WHERE promo = ?1 AND uid = ?2 ORDER BY id DESC LIMIT ?3";
static const char SQL_DRAWS[] = "SELECT id, request_id, created_at, prize FROM draws"
				" WHERE promo = ?1 AND uid = ?2 ORDER BY id DESC LIMIT ?3";
static const char SQL_PRIZES[] =
	"SELECT id, request_id, created_at, prize FROM draws"
	" WHERE promo = ?1 AND uid = ?2 AND prize IS NOT NULL ORDER BY id DESC LIMIT ?3";
/* An inviter's invites (migration 010): those that granted them a ticket
 * are their 'inviter' grants (ref: the invitee), found by grants_by_user;
 * those past the cap have an index of their own, named so that a plan
 * without it is an error, not a scan of every invite of the promotion.
 * (INDEXED BY is SQLite's own: a PostgreSQL backend leaves it out.) */
static const char SQL_INVITES[] =
	"SELECT i.invitee, i.inviter_granted, i.created_at AS at FROM grants g"
	" JOIN invites i ON i.promo = g.promo AND i.invitee = g.ref AND i.inviter = g.uid"
	" WHERE g.promo = ?1 AND g.uid = ?2 AND g.reason = 'inviter'"
	" UNION ALL SELECT invitee, inviter_granted, created_at"
	" FROM invites INDEXED BY invites_past_cap_by_inviter"
	" WHERE promo = ?1 AND inviter = ?2 AND inviter_granted = 0"
	" ORDER BY at DESC LIMIT ?3";
static const char SQL_INVITED_BY[] =
	"SELECT inviter, code, created_at FROM invites WHERE promo = ?1 AND invitee = ?2";
static const char SQL_REFUSALS[] =
	"SELECT reason, inviter, code, client, created_at FROM claim_refusals"
	" WHERE promo = ?1 AND invitee = ?2 ORDER BY id DESC LIMIT ?3";
/* A user's events: the two of each of their wins (outbox.draw_id) and
 * the notification of each invite that granted them a ticket (their
 * 'inviter' grants, whose ref is the invitee: outbox.invitee). Both are
 * found through partial indexes that only those events write, whatever
 * ledger id their keys carry (before and after a restore alike). */
static const char SQL_EVENTS[] =
	"SELECT id, kind, key, state, attempts, last_status, last_error, created_at"
	" FROM outbox WHERE draw_id IN (SELECT id FROM draws"
	"  WHERE promo = ?1 AND uid = ?2 AND prize IS NOT NULL)"
	" UNION ALL SELECT id, kind, key, state, attempts, last_status, last_error, created_at"
	" FROM outbox WHERE promo = ?1 AND invitee IN (SELECT ref FROM grants"
	"  WHERE promo = ?1 AND uid = ?2 AND reason = 'inviter')"
	" ORDER BY id DESC LIMIT ?3";

enum ld_err history_json(struct ledger *l, const struct promo *p, const char *uid, int64_t now_ms,
			 enum history_view view, struct json_object **out)
{
	struct json_object *o = json_object_new_object(), *promo = json_object_new_object();
	struct json_object *grants = json_object_new_array(), *draws = json_object_new_array();
	struct json_object *invites = json_object_new_array(), *prizes = json_object_new_array();
	struct db *db = ledger_db(l);
	struct ld_balance b;
	struct db_stmt *st;
	enum ld_err e;
	int64_t credited = 0;

	*out = NULL;
	json_object_object_add(promo, "id", json_object_new_string(p->id));
	json_object_object_add(promo, "name", json_object_new_string(p->name));
	json_object_object_add(promo, "time_zone", json_object_new_string(p->time_zone));
	json_object_object_add(promo, "first_day", json_object_new_string(p->first_day));
	json_object_object_add(promo, "last_day", json_object_new_string(p->last_day));
	json_object_object_add(promo, "active",
			       json_object_new_boolean(rules_open(p, now_ms) == RULE_OK));
	json_object_object_add(promo, "paused", json_object_new_boolean(p->paused_reason != NULL));
	json_object_object_add(o, "promotion", promo);
	json_object_object_add(o, "user", json_object_new_string(uid));
	json_object_object_add(o, "grants", grants);
	json_object_object_add(o, "draws", draws);
	json_object_object_add(o, "prizes", prizes); /* the wins, kept past the draws' cap */
	json_object_object_add(o, "invites", invites);

	if ((e = ledger_balance(l, p->id, uid, &b)) != LD_OK)
		goto fail;
	json_object_object_add(o, "balance", json_object_new_int64(BALANCE(b)));
	json_object_object_add(o, "granted", json_object_new_int64(b.granted));
	json_object_object_add(o, "spent", json_object_new_int64(b.spent));
	if ((e = rows(db, SQL_GRANTS, p, uid, grants,
		      view == HISTORY_USER ? user_grant_row : grant_row)) != LD_OK ||
	    (e = rows(db, SQL_DRAWS, p, uid, draws, draw_row)) != LD_OK ||
	    (e = rows(db, SQL_PRIZES, p, uid, prizes, draw_row)) != LD_OK ||
	    (e = rows(db, SQL_INVITES, p, uid, invites,
		      view == HISTORY_USER ? user_invite_row : invite_row)) != LD_OK)
		goto fail;
	for (size_t i = 0; i < json_object_array_length(invites); i++) {
		struct json_object *g;
		json_object_object_get_ex(json_object_array_get_idx(invites, i), "inviter_granted",
					  &g);
		credited += json_object_get_boolean(g);
	}
	json_object_object_add(o, "invites_credited",
			       json_object_new_int64((int64_t)json_object_array_length(invites)));
	json_object_object_add(o, "invites_granted", json_object_new_int64(credited));
	if (view == HISTORY_USER) {
		*out = o;
		return LD_OK;
	}

	json_object_object_add(o, "version", json_object_new_int64(b.version));
	if ((e = db_query(db, &st, SQL_INVITED_BY, "tt", p->id, uid)) != LD_OK)
		goto fail;
	if (db_step(st) > 0) {
		struct json_object *by = json_object_new_object();
		json_object_object_add(by, "inviter", text_or_null(st, 0));
		json_object_object_add(by, "code", text_or_null(st, 1));
		json_object_object_add(by, "at", promo_time_json(p, db_col_int(st, 2)));
		json_object_object_add(o, "invited_by", by);
	}
	if ((e = db_end(db, st, "cannot read history")) != LD_OK)
		goto fail;
	struct json_object *refusals = json_object_new_array(), *events = json_object_new_array();
	json_object_object_add(o, "refused_claims", refusals);
	json_object_object_add(o, "events", events);
	if ((e = rows(db, SQL_REFUSALS, p, uid, refusals, refusal_row)) != LD_OK ||
	    (e = rows(db, SQL_EVENTS, p, uid, events, event_row)) != LD_OK)
		goto fail;
	*out = o;
	return LD_OK;
fail:
	json_object_put(o);
	return e;
}
