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
#include "log.h"
#include "operator.h"
#include "path.h"
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
	struct token_key console_key; /* operators' (operator.h), when console */
	int console;                  /* "console_secret_file" is set */
	struct ledger *ledger;
	struct cache *cache;          /* NULL when no "redis" is configured */
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
	int route;     /* index into the route table; -1: none */
	int64_t t0_us; /* when routing began (ld_mono_us) */
	/* the console's routes */
	struct operator op;    /* who is signed in (op.name "" when nobody) */
	struct path_args args; /* the path's {promo}, {uid}, {id} */
};

/* The writer's socket for cfg's database, into path: 1 when there is a
 * writer process to talk to ("writes": "grouped" and a database path
 * short enough for the socket next to it), else 0. */
int app_writer_socket(const struct ld_config *cfg, char path[108]);

/* Why cfg's database has no writer socket (app_writer_socket 0 with
 * "writes": "grouped"), into why. */
void app_no_writer_socket(const struct ld_config *cfg, char *why, size_t n);

/* Loads the config at config, the token keys and the console's key (when
 * the config names one: operator_key_load) into app (nothing else
 * opened); returns -1 with a message in err. */
int app_load(struct app *app, const char *config, char *err, size_t errlen);

/* Opens the ledger of cfg with lo and checks its schema; 0, or -1 with
 * the reason in err. A database server that cannot be reached yet (a
 * host started before its database, a failover under way) is waited for,
 * trying once a second, rather than failed: a child that cannot start
 * counts toward the supervisor giving up, and this one will serve once
 * the server answers. */
int app_ledger_open(const struct ld_config *cfg, struct ledger_options *lo, struct ledger **out,
		    char *err, size_t errlen);

/* app_load, then opens the ledger (its schema checked), the cache and
 * the writer's client; returns -1 with a message in err (app_release
 * then frees what was opened). */
int app_open(struct app *app, const char *config, char *err, size_t errlen);

/* Frees what app_load and app_open opened. */
void app_release(struct app *app);

/* The reasons of a grant, as the counters number them (metrics.c names
 * them). */
enum grant_reason { GRANT_VISIT, GRANT_INVITEE, GRANT_INVITER, GRANT_REASONS };

/* A read handler answers its request, exactly once. */
typedef void (*handler_fn)(struct ctx *c);

/* A write handler checks its request (the body's fields) into *q and
 * returns 0, or answers it (a 4xx) and returns -1. Whoever routed it
 * then runs q, through the writer or in the writer's batch, and answers
 * from the reply with api_write_answer. */
typedef int (*write_fn)(struct ctx *c, struct writer_request *q);

/* Handlers (api.c). */
int api_visit(struct ctx *c, struct writer_request *q);
int api_claim(struct ctx *c, struct writer_request *q);
int api_draw(struct ctx *c, struct writer_request *q);
void api_invite(struct ctx *c);
void api_balance(struct ctx *c);
void api_me(struct ctx *c);
void api_healthz(struct ctx *c);
void api_metrics(struct ctx *c); /* metrics.c */

/* The console's handlers (console.c): each answers its request. The
 * changes (grant, revoke, retry, pause, resume) run in the worker's own
 * transaction, as luckydicectl's do, not through the writer. */
void console_signin(struct ctx *c);
void console_session(struct ctx *c);
void console_signout(struct ctx *c);
void console_promotions(struct ctx *c);
void console_days(struct ctx *c);
void console_outbox(struct ctx *c);
void console_watch(struct ctx *c);
void console_user(struct ctx *c);
void console_grant(struct ctx *c);
void console_revoke(struct ctx *c);
void console_retry(struct ctx *c);
void console_pause(struct ctx *c);
void console_resume(struct ctx *c);

/* Answers a write (q, checked in by a write handler) from its reply. */
void api_write_answer(struct ctx *c, const struct writer_request *q, const struct writer_reply *a);

/* Answers a lib/ failure: 503 for a busy database, else 500. */
void api_fail(struct ctx *c, enum ld_err e);

/*
 * A request's path through the program, in two halves, so that the
 * writer serving the write socket can run the writes of many requests
 * as one batch in between (served.c):
 *
 * route_begin routes req (at now_ms) into c: it matches the route,
 * checks the token and finds the promotion (once: c->promo), and calls
 * the handler. A read is answered there, and route_begin returns 0. A
 * write is checked into *q and returns 1 (unless it was answered, a bad
 * body say): the caller runs q and answers it (api_write_answer).
 * route_end then counts and logs the request, whatever it was.
 *
 * route_request is both halves for a worker: a write runs through the
 * writer, or here without one (writer_call).
 */
int route_begin(struct app *app, struct http_req *req, struct ctx *c, int64_t now_ms,
		struct writer_request *q);
void route_end(struct ctx *c);
void route_request(struct app *app, struct http_req *req);

/* The name of route i of the table, or NULL past its end (metrics). */
const char *route_name(int i);

#endif
