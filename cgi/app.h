/*
 * app.h - the FastCGI program's state: what a worker process opens once
 * (config, ledger, cache, token key) and what one request carries.
 */
#ifndef LD_APP_H
#define LD_APP_H

#include "cache.h"
#include "config.h"
#include "http.h"
#include "ledger.h"
#include "promo.h"
#include "rules.h"
#include "token.h"
#include "writer.h"

/* One per worker process; opened after fork. */
struct app {
	struct ld_config cfg;
	struct token_key key;
	struct ledger *ledger;
	struct cache *cache; /* NULL when no "redis" is configured */
	struct writer_client *writer; /* NULL with "writes": "direct" */
};

/* One per request. */
struct ctx {
	struct app *app;
	struct http_req *req;
	int64_t now_ms;
	const struct promo *promo; /* the route's promotion, when it has one */
	char uid[TOKEN_UID_MAX + 1];
};

typedef void (*handler_fn)(struct ctx *c);

/* Handlers (api.c). Each answers exactly once. */
void api_visit(struct ctx *c);
void api_invite(struct ctx *c);
void api_claim(struct ctx *c);
void api_balance(struct ctx *c);
void api_draw(struct ctx *c);
void api_me(struct ctx *c);
void api_healthz(struct ctx *c);
void api_metrics(struct ctx *c); /* metrics.c */

/* Answers a lib/ failure: 503 for a busy database, else 500. */
void api_fail(struct ctx *c, enum ld_err e);

/* Routes one request (routes.c). */
void route_request(struct app *app, struct http_req *req);

/* The name of route i of the table, or NULL past its end (metrics). */
const char *route_name(int i);

#endif
