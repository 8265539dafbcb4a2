/*
 * outbox.h - events for the outside world (reward and notification
 * services), written in the same transaction as what caused them and
 * delivered later by luckydice-dispatch.
 *
 * A row is 'pending' until a 2xx marks it 'delivered', or a refusal (or
 * too many attempts) marks it 'dead' for an operator; support tooling may
 * mark one 'revoked', which is never sent. To send, a dispatcher claims
 * due rows with a lease (lease_until, ms): while the lease runs nobody
 * else claims them, and when it ends unmarked (the dispatcher crashed)
 * the rows are due again, with the same key. Every mark names the lease
 * it was made under and changes nothing when the row has been claimed
 * again since, so a dispatcher that lost its lease never marks twice.
 */
#ifndef LD_OUTBOX_H
#define LD_OUTBOX_H

#include "config.h"
#include "ledger.h"

/*
 * Event keys: the promotion, the ledger id (ledger.h), and what the event
 * is about. The ledger id makes a key unique across restores: a ledger
 * restored from a backup gets a new id, so a draw id issued again after
 * the restore never yields a key that was issued before it. Keys written
 * before migration 011 lack the ledger id ("<promo>/draw/<id>/reward")
 * and keep it. Nothing parses keys: an event's draw or invitee is on its
 * row (outbox.draw_id, outbox.invitee).
 */
#define OUTBOX_KEY_DRAW   "%s/%s/draw/%lld/%s" /* promo, ledger id, draw id, "reward"|"notify" */
#define OUTBOX_KEY_INVITE "%s/%s/invite/%s/notify" /* promo, ledger id, invitee */
/* OUTBOX_KEY_DRAW with "{id}" where the draw's id goes: for the rules on
 * PostgreSQL, which learn the id inside the server (sql/pg/). */
#define OUTBOX_KEY_DRAW_TEMPLATE "%s/%s/draw/{id}/%s" /* promo, ledger id, "reward"|"notify" */

/*
 * Adds one pending event inside the caller's open transaction. key is the
 * stable Idempotency-Key (unique: adding an existing key is a no-op);
 * payload is the JSON body to send; draw_id (0: none) and invitee (NULL:
 * none) say what it is about. Returns LD_OK or a database error.
 */
enum ld_err outbox_add(struct ledger *l, const char *kind, const char *key, const char *promo,
		       const char *uid, const char *payload, int64_t draw_id, const char *invitee,
		       int64_t now_ms);

/* A claimed event. The strings belong to the array (outbox_events_free). */
struct outbox_event {
	int64_t id;
	char *key, *kind, *promo, *uid, *payload;
	int attempts;        /* including the one this claim is for */
	int64_t lease_until; /* the claim's lease: pass it back when marking */
};

/* Which kinds a claim may take: a kind whose URL is not configured waits. */
#define OUTBOX_REWARD 0x1 /* reward.issue */
#define OUTBOX_NOTIFY 0x2 /* notify.* */

/*
 * Claims at most max due pending rows of the kinds in mask (oldest next_at
 * first) for lease_ms, counting one attempt each, in one BEGIN IMMEDIATE
 * transaction. *out gets a new array of *n events (NULL when none), freed
 * with outbox_events_free. Returns LD_OK or a database error.
 */
enum ld_err outbox_claim(struct ledger *l, int64_t now_ms, int64_t lease_ms, int mask, int max,
			 struct outbox_event **out, size_t *n);
void outbox_events_free(struct outbox_event *ev, size_t n);

/* What became of one claimed event. */
enum outbox_verdict {
	OUTBOX_DELIVERED, /* 2xx */
	OUTBOX_RETRY,     /* try again at next_at */
	OUTBOX_DEAD,      /* refused, or out of attempts: for an operator */
	OUTBOX_RELEASE,   /* never sent (time ran out): due again, attempt undone */
};

struct outbox_mark {
	int64_t id, lease_until; /* from the claim */
	enum outbox_verdict verdict;
	int status;        /* HTTP status, 0 when there was no answer */
	const char *error; /* what went wrong (NULL when delivered) */
	int64_t next_at;   /* OUTBOX_RETRY */
	const char *kind;  /* from the claim: the outcome is counted
				   * under it (outbox_stats); NULL: not counted */
};

/*
 * Records n outcomes in one transaction, and counts them by kind
 * (delivered, retried, dead; a release is none) in the same one, for
 * outbox_stats. A mark whose lease is no longer the row's (claimed again
 * since) changes and counts nothing; *stale (may be NULL) counts those.
 * Returns LD_OK or a database error (then nothing changed).
 */
enum ld_err outbox_mark(struct ledger *l, const struct outbox_mark *m, size_t n, int64_t now_ms,
			size_t *stale);

/*
 * The wait before the next attempt after attempts failed ones, in ms:
 * full jitter, uniform in [0, min(max, base * 2^(attempts-1))] from rng
 * (NULL: libsodium's), but at least retry_after_ms (the service's
 * Retry-After, 0 when none) and at most the cap or the Retry-After,
 * whichever is larger.
 */
int64_t outbox_backoff_ms(const struct ld_dispatch_config *d, int attempts, int64_t retry_after_ms,
			  const struct ld_rng *rng);

/* Pending rows due at now_ms of the kinds in mask (all kinds: mask 3),
 * leased or not. */
enum ld_err outbox_count_due(struct ledger *l, int64_t now_ms, int mask, int64_t *n);

/* Dead rows: what waits for an operator. */
enum ld_err outbox_count_dead(struct ledger *l, int64_t *n);

/* The kinds of events, as the outbox names them. */
#define OUTBOX_KINDS 3
extern const char *const outbox_kinds[OUTBOX_KINDS]; /* reward.issue, notify.win, notify.invite */

/*
 * What the dispatchers did and what waits. The outcomes are counted by
 * kind as outbox_mark records them (in its transaction, whichever host's
 * dispatcher it was), so they only grow, as counters do; the rest is the
 * outbox now.
 */
struct outbox_stats {
	struct {
		int64_t delivered;         /* events delivered (a 2xx) */
		int64_t retried;           /* attempts that failed, the event due again */
		int64_t dead;              /* events given up on (refused, out of attempts) */
		int64_t last_delivered_ms; /* when the latest delivery was recorded; 0: none */
	} kind[OUTBOX_KINDS];              /* by outbox_kinds */
	int64_t due;                       /* pending events due now, leased or not */
	int64_t oldest_due_ms;             /* next_at of the longest due of them; 0: none */
	int64_t dead_now;                  /* dead events now (a retry makes them pending) */
};

/* Fills *out at now_ms, in one read snapshot: a few rows of counts, and
 * the due and dead events counted inside their partial indexes (no row
 * read), so the cost grows only with those. Returns LD_OK or a database
 * error. */
enum ld_err outbox_stats(struct ledger *l, int64_t now_ms, struct outbox_stats *out);

/* A row as the operator sees it. Strings belong to the array. */
struct outbox_row {
	int64_t id;
	char *key, *kind, *promo, *uid, *state, *last_error, *payload;
	int attempts, last_status; /* last_status 0: none */
	int64_t next_at, lease_until, created_at, done_at;
};

enum outbox_filter {
	OUTBOX_OPEN, /* pending and dead: what is not done */
	OUTBOX_DUE,  /* pending, due at now_ms and not leased */
	OUTBOX_DEAD_ONLY,
	OUTBOX_ALL,
};

/* Rows matching filter in id order, at most limit (0: all). More than
 * OUTBOX_LIST_MAX rows (with limit 0 or past it) is LD_ERR_INVALID: the
 * array is capped. *out is a new array of *n rows (NULL when none),
 * freed with outbox_rows_free. */
#define OUTBOX_LIST_MAX 1000000
enum ld_err outbox_list(struct ledger *l, enum outbox_filter filter, int64_t now_ms, size_t limit,
			struct outbox_row **out, size_t *n);
void outbox_rows_free(struct outbox_row *rows, size_t n);

/* Who makes dead events due again, and why: a line of operator_log
 * (operator.h) in the same transaction. ticket and note may be NULL. */
struct outbox_who {
	const char *actor, *ticket, *note;
};

/*
 * Puts dead rows back to pending, due at now_ms with no attempts counted:
 * the one with id (id > 0), or every dead row (id == 0); with promo not
 * NULL, only rows of that promotion. *changed gets how many; a row that
 * is not dead is left as it is (0 changed), and an id with no row (of
 * promo) is LD_ERR_NOTFOUND. When it changed something, who's
 * "outbox.retry" line is written with it (subject: the id, or "dead").
 */
enum ld_err outbox_retry(struct ledger *l, int64_t id, const char *promo, int64_t now_ms,
			 const struct outbox_who *who, int64_t *changed);

#endif
