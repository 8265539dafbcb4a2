/*
 * api.c - the endpoint handlers. routes.c has checked the token and
 * found the promotion; the body is checked against a table of fields
 * (http_read_json). A read handler calls lib/ and renders JSON. A write
 * handler only checks its request into a writer_request: the write runs
 * where the request was routed (routes.c, served.c), and
 * api_write_answer answers from its reply - the cache written after the
 * commit (unless the writer did), the counters, the JSON.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "history.h"
#include "counters.h"

/* Logs e and msg with what identifies the request (never the token) and
 * answers. */
static void fail_msg(struct ctx *c, enum ld_err e, const char *msg)
{
	ld_log(LOG_ERR, "error: path=%s user=%s promo=%s: %s: %s", c->req->path,
	       c->uid[0] ? c->uid : "-", c->promo ? c->promo->id : "-", ld_strerror(e), msg);
	if (e == LD_ERR_BUSY)
		http_error(c->req, 503, "unavailable", "the service is busy, try again");
	else
		http_error(c->req, 500, "internal_error", "something went wrong on our side");
}

/* An error of the ledger: its message is on the ledger. */
void api_fail(struct ctx *c, enum ld_err e)
{
	fail_msg(c, e, ledger_errmsg(c->app->ledger));
}

/*
 * What each refusal of a rule answers: the one table of outcomes. The
 * code ("no_tickets") is the rules' own word for the outcome, so lib/
 * keeps it (rule_code: the ledger records it for a refused claim, and
 * the tools print it); the HTTP status and the message belong to the
 * API, so they are here.
 */
static const struct {
	int status;
	const char *message;
} refusals[] = {
	[RULE_NOT_ACTIVE] = { 403, "the promotion is not running today" },
	[RULE_UNKNOWN_CODE] = { 404, "no such invite code in this promotion" },
	[RULE_SELF_INVITE] = { 422, "this is your own invite code" },
	[RULE_ALREADY_CREDITED] = { 409, "you were already credited for an invite" },
	[RULE_NOT_NEW_USER] = { 422, "invites count only for new participants" },
	[RULE_CLAIM_LIMITED] = { 429, "too many invites claimed from this device today" },
	[RULE_NO_TICKETS] = { 409, "no dice left" },
	[RULE_PAUSED] = { 403, "the promotion is paused for now" },
};

/* Answers a refusal of a rule with its status, code and message. */
static void refuse(struct ctx *c, enum rule_outcome o)
{
	if (o > RULE_OK && (size_t)o < sizeof refusals / sizeof refusals[0] && refusals[o].status)
		http_error(c->req, refusals[o].status, rule_code(o), "%s", refusals[o].message);
	else
		http_error(c->req, 500, "internal_error", "unexpected outcome");
}

/* After a commit: publish the user's new balance to the cache. Redis
 * trouble is counted by the cache and otherwise ignored. */
static void publish(struct ctx *c, const char *uid, const struct ld_balance *b)
{
	if (c->app->cache && b->version > 0)
		cache_put(c->app->cache, c->promo->id, uid, b->version, BALANCE(*b), NULL);
}

static struct json_object *granted_body(int granted, const struct ld_balance *b)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "granted", json_object_new_boolean(granted));
	json_object_object_add(o, "balance", json_object_new_int64(BALANCE(*b)));
	return o;
}

/*
 * The write endpoints. Each handler checks its request into a
 * writer_request and returns 0; routes.c then runs it (through the
 * writer, or in the writer's batch) and api_write_answer answers it
 * from the reply.
 */

/* Fills q for op, or answers 500 (a string the checks let through that
 * does not fit a request: cannot happen) and returns -1. */
static int write_request(struct ctx *c, struct writer_request *q, enum writer_op op,
			 const char *arg, const char *client)
{
	if (writer_request_set(q, op, c->promo, c->uid, arg, client, c->now_ms) == 0)
		return 0;
	fail_msg(c, LD_ERR_INVALID, "a field too long for the writer");
	return -1;
}

/* POST visit: 200, 401, 403 promotion_not_active, 404, 400, 503. */
int api_visit(struct ctx *c, struct writer_request *q)
{
	static const struct http_field none[1];

	if (http_read_json(c->req, none, 0) != 0)
		return -1;
	return write_request(c, q, WRITER_VISIT, NULL, NULL);
}

static void visit_answer(struct ctx *c, const struct writer_reply *a)
{
	const struct visit_result *r = &a->r.visit;

	if (r->granted) {
		if (!a->cached) /* else the writer did */
			publish(c, c->uid, &r->bal);
		counters_grant(GRANT_VISIT);
	}
	c->req->outcome = r->granted ? "granted" : "already";
	http_send(c->req, 200, granted_body(r->granted, &r->bal), NULL);
}

/* GET invite: 200 {"code","url"}, 401, 404, 503. */
void api_invite(struct ctx *c)
{
	char code[INVITE_CODE_LEN + 1], url[512];
	struct json_object *o;
	enum ld_err e;

	if ((e = rules_invite_code(c->app->ledger, c->promo, c->uid, c->now_ms, NULL, code)) !=
	    LD_OK)
		return api_fail(c, e);
	if (ld_fmt(url, sizeof url, "%s/i/%s?promo=%s", c->app->cfg.public_url, code,
		   c->promo->id) != 0)
		return fail_msg(c, LD_ERR_INVALID, "the invite link is too long");
	o = json_object_new_object();
	json_object_object_add(o, "code", json_object_new_string(code));
	json_object_object_add(o, "url", json_object_new_string(url));
	http_send(c->req, 200, o, NULL);
}

/* The client identifier for the per-client claim cap: the host app's
 * device id header when it is a valid identifier, else the address. */
static const char *client_id(struct ctx *c)
{
	const char *dev = http_param(c->req, "HTTP_X_DEVICE_ID");

	if (dev && ld_is_ident(dev, CLIENT_ID_MAX))
		return dev;
	return http_param(c->req, "REMOTE_ADDR");
}

/* POST invite/claim {"code"}: 200, 400, 401, 403, 404 unknown_code,
 * 409 already_credited, 422 self_invite | not_new_user, 429
 * claim_limited, 503. */
int api_claim(struct ctx *c, struct writer_request *q)
{
	static const struct http_field fields[] = { { "code", 1, 1, 32, FIELD_IDENT } };

	if (http_read_json(c->req, fields, 1) != 0)
		return -1;
	return write_request(c, q, WRITER_CLAIM, http_field_str(c->req, "code"), client_id(c));
}

static void claim_answer(struct ctx *c, const struct writer_reply *a)
{
	const struct claim_result *r = &a->r.claim;

	if (!a->cached) { /* else the writer did */
		publish(c, c->uid, &r->bal);
		if (r->inviter_granted)
			publish(c, r->inviter, &r->inviter_bal);
	}
	if (r->visit_granted)
		counters_grant(GRANT_VISIT);
	counters_grant(GRANT_INVITEE);
	if (r->inviter_granted)
		counters_grant(GRANT_INVITER);
	c->req->outcome = r->inviter_granted ? "credited" : "credited_over_cap";
	http_send(c->req, 200, granted_body(r->granted, &r->bal), NULL);
}

/* GET balance: 200 {"balance"}, 401, 404, 503. Reads the ledger, or the
 * cache first when "balance_read" is "cache" (a miss or a Redis error
 * falls back to the ledger and refills the cache). */
void api_balance(struct ctx *c)
{
	struct ld_balance b = { 0, 0, 0 };
	int64_t version, balance;
	struct json_object *o;
	enum ld_err e;

	if (c->app->cache && c->app->cfg.balance_from_cache &&
	    cache_get(c->app->cache, c->promo->id, c->uid, &version, &balance) == LD_OK) {
		c->req->outcome = "cache";
	} else {
		if ((e = ledger_balance(c->app->ledger, c->promo->id, c->uid, &b)) != LD_OK)
			return api_fail(c, e);
		balance = BALANCE(b);
		if (c->app->cfg.balance_from_cache)
			publish(c, c->uid, &b);
		c->req->outcome = "ledger";
	}
	o = json_object_new_object();
	json_object_object_add(o, "balance", json_object_new_int64(balance));
	http_send(c->req, 200, o, NULL);
}

/* The prize of a draw, or null for a miss; a replayed win of a prize no
 * longer in the file keeps its id (as the name too). Found by id: the
 * index in r is into the writer's copy of the promotion. */
static struct json_object *prize_json(const struct promo *p, const struct draw_result *r)
{
	const struct promo_prize *found;
	struct json_object *z;

	if (!r->prize_id[0])
		return NULL;
	found = promo_prize_find(p, r->prize_id);
	z = json_object_new_object();
	json_object_object_add(z, "id", json_object_new_string(r->prize_id));
	json_object_object_add(z, "name",
			       json_object_new_string(found ? found->name : r->prize_id));
	return z;
}

/* POST draws {"request_id"}: 200, 400, 401, 403, 404, 409 no_tickets, 503. */
int api_draw(struct ctx *c, struct writer_request *q)
{
	static const struct http_field fields[] = { { "request_id", 1, REQUEST_ID_MIN,
						      REQUEST_ID_MAX, FIELD_IDENT } };

	if (http_read_json(c->req, fields, 1) != 0)
		return -1;
	return write_request(c, q, WRITER_DRAW, http_field_str(c->req, "request_id"), NULL);
}

static void draw_answer(struct ctx *c, const struct writer_reply *a)
{
	const struct draw_result *r = &a->r.draw;
	struct json_object *o, *d;

	if (!r->replay) {
		if (!a->cached) /* else the writer did */
			publish(c, c->uid, &r->bal);
		counters_draw(c->promo->id, r->prize_id[0] ? r->prize_id : NULL);
	}
	c->req->outcome = r->replay ? "replay" : r->prize_id[0] ? "win" : "miss";
	d = json_object_new_object();
	json_object_object_add(d, "id", json_object_new_int64(r->id));
	json_object_object_add(d, "prize", prize_json(c->promo, r));
	o = json_object_new_object();
	json_object_object_add(o, "draw", d);
	json_object_object_add(o, "balance", json_object_new_int64(BALANCE(r->bal)));
	http_send(c->req, 200, o, NULL);
}

void api_write_answer(struct ctx *c, const struct writer_request *q, const struct writer_reply *a)
{
	/* The writer's message travels in its answer; a rule run here left
	 * it on the ledger. */
	if (a->err != LD_OK)
		return fail_msg(c, (enum ld_err)a->err,
				a->errmsg[0] ? a->errmsg : ledger_errmsg(c->app->ledger));
	if (a->outcome != RULE_OK)
		return refuse(c, (enum rule_outcome)a->outcome);
	switch (q->op) {
	case WRITER_VISIT: return visit_answer(c, a);
	case WRITER_CLAIM: return claim_answer(c, a);
	case WRITER_DRAW: return draw_answer(c, a);
	}
	fail_msg(c, LD_ERR_INVALID, "unknown write operation");
}

/* GET healthz: 200 when the ledger answers, 503 otherwise. */
void api_healthz(struct ctx *c)
{
	struct json_object *o;
	enum ld_err e = ledger_check_schema(c->app->ledger);

	if (e != LD_OK)
		return api_fail(c, e == LD_ERR_INVALID ? LD_ERR_BUSY : e);
	o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string("ok"));
	http_send(c->req, 200, o, NULL);
}

/* GET me: 200 the user's balance, grants, draws and invites; 401, 404, 503. */
void api_me(struct ctx *c)
{
	struct json_object *o;
	enum ld_err e = history_json(c->app->ledger, c->promo, c->uid, c->now_ms, HISTORY_USER, &o);
	if (e != LD_OK)
		return api_fail(c, e);
	http_send(c->req, 200, o, NULL);
}
