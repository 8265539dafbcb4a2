/*
 * console.c - the web console's API under /console/api/. routes.c has
 * checked the method, the site, the content type, the operator's
 * session and role, and the path's promotion; these handlers read
 * lib/ (stats, campaign, history) and render JSON, or make a change
 * through lib/ (support, outbox) in the worker's own transaction, as
 * luckydicectl does, recording the operator's name and the ticket with
 * it. Every answer carries the strict headers (http.h) and no-store.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "cachesync.h"
#include "campaign.h"
#include "history.h"
#include "outbox.h"
#include "stats.h"
#include "support.h"

/* A console session lasts this long at most (and never past the sign-in
 * token it came from). */
#define SESSION_MAX_S (12 * 3600)

/* How long a read of the days may spend counting finished days that are
 * not kept yet (stats.h): the rest are counted by the next reads. */
#define DAYS_BUDGET_MS 80

#define LIST_LIMIT     20 /* top inviters, clients */
#define DEAD_LIMIT     50 /* dead events shown */

static struct json_object *operator_json(const struct operator* op)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(op->name));
	json_object_object_add(o, "role", json_object_new_string(operator_role_name(op->role)));
	return o;
}

/* The cookie of a session s lasting max_age seconds ("" and 0: the one
 * that ends it), into buf. */
static void session_cookie(const struct ctx *c, const char *s, int64_t max_age, char *buf, size_t n)
{
	snprintf(buf, n,
		 "Set-Cookie: ld_console=%s; Path=/console/; Max-Age=%lld; HttpOnly;"
		 " SameSite=Strict%s\r\n",
		 s, (long long)max_age, http_is_https(c->req) ? "; Secure" : "");
}

/* POST session {"token"}: trades a sign-in token (luckydicectl operator
 * token) for a session cookie. 200 {"operator", "expires"}, 400, 401
 * (not an operator's sign-in token, disabled, gone), 403, 415, 503. */
void console_signin(struct ctx *c)
{
	static const struct http_field fields[] = { { "token", 1, 1, OPERATOR_TOKEN_MAX - 1,
						      FIELD_TOKEN } };
	char ses[OPERATOR_TOKEN_MAX], cookie[OPERATOR_TOKEN_MAX + 160], at[32];
	const char *tok;
	enum operator_status st;
	enum token_status ts;
	int64_t expiry, now_s = c->now_ms / 1000;
	struct json_object *o;
	enum ld_err e;

	if (http_read_json(c->req, fields, 1) != 0)
		return;
	tok = http_field_str(c->req, "token");
	e = operator_authenticate(c->app->ledger, &c->app->console_key, OPERATOR_SIGNIN, tok,
				  strlen(tok), c->now_ms, &c->op, &st, &ts);
	if (e != LD_OK)
		return api_fail(c, e);
	if (st != OPERATOR_OK)
		return http_error(c->req, 401, "unauthorized", "%s",
				  st == OPERATOR_BAD_TOKEN ? token_strstatus(ts)
							   : operator_strstatus(st));
	if (operator_token_verify(&c->app->console_key, OPERATOR_SIGNIN, tok, strlen(tok), now_s,
				  NULL, NULL, &expiry) != TOKEN_OK)
		return http_error(c->req, 401, "unauthorized", "bad operator token");
	if (expiry > now_s + SESSION_MAX_S)
		expiry = now_s + SESSION_MAX_S;
	if (operator_token_issue(&c->app->console_key, OPERATOR_SESSION, c->op.name, c->op.serial,
				 expiry, ses) != LD_OK)
		return http_error(c->req, 500, "internal_error", "cannot make a session");
	session_cookie(c, ses, expiry - now_s, cookie, sizeof cookie);
	ld_iso_time(expiry * 1000, 0, at);
	o = json_object_new_object();
	json_object_object_add(o, "operator", operator_json(&c->op));
	json_object_object_add(o, "expires", json_object_new_string(at));
	c->req->outcome = "signed_in";
	http_send(c->req, 200, o, cookie);
}

/* GET session: who is signed in. 200 {"operator"}, 401, 403. */
void console_session(struct ctx *c)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "operator", operator_json(&c->op));
	http_send(c->req, 200, o, NULL);
}

/* POST signout: ends the session cookie (whoever it was). 200, 403, 415. */
void console_signout(struct ctx *c)
{
	char cookie[200];
	struct json_object *o = json_object_new_object();

	session_cookie(c, "", 0, cookie, sizeof cookie);
	json_object_object_add(o, "signed_out", json_object_new_boolean(1));
	http_send(c->req, 200, o, cookie);
}

static struct json_object *promo_json(const struct promo *p, int64_t now_ms)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(p->id));
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "time_zone", json_object_new_string(p->time_zone));
	json_object_object_add(o, "first_day", json_object_new_string(p->first_day));
	json_object_object_add(o, "last_day", json_object_new_string(p->last_day));
	json_object_object_add(o, "active", json_object_new_boolean(promo_active(p, now_ms)));
	if (p->paused_reason) {
		struct json_object *z = json_object_new_object();
		char at[32];
		ld_iso_time(p->paused_at, promo_utc_offset(p, p->paused_at), at);
		json_object_object_add(z, "at", json_object_new_string(at));
		json_object_object_add(z, "reason", json_object_new_string(p->paused_reason));
		json_object_object_add(o, "paused", z);
	} else {
		json_object_object_add(o, "paused", NULL);
	}
	return o;
}

/* GET promotions: every promotion loaded. 200 {"promotions"}, 401, 403. */
void console_promotions(struct ctx *c)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
	size_t n;
	const struct promo *const *ps = ledger_promos(c->app->ledger, c->now_ms, &n);

	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, promo_json(ps[i], c->now_ms));
	json_object_object_add(o, "promotions", arr);
	http_send(c->req, 200, o, NULL);
}

/* GET promotions/{promo}/days: the numbers of every day (stats_json),
 * with the promotion and its prizes. 200, 401, 403, 404, 503. */
void console_days(struct ctx *c)
{
	const struct promo *p = c->promo;
	struct json_object *o, *prizes = json_object_new_array();
	struct stats_day *days;
	char now[32];
	enum ld_err e;

	if ((e = stats_read(c->app->ledger, p, c->now_ms, DAYS_BUDGET_MS, &days, NULL)) != LD_OK) {
		json_object_put(prizes);
		return api_fail(c, e);
	}
	o = stats_json(p, days, c->now_ms);
	stats_days_free(days, p->ndays);
	for (size_t i = 0; i < p->nprizes; i++) {
		struct json_object *z = json_object_new_object();
		json_object_object_add(z, "id", json_object_new_string(p->prizes[i].id));
		json_object_object_add(z, "name", json_object_new_string(p->prizes[i].name));
		json_object_object_add(z, "release",
				       json_object_new_string(p->prizes[i].release == RELEASE_EVEN
								      ? "even"
								      : "midnight"));
		json_object_array_add(prizes, z);
	}
	ld_iso_time(c->now_ms, promo_utc_offset(p, c->now_ms), now);
	json_object_object_add(o, "prize_list", prizes);
	json_object_object_add(o, "info", promo_json(p, c->now_ms));
	json_object_object_add(o, "now", json_object_new_string(now));
	http_send(c->req, 200, o, NULL);
}

/* GET promotions/{promo}/outbox: the dispatcher's backlog; the dead
 * events (their users) only for support and owners. 200, 401, 403, 404,
 * 503. */
void console_outbox(struct ctx *c)
{
	struct json_object *o;
	enum ld_err e = campaign_outbox_json(c->app->ledger, c->promo, c->now_ms, DEAD_LIMIT, &o);

	if (e != LD_OK)
		return api_fail(c, e);
	if (c->op.role < OPERATOR_SUPPORT)
		json_object_object_del(o, "dead_events");
	http_send(c->req, 200, o, NULL);
}

/* GET promotions/{promo}/watch: top inviters, clients with refused
 * claims. 200, 401, 403, 404, 503. */
void console_watch(struct ctx *c)
{
	struct json_object *o;
	enum ld_err e = campaign_watch_json(c->app->ledger, c->promo, LIST_LIMIT, &o);

	if (e != LD_OK)
		return api_fail(c, e);
	http_send(c->req, 200, o, NULL);
}

/* Whether the ledger knows the path's user in the promotion (a balances
 * row); answers 404 unknown_user (or the error) and returns 0 if not. */
static int known_user(struct ctx *c, struct ld_balance *b)
{
	enum ld_err e = ledger_balance(c->app->ledger, c->promo->id, c->args.uid, b);

	if (e != LD_OK) {
		api_fail(c, e);
		return 0;
	}
	if (b->version == 0) {
		http_error(c->req, 404, "unknown_user", "no user '%s' in promotion '%s'",
			   c->args.uid, c->promo->id);
		return 0;
	}
	return 1;
}

/* GET promotions/{promo}/users/{uid}: the user's story as `user show`
 * tells it (history_json, HISTORY_SUPPORT) with the cache beside the
 * ledger. 200, 401, 403, 404 unknown_user, 503. */
void console_user(struct ctx *c)
{
	struct json_object *o;
	struct ld_balance b;
	enum ld_err e;

	if (!known_user(c, &b))
		return;
	if ((e = history_json(c->app->ledger, c->promo, c->args.uid, c->now_ms, HISTORY_SUPPORT,
			      &o)) != LD_OK)
		return api_fail(c, e);
	json_object_object_add(
		o, "cache", cachesync_user_json(c->app->cache, c->promo->id, c->args.uid, &b, 0));
	http_send(c->req, 200, o, NULL);
}

/* The fields of a change: the ticket and why. */
#define TICKET_FIELDS                                          \
	{ "ticket", 1, 1, SUPPORT_TICKET_MAX, FIELD_IDENT },   \
	{                                                      \
		"reason", 1, 1, SUPPORT_REASON_MAX, FIELD_TEXT \
	}

/* POST .../users/{uid}/grant and /revoke {"amount", "reason", "ticket"}:
 * support_grant or support_revoke by the operator. 200 {"done",
 * "balance"}, 400 (the ticket or the reason missing or bad), 401, 403,
 * 404 unknown_user, 409 ticket_used | below_zero, 415, 503. */
static void change(struct ctx *c, int revoke)
{
	static const struct http_field fields[] = {
		{ "amount", 1, 1, SUPPORT_AMOUNT_MAX, FIELD_INT }, TICKET_FIELDS
	};
	struct support_request rq;
	struct support_result r;
	enum support_outcome so;
	struct json_object *o;
	struct ld_balance b;
	char err[256];
	int64_t n;
	enum ld_err e;

	if (http_read_json(c->req, fields, 3) != 0 || !known_user(c, &b))
		return;
	rq.ticket = http_field_str(c->req, "ticket");
	rq.reason = http_field_str(c->req, "reason");
	rq.by = c->op.name;
	n = http_field_int(c->req, "amount");
	if (support_check(&rq, err, sizeof err) != LD_OK)
		return http_error(c->req, 400, "invalid_field", "%s", err);
	e = (revoke ? support_revoke : support_grant)(c->app->ledger, c->promo, c->args.uid, n, &rq,
						      c->now_ms, &so, &r);
	if (e != LD_OK)
		return api_fail(c, e);
	switch (so) {
	case SUPPORT_DONE:
		if (c->app->cache)
			cache_put(c->app->cache, c->promo->id, c->args.uid, r.bal.version,
				  BALANCE(r.bal), NULL);
		break;
	case SUPPORT_ALREADY:
		return http_error(c->req, 409, "ticket_used",
				  "ticket %s was used already: %s %lld"
				  " %s '%s'; nothing changed",
				  rq.ticket, r.amount < 0 ? "revoked" : "granted",
				  (long long)(r.amount < 0 ? -r.amount : r.amount),
				  r.amount < 0 ? "from" : "to", r.uid);
	case SUPPORT_BELOW_ZERO:
		return http_error(c->req, 409, "below_zero",
				  "the balance is %lld: a revoke of %lld"
				  " would take it below zero",
				  (long long)BALANCE(r.bal), (long long)n);
	default: return http_error(c->req, 500, "internal_error", "unexpected outcome");
	}
	c->req->outcome = revoke ? "revoked" : "granted";
	o = json_object_new_object();
	json_object_object_add(o, "done", json_object_new_boolean(1));
	json_object_object_add(o, "balance", json_object_new_int64(BALANCE(r.bal)));
	http_send(c->req, 200, o, NULL);
}

void console_grant(struct ctx *c)
{
	change(c, 0);
}

void console_revoke(struct ctx *c)
{
	change(c, 1);
}

/* POST .../outbox/{id}/retry {"ticket", "reason"}: a dead event of the
 * promotion due again, noted in the operator log. 200 {"retried"}, 400,
 * 401, 403, 404 unknown_event, 409 not_dead, 415, 503. */
void console_retry(struct ctx *c)
{
	static const struct http_field fields[] = { TICKET_FIELDS };
	struct outbox_who who;
	struct json_object *o;
	int64_t changed;
	enum ld_err e;

	if (http_read_json(c->req, fields, 2) != 0)
		return;
	who.actor = c->op.name;
	who.ticket = http_field_str(c->req, "ticket");
	who.note = http_field_str(c->req, "reason");
	e = outbox_retry(c->app->ledger, c->args.id, c->promo->id, c->now_ms, &who, &changed);
	if (e == LD_ERR_NOTFOUND)
		return http_error(c->req, 404, "unknown_event",
				  "no outbox event %lld in promotion"
				  " '%s'",
				  (long long)c->args.id, c->promo->id);
	if (e != LD_OK)
		return api_fail(c, e);
	if (changed == 0)
		return http_error(c->req, 409, "not_dead",
				  "outbox event %lld is not dead: nothing"
				  " to retry",
				  (long long)c->args.id);
	c->req->outcome = "retried";
	o = json_object_new_object();
	json_object_object_add(o, "retried", json_object_new_int64(changed));
	http_send(c->req, 200, o, NULL);
}

/* POST .../pause and /resume {"ticket", "reason"}: the owner's kill
 * switch (ledger_promo_pause), recorded in the promotion's history with
 * the operator's name and, as its note, the reason and the ticket.
 * 200 {"paused"}, 400, 401, 403, 404, 409 already_paused | not_paused,
 * 415, 503. */
static void pause_or_resume(struct ctx *c, int pause)
{
	static const struct http_field fields[] = { TICKET_FIELDS };
	struct promo_change ch = { c->op.name, NULL, NULL };
	char note[SUPPORT_REASON_MAX + SUPPORT_TICKET_MAX + 16];
	struct json_object *o;
	int changed;
	enum ld_err e;

	if (http_read_json(c->req, fields, 2) != 0)
		return;
	snprintf(note, sizeof note, "%s (ticket %s)", http_field_str(c->req, "reason"),
		 http_field_str(c->req, "ticket"));
	ch.note = note;
	e = ledger_promo_pause(c->app->ledger, c->promo->id, pause, c->now_ms, &ch, &changed);
	if (e == LD_ERR_NOTFOUND)
		return http_error(c->req, 404, "unknown_promotion", "no promotion '%s'",
				  c->promo->id);
	if (e != LD_OK)
		return api_fail(c, e);
	if (!changed)
		return http_error(c->req, 409, pause ? "already_paused" : "not_paused",
				  "promotion '%s' is %s already; nothing changed", c->promo->id,
				  pause ? "paused" : "not paused");
	c->req->outcome = pause ? "paused" : "resumed";
	o = json_object_new_object();
	json_object_object_add(o, "paused", json_object_new_boolean(pause));
	http_send(c->req, 200, o, NULL);
}

void console_pause(struct ctx *c)
{
	pause_or_resume(c, 1);
}

void console_resume(struct ctx *c)
{
	pause_or_resume(c, 0);
}
