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

/* One per worker process; opened after fork. In the writer serving the
 * write socket itself, the ledger and the cache are the writer's,
 * borrowed. */
struct app {
	struct ld_config cfg;
	struct token_key key;
	struct ledger *ledger;
	struct cache *cache; /* NULL when no "redis" is configured */
	struct writer_client *writer; /* NULL with "writes": "direct", and in
				       * the writer */
};

/* One per request. */
struct ctx {
	struct app *app;
	struct http_req *req;
	int64_t now_ms;
	const struct promo *promo; /* the route's promotion, when it has one */
	char uid[TOKEN_UID_MAX + 1];
	int route;                 /* index into the route table; -1: none */
	int64_t t0_us;             /* when routing began (ld_mono_us) */
	/* The writer serving the write socket itself: a write handler
	 * leaves its checked request here unanswered (deferred set) for
	 * the writer's batch, which answers it with api_write_answer. */
	struct writer_request *defer;
	int deferred;
};

/* The writer's socket for cfg's database, into path: 1 when there is a
 * writer process to talk to ("writes": "grouped" and a database path
 * short enough for the socket next to it), else 0. */
int app_writer_socket(const struct ld_config *cfg, char path[108]);

/* Loads the config at config and the token keys into app (nothing else
 * opened); returns -1 with a message printed. */
int app_load(struct app *app, const char *config);

/* app_load, then opens the ledger (its schema checked), the cache and
 * the writer's client; returns -1 with a message printed. */
int app_open(struct app *app, const char *config);

/* Frees what app_load and app_open opened. */
void app_release(struct app *app);

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

/* Answers a write (visit, claim or draw: op) from the writer's reply. */
void api_write_answer(struct ctx *c, uint32_t op, const struct writer_reply *a);

/* Routes one request and answers it (routes.c). */
void route_request(struct app *app, struct http_req *req);

/*
 * The same in two halves, for the writer serving the write socket
 * itself. route_begin routes req (at now_ms) into c and answers it,
 * except a write when defer is not NULL: that is checked into *defer and
 * left unanswered (c->promo its promotion), and route_begin returns 1.
 * The caller answers it later (api_write_answer), then calls route_end,
 * which counts and logs every request.
 */
int route_begin(struct app *app, struct http_req *req, struct ctx *c, int64_t now_ms,
		struct writer_request *defer);
void route_end(struct ctx *c);

/* The name of route i of the table, or NULL past its end (metrics). */
const char *route_name(int i);

#endif
