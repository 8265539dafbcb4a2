/*
 * routes.c - the route table and the one dispatch: match method and
 * path, refuse what another site's page could make a browser send (403
 * cross_site_request, 415 unsupported_media_type), check the user's
 * token or the operator's session, and the promotion, call the handler,
 * count the request and log it when it is worth a line.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "counters.h"
#include "path.h"

/* Where a route's path is. */
enum where {
	AT_PATH,    /* the full path */
	AT_PROMO,   /* after /api/promotions/{promo}/ */
	AT_CONSOLE, /* a pattern of the console (path_match), under /console/api/ */
};

/* Who may call a route. */
enum auth {
	AUTH_NONE,
	AUTH_USER,     /* a user token (Bearer, or the ld_token cookie) */
	AUTH_CONSOLE,  /* nobody yet: the console's sign-in and sign-out */
	AUTH_OPERATOR, /* an operator's session (the ld_console cookie) with
			* at least the route's role */
};

struct route {
	const char *name; /* for logs and metrics */
	const char *path; /* see where */
	enum where where;
	enum auth auth;
	enum operator_role role; /* AUTH_OPERATOR: the least role */
	enum http_method method;
	const char *allow; /* the Allow header of a 405 */
	handler_fn read;   /* answers (the console's changes too) */
	write_fn write;    /* a write: checks its request, run after */
};

#define GET  "Allow: GET\r\n"
#define POST "Allow: POST\r\n"
#define BOTH "Allow: GET, POST\r\n"
#define CP   "/console/api/promotions/{promo}"

static const struct route routes[] = {
	{ "visit", "visit", AT_PROMO, AUTH_USER, 0, HTTP_POST, POST, NULL, api_visit },
	{ "invite", "invite", AT_PROMO, AUTH_USER, 0, HTTP_GET, GET, api_invite, NULL },
	{ "claim", "invite/claim", AT_PROMO, AUTH_USER, 0, HTTP_POST, POST, NULL, api_claim },
	{ "balance", "balance", AT_PROMO, AUTH_USER, 0, HTTP_GET, GET, api_balance, NULL },
	{ "draws", "draws", AT_PROMO, AUTH_USER, 0, HTTP_POST, POST, NULL, api_draw },
	{ "me", "me", AT_PROMO, AUTH_USER, 0, HTTP_GET, GET, api_me, NULL },
	{ "healthz", "/healthz", AT_PATH, AUTH_NONE, 0, HTTP_GET, GET, api_healthz, NULL },
	{ "metrics", "/metrics", AT_PATH, AUTH_NONE, 0, HTTP_GET, GET, api_metrics, NULL },
	{ "console_signin", "/console/api/session", AT_CONSOLE, AUTH_CONSOLE, 0, HTTP_POST, BOTH,
	  console_signin, NULL },
	{ "console_session", "/console/api/session", AT_CONSOLE, AUTH_OPERATOR, OPERATOR_VIEWER,
	  HTTP_GET, BOTH, console_session, NULL },
	{ "console_signout", "/console/api/signout", AT_CONSOLE, AUTH_CONSOLE, 0, HTTP_POST, POST,
	  console_signout, NULL },
	{ "console_promotions", "/console/api/promotions", AT_CONSOLE, AUTH_OPERATOR,
	  OPERATOR_VIEWER, HTTP_GET, GET, console_promotions, NULL },
	{ "console_days", CP "/days", AT_CONSOLE, AUTH_OPERATOR, OPERATOR_VIEWER, HTTP_GET, GET,
	  console_days, NULL },
	{ "console_outbox", CP "/outbox", AT_CONSOLE, AUTH_OPERATOR, OPERATOR_VIEWER, HTTP_GET, GET,
	  console_outbox, NULL },
	{ "console_watch", CP "/watch", AT_CONSOLE, AUTH_OPERATOR, OPERATOR_SUPPORT, HTTP_GET, GET,
	  console_watch, NULL },
	{ "console_user", CP "/users/{uid}", AT_CONSOLE, AUTH_OPERATOR, OPERATOR_SUPPORT, HTTP_GET,
	  GET, console_user, NULL },
	{ "console_grant", CP "/users/{uid}/grant", AT_CONSOLE, AUTH_OPERATOR, OPERATOR_SUPPORT,
	  HTTP_POST, POST, console_grant, NULL },
	{ "console_revoke", CP "/users/{uid}/revoke", AT_CONSOLE, AUTH_OPERATOR, OPERATOR_SUPPORT,
	  HTTP_POST, POST, console_revoke, NULL },
	{ "console_retry", CP "/outbox/{id}/retry", AT_CONSOLE, AUTH_OPERATOR, OPERATOR_SUPPORT,
	  HTTP_POST, POST, console_retry, NULL },
	{ "console_pause", CP "/pause", AT_CONSOLE, AUTH_OPERATOR, OPERATOR_OWNER, HTTP_POST, POST,
	  console_pause, NULL },
	{ "console_resume", CP "/resume", AT_CONSOLE, AUTH_OPERATOR, OPERATOR_OWNER, HTTP_POST,
	  POST, console_resume, NULL },
};

const char *route_name(int i)
{
	return i >= 0 && (size_t)i < sizeof routes / sizeof routes[0] ? routes[i].name : NULL;
}

/*
 * The route of the request's path and method: of the routes whose path
 * it is, the one of its method, else the first (for the 405). For API
 * promotion routes the promotion id is copied into promo (PROMO_ID_MAX +
 * 1 bytes), *bad_promo set when the path has a promotion part that is
 * not a valid id; for the console's, *args gets the pattern's
 * parameters. NULL when no route has this path.
 */
static const struct route *match(const char *path, enum http_method method, char *promo,
				 int *bad_promo, struct path_args *args)
{
	const struct route *found = NULL;
	const char *rest;
	int under = path_split(path, promo, &rest, bad_promo);
	struct path_args a;

	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		const struct route *rt = &routes[i];
		int here = rt->where == AT_CONSOLE ? path_match(rt->path, path, &a)
						   : (rt->where == AT_PROMO) == under &&
				strcmp(rt->path, rt->where == AT_PROMO ? rest : path) == 0;

		if (!here || (found && rt->method != method))
			continue;
		found = rt;
		if (rt->where == AT_CONSOLE)
			*args = a;
		if (rt->method == method)
			break;
	}
	return found;
}

/* The token from "Authorization: Bearer X" or else the ld_token cookie;
 * *len gets its length. NULL when neither is there. */
static const char *find_token(const struct http_req *r, size_t *len)
{
	const char *h = http_param(r, "HTTP_AUTHORIZATION");

	if (h && strncmp(h, "Bearer ", 7) == 0) {
		*len = strlen(h + 7);
		return h + 7;
	}
	if (h)
		return NULL; /* another scheme: not ours */
	return http_cookie(r, "ld_token", len);
}

/* Checks the user's token into c->uid; answers 401 and returns -1 if it
 * is missing or not good. */
static int authenticate(struct ctx *c)
{
	size_t len = 0;
	const char *tok = find_token(c->req, &len);
	enum token_status st;

	if (!tok) {
		http_error(c->req, 401, "unauthorized",
			   "a token is required"
			   " (Authorization: Bearer or the ld_token cookie)");
		return -1;
	}
	st = token_verify(&c->app->key, tok, len, c->now_ms / 1000, c->uid);
	if (st != TOKEN_OK) {
		http_error(c->req, 401, "unauthorized", "%s", token_strstatus(st));
		return -1;
	}
	return 0;
}

/*
 * Whether a request that a cookie would sign in comes from another site,
 * which a browser makes when a page elsewhere posts to us (a form, fetch
 * with mode "no-cors", sendBeacon): the browser says so
 * (Sec-Fetch-Site: cross-site), or its Origin is not one of the config's
 * allowed_origins. A request without either header (not a browser, or an
 * old one) is not judged cross-site; its POST must still be JSON, which
 * no page elsewhere can send us without a CORS preflight we never answer.
 * A request of the user API with an Authorization header is never
 * cross-site: it is signed in by that header alone (find_token does not
 * read the cookie then), which a browser never adds by itself and a page
 * elsewhere could only add through that same preflight. The console
 * (console set) signs in by its cookie only, so that header changes
 * nothing there.
 */
static int cross_site(const struct ctx *c, int console)
{
	const struct ld_config *cfg = &c->app->cfg;
	const char *site = http_param(c->req, "HTTP_SEC_FETCH_SITE");
	const char *origin = http_param(c->req, "HTTP_ORIGIN");

	if (!console && http_param(c->req, "HTTP_AUTHORIZATION"))
		return 0;
	if (site && strcmp(site, "cross-site") == 0)
		return 1;
	if (!origin)
		return 0;
	for (size_t i = 0; i < cfg->n_allowed_origins; i++)
		if (strcmp(origin, cfg->allowed_origins[i]) == 0)
			return 0;
	return 1;
}

/* The operator of the ld_console cookie into c->op, with at least role;
 * answers 401 (no session, or one no longer good: the operator disabled,
 * gone, expired) or 403 (a role too small) and returns -1 otherwise. */
static int operator_session(struct ctx *c, enum operator_role role)
{
	size_t len = 0;
	const char *s = http_cookie(c->req, "ld_console", &len);
	enum operator_status st;
	enum token_status ts;
	enum ld_err e;

	if (!s) {
		http_error(c->req, 401, "unauthorized", "sign in to the console first");
		return -1;
	}
	e = operator_authenticate(c->app->ledger, &c->app->console_key, OPERATOR_SESSION, s, len,
				  c->now_ms, &c->op, &st, &ts);
	if (e != LD_OK) {
		api_fail(c, e);
		return -1;
	}
	if (st != OPERATOR_OK) {
		http_error(c->req, 401, "unauthorized", "%s: sign in again",
			   st == OPERATOR_BAD_TOKEN ? token_strstatus(ts) : operator_strstatus(st));
		return -1;
	}
	if (c->op.role < role) {
		http_error(c->req, 403, "forbidden", "this needs the %s role; '%s' is %s",
			   operator_role_name(role), c->op.name, operator_role_name(c->op.role));
		return -1;
	}
	return 0;
}

/* The console route's path parameters: the promotion into c->promo; a
 * malformed one, or a malformed user or event id, is 404 with the
 * parameter's code. Returns -1 when it answered. */
static int console_args(struct ctx *c)
{
	const struct path_args *a = &c->args;

	if (a->bad && strcmp(a->bad, "promo") == 0) {
		http_error(c->req, 404, "unknown_promotion", "no promotion '(invalid id)'");
		return -1;
	}
	if (a->promo[0] && !(c->promo = ledger_promo(c->app->ledger, a->promo, c->now_ms))) {
		http_error(c->req, 404, "unknown_promotion", "no promotion '%s'", a->promo);
		return -1;
	}
	if (a->bad && strcmp(a->bad, "uid") == 0) {
		http_error(c->req, 404, "unknown_user", "no such user (invalid id)");
		return -1;
	}
	if (a->bad) {
		http_error(c->req, 404, "unknown_event", "no such outbox event (invalid id)");
		return -1;
	}
	return 0;
}

int route_begin(struct app *app, struct http_req *req, struct ctx *c, int64_t now_ms,
		struct writer_request *q)
{
	char promo_id[PROMO_ID_MAX + 1] = "";
	const struct route *rt;
	const char *uri;
	int bad_promo, console;

	*c = (struct ctx){
		.app = app, .req = req, .now_ms = now_ms, .route = -1, .t0_us = ld_mono_us()
	};
	uri = http_param(req, "REQUEST_URI");
	if (uri && !path_is_plain(uri, req->path)) {
		http_error(req, 400, "bad_path",
			   "the path must be plain: no escapes,"
			   " dot segments or repeated slashes");
		return 0;
	}
	rt = match(req->path, req->method, promo_id, &bad_promo, &c->args);
	console = rt && rt->where == AT_CONSOLE;
	req->strict = console;
	if (!rt || (console && !app->console)) {
		http_error(req, 404, "not_found", rt ? "no console here" : "no such endpoint");
		return 0;
	}
	c->route = (int)(rt - routes);
	req->allow = rt->allow;
	if (req->method != rt->method) {
		http_error(req, 405, "method_not_allowed", "use %s",
			   rt->method == HTTP_GET ? "GET" : "POST");
		return 0;
	}
	if (rt->auth != AUTH_NONE && cross_site(c, console)) {
		http_error(req, 403, "cross_site_request",
			   "a request from another site"
			   " cannot use the sign-in cookie");
		return 0;
	}
	if (req->method == HTTP_POST && !http_is_json(req)) {
		http_error(req, 415, "unsupported_media_type",
			   "the body must be sent as Content-Type: application/json");
		return 0;
	}
	if ((rt->auth == AUTH_USER && authenticate(c) != 0) ||
	    (rt->auth == AUTH_OPERATOR && operator_session(c, rt->role) != 0))
		return 0;
	if (rt->where == AT_PROMO &&
	    (bad_promo || !(c->promo = ledger_promo(app->ledger, promo_id, c->now_ms)))) {
		http_error(req, 404, "unknown_promotion", "no promotion '%s'",
			   bad_promo ? "(invalid id)" : promo_id);
		return 0;
	}
	if (console && console_args(c) != 0)
		return 0;
	if (rt->read) {
		rt->read(c);
		return 0;
	}
	return rt->write(c, q) == 0;
}

/* The 4xx a client meets in the normal course of things: a token that
 * is missing or ran out, a promotion before or after its days or paused
 * by an operator (every page open asks; promo history has the pause). */
static int routine_4xx(const struct http_req *req)
{
	return req->status == 401 ||
		(req->status == 403 && req->outcome &&
		 (strcmp(req->outcome, rule_code(RULE_NOT_ACTIVE)) == 0 ||
		  strcmp(req->outcome, rule_code(RULE_PAUSED)) == 0));
}

/*
 * The priority of a request's journal line, which it gets when the
 * config's log_level lets that priority through. nginx's access log has
 * every request, so only what is worth reading is logged by default:
 * an error (5xx) at LOG_ERR; a slow request (log_slow_ms, 0: none) at
 * LOG_WARNING; a refusal (any other 4xx: a claim or draw refused by a
 * rule, a bad body, an unknown promotion) and an operator's sign-in or
 * change in the console at LOG_NOTICE; and one routine
 * request in log_sample (0: none) at LOG_INFO. Every other one is
 * LOG_DEBUG, which only log_level "debug" shows.
 */
static int log_priority(const struct ctx *c, int64_t us)
{
	static uint64_t routine; /* this process's routine requests, for sampling */
	const struct ld_config *cfg = &c->app->cfg;
	int status = c->req->status;

	if (status >= 500)
		return LOG_ERR;
	if (cfg->log_slow_ms > 0 && us >= (int64_t)cfg->log_slow_ms * 1000)
		return LOG_WARNING;
	if (status >= 400 && !routine_4xx(c->req))
		return LOG_NOTICE;
	if (c->op.name[0] && c->req->method == HTTP_POST)
		return LOG_NOTICE; /* an operator signed in or changed something */
	if (cfg->log_sample > 0 && ++routine % (uint64_t)cfg->log_sample == 0)
		return LOG_INFO;
	return LOG_DEBUG;
}

void route_end(struct ctx *c)
{
	const struct route *rt = c->route >= 0 ? &routes[c->route] : NULL;
	struct http_req *req = c->req;
	int64_t us = ld_mono_us() - c->t0_us;
	int prio;

	counters_request(c->route, http_status_index(req->status), us);
	if (c->app->cache)
		counters_cache(cache_stats(c->app->cache));
	if (ld_log_enabled(prio = log_priority(c, us)))
		ld_log(prio, "request route=%s status=%d user=%s promo=%s ms=%.3f outcome=%s%s%s",
		       rt ? rt->name : "none", req->status,
		       c->uid[0]                ? c->uid
			       : c->args.uid[0] ? c->args.uid
						: "-",
		       c->promo ? c->promo->id : "-", (double)us / 1000.0,
		       req->outcome ? req->outcome : "-", c->op.name[0] ? " operator=" : "",
		       c->op.name);
}

void route_request(struct app *app, struct http_req *req)
{
	struct writer_request q;
	struct writer_reply a;
	struct ctx c;

	if (route_begin(app, req, &c, ld_now_ms(), &q)) {
		writer_call(app->writer, app->ledger, c.promo, &q, &a);
		api_write_answer(&c, &q, &a);
	}
	route_end(&c);
}
