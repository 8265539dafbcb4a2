/*
 * routes.c - the route table and the one dispatch: match method and
 * path, refuse what another site's page could make a browser send (403
 * cross_site_request, 415 unsupported_media_type), check the token and
 * the promotion, call the handler, count the request and log it when it
 * is worth a line.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "counters.h"
#include "path.h"

struct route {
	const char *name;   /* for logs and metrics */
	const char *suffix; /* after /api/promotions/{promo}/, or the full path */
	int promo;          /* under /api/promotions/{promo}/ */
	int auth;           /* needs a user token */
	enum http_method method;
	const char *allow;  /* the Allow header of a 405 */
	handler_fn read;    /* a read: answers */
	write_fn write;     /* a write: checks its request, run after */
};

static const struct route routes[] = {
	{ "visit",   "visit",        1, 1, HTTP_POST, "Allow: POST\r\n", NULL, api_visit },
	{ "invite",  "invite",       1, 1, HTTP_GET,  "Allow: GET\r\n",  api_invite, NULL },
	{ "claim",   "invite/claim", 1, 1, HTTP_POST, "Allow: POST\r\n", NULL, api_claim },
	{ "balance", "balance",      1, 1, HTTP_GET,  "Allow: GET\r\n",  api_balance, NULL },
	{ "draws",   "draws",        1, 1, HTTP_POST, "Allow: POST\r\n", NULL, api_draw },
	{ "me",      "me",           1, 1, HTTP_GET,  "Allow: GET\r\n",  api_me, NULL },
	{ "healthz", "/healthz",     0, 0, HTTP_GET,  "Allow: GET\r\n",  api_healthz, NULL },
	{ "metrics", "/metrics",     0, 0, HTTP_GET,  "Allow: GET\r\n",  api_metrics, NULL },
};

const char *route_name(int i)
{
	return i >= 0 && (size_t)i < sizeof routes / sizeof routes[0] ? routes[i].name : NULL;
}

/*
 * The route of path and, for promotion routes, the promotion id (copied
 * into promo, PROMO_ID_MAX + 1 bytes). Returns NULL when no route has this
 * path; *bad_promo is set when the path has a promotion part that is not
 * a valid id.
 */
static const struct route *match(const char *path, char *promo, int *bad_promo)
{
	const char *rest;
	int under = path_split(path, promo, &rest, bad_promo);

	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
		if (routes[i].promo == under && strcmp(routes[i].suffix, rest) == 0)
			return &routes[i];
	return NULL;
}

/* The token from "Authorization: Bearer X" or else the ld_token cookie;
 * *len gets its length. NULL when neither is there. */
static const char *find_token(const struct http_req *r, size_t *len)
{
	const char *h = http_param(r, "HTTP_AUTHORIZATION"), *c, *end;

	if (h && strncmp(h, "Bearer ", 7) == 0) {
		*len = strlen(h + 7);
		return h + 7;
	}
	if (h)
		return NULL; /* another scheme: not ours */
	for (c = http_param(r, "HTTP_COOKIE"); c && *c; c = end) {
		while (*c == ' ' || *c == ';')
			c++;
		end = strchr(c, ';');
		if (!end)
			end = c + strlen(c);
		if (strncmp(c, "ld_token=", 9) == 0) {
			*len = (size_t)(end - c - 9);
			return c + 9;
		}
	}
	return NULL;
}

/* Checks the user's token into c->uid; answers 401 and returns -1 if it
 * is missing or not good. */
static int authenticate(struct ctx *c)
{
	size_t len = 0;
	const char *tok = find_token(c->req, &len);
	enum token_status st;

	if (!tok) {
		http_error(c->req, 401, "unauthorized", "a token is required"
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
 * Whether a request that the ld_token cookie would sign in comes from
 * another site, which a browser makes when a page elsewhere posts to us
 * (a form, fetch with mode "no-cors", sendBeacon): the browser says so
 * (Sec-Fetch-Site: cross-site), or its Origin is not one of the config's
 * allowed_origins. A request without either header (not a browser, or an
 * old one) is not judged cross-site; its POST must still be JSON, which
 * no page elsewhere can send us without a CORS preflight we never answer.
 * A request with an Authorization header is never cross-site: it is
 * signed in by that header alone (find_token does not read the cookie
 * then), which a browser never adds by itself and a page elsewhere could
 * only add through that same preflight.
 */
static int cross_site(const struct ctx *c)
{
	const struct ld_config *cfg = &c->app->cfg;
	const char *site = http_param(c->req, "HTTP_SEC_FETCH_SITE");
	const char *origin = http_param(c->req, "HTTP_ORIGIN");

	if (http_param(c->req, "HTTP_AUTHORIZATION"))
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

int route_begin(struct app *app, struct http_req *req, struct ctx *c, int64_t now_ms,
		struct writer_request *q)
{
	char promo_id[PROMO_ID_MAX + 1] = "";
	const struct route *rt;
	const char *uri;
	int bad_promo;

	*c = (struct ctx){ .app = app, .req = req, .now_ms = now_ms, .route = -1,
			   .t0_us = ld_mono_us() };
	uri = http_param(req, "REQUEST_URI");
	if (uri && !path_is_plain(uri, req->path)) {
		http_error(req, 400, "bad_path", "the path must be plain: no escapes,"
			   " dot segments or repeated slashes");
		return 0;
	}
	rt = match(req->path, promo_id, &bad_promo);
	if (!rt) {
		http_error(req, 404, "not_found", "no such endpoint");
		return 0;
	}
	c->route = (int)(rt - routes);
	req->allow = rt->allow;
	if (req->method != rt->method) {
		http_error(req, 405, "method_not_allowed", "use %s",
			   rt->method == HTTP_GET ? "GET" : "POST");
		return 0;
	}
	if (rt->auth && cross_site(c)) {
		http_error(req, 403, "cross_site_request", "a request from another site"
			   " cannot use the sign-in cookie");
		return 0;
	}
	if (req->method == HTTP_POST && !http_is_json(req)) {
		http_error(req, 415, "unsupported_media_type",
			   "the body must be sent as Content-Type: application/json");
		return 0;
	}
	if (rt->auth && authenticate(c) != 0)
		return 0;
	if (rt->promo) {
		if (bad_promo || !(c->promo = ledger_promo(app->ledger, promo_id, c->now_ms))) {
			http_error(req, 404, "unknown_promotion", "no promotion '%s'",
				   bad_promo ? "(invalid id)" : promo_id);
			return 0;
		}
	}
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
 * rule, a bad body, an unknown promotion) at LOG_NOTICE; and one routine
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
		ld_log(prio, "request route=%s status=%d user=%s promo=%s ms=%.3f outcome=%s",
		       rt ? rt->name : "none", req->status, c->uid[0] ? c->uid : "-",
		       c->promo ? c->promo->id : "-", (double)us / 1000.0,
		       req->outcome ? req->outcome : "-");
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
