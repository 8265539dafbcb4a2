/*
 * writer.h - group commit. SQLite has one writer at a time; when several
 * worker processes each run their own write transactions, they queue on
 * the write lock, and every commit also throws away the other processes'
 * page caches. Instead, one process (the writer) runs the write rules
 * (visit, claim, draw) for all workers: it takes every request waiting
 * on its socket, runs each in a savepoint of one transaction, commits
 * once, and only then answers each worker (and writes the new balances
 * to the cache, before or after the answers). Nothing is answered before
 * its commit, so a crash of the writer loses nothing acknowledged.
 *
 * The workers call writer_visit/claim/draw, which have the signatures of
 * rules_visit/claim/draw plus the client. When the writer cannot be
 * reached (not started yet, restarting, "writes": "direct"), the call
 * runs the rule in the calling process, as before group commit: the
 * writer makes things fast, never makes them possible. A request the
 * writer received but did not answer (it died, or stayed silent past the
 * timeout) is LD_ERR_BUSY (503, try again); it is never run twice here,
 * and a retry by the client is safe because every write is idempotent or
 * refused once done (visit once, claim once, draws by request_id). A
 * worker that gives up hangs up, and the writer does not run what a
 * hung-up worker sent (unless it had already begun).
 *
 * The socket is a SOCK_SEQPACKET unix socket next to the database
 * ("<db>-writer", mode 0600); messages are fixed-size structs between
 * processes of the same build.
 *
 * The writer can also take requests of its own (writer_options.take):
 * the FastCGI write socket, which it then serves itself instead of
 * write workers (cgi/main.c). Those requests join the same batches and
 * are answered after the same commit, without the hop through a worker.
 */
#ifndef LD_WRITER_H
#define LD_WRITER_H

#include <signal.h>

#include "cache.h"
#include "ledger.h"
#include "rules.h"
#include "token.h"

enum writer_op { WRITER_VISIT = 1, WRITER_CLAIM, WRITER_DRAW };

/* One write, as a worker sends it. */
struct writer_request {
	uint32_t magic, op; /* op: enum writer_op */
	int64_t now_ms;
	char promo[PROMO_ID_MAX + 1];
	char uid[TOKEN_UID_MAX + 1];
	char arg[REQUEST_ID_MAX + 1]; /* the invite code or the draw's request_id */
	char client[CLIENT_ID_MAX + 1];
	int has_client;
};

/* Its answer. */
struct writer_reply {
	uint32_t magic;
	int32_t err;     /* enum ld_err */
	int32_t outcome; /* enum rule_outcome */
	int32_t cached;  /* the writer wrote the new balances to the cache */
	char errmsg[256];
	union {
		struct visit_result visit;
		struct claim_result claim;
		struct draw_result draw;
	} r;
};

/* Fills q (all of it, padding too) for op on promotion p; arg and client
 * may be NULL. Returns -1 when a string does not fit. */
int writer_request_set(struct writer_request *q, enum writer_op op, const struct promo *p,
		       const char *uid, const char *arg, const char *client, int64_t now_ms);

/* The socket path for database db; -1 when it does not fit out. */
int writer_socket_path(const char *db, char *out, size_t n);

/* The writer's side. Returns the listening socket, or -1 with a message
 * in err (another writer already answers on path: errno EADDRINUSE). */
int writer_listen(const char *path, char *err, size_t errlen);

struct writer_options {
	struct cache *cache; /* NULL: no cache (the workers write it) */
	int max_batch;       /* requests per transaction at most (0: 64) */
	int cache_before_answer; /* 1: write the cache, then answer (the
				  * reads come from the cache); 0: answer,
				  * then write it */
	/* After each batch (may be NULL): its requests, whether it
	 * committed, and how long it took, from BEGIN to the last answer
	 * sent (the wait for the write lock included), microseconds. */
	void (*on_batch)(size_t requests, int committed, int64_t us);
	/* 0: checkpoints are someone else's (the ledger's automatic ones,
	 * or another process). > 0 (l opened with own_checkpoints): once
	 * the WAL holds this many frames, a passive checkpoint after each
	 * batch's answers until one has copied everything, so that the
	 * next batch starts the WAL over (ledger_checkpoint). */
	int wal_restart_frames;
	/* After each of those checkpoints that ran (may be NULL): how long
	 * it took, microseconds. */
	void (*on_checkpoint)(int64_t us);
	/* An error the writer goes on after (may be NULL): a checkpoint
	 * that failed. The program logs it; lib/ prints nothing. */
	void (*on_error)(const char *msg);
	/* The writer's own requests (take NULL: none). While own_fd is
	 * readable and the batch has room, take(own, q, fd) fills q with
	 * one request and *fd with its client's connection, and returns its
	 * slot (>= 0), or -1 when none is waiting (it answers itself what
	 * needs no write). Once the batch has committed, or failed,
	 * give(own, slot, a) answers each; a NULL a: not run, its client
	 * hung up before the batch began. At most max_batch slots are taken
	 * before they are given back. */
	int own_fd;
	void *own;
	int (*take)(void *own, struct writer_request *q, int *fd);
	void (*give)(void *own, int slot, const struct writer_reply *a);
};

/*
 * Serves requests on listen_fd (-1: only the writer's own) with ledger l until *stop is set (by a
 * signal handler). After each commit the changed balances go to the
 * cache in one pipelined round trip; writes Redis missed are repaired
 * from the ledger between batches. Returns 0 when stopped, -1 on a fatal
 * socket error (message in ledger_errmsg).
 */
int writer_serve(int listen_fd, struct ledger *l, const struct writer_options *opt,
		 volatile sig_atomic_t *stop);

/* The workers' side: one per process, connects on first use. */
struct writer_client;

/* timeout_ms: how long to wait for an answer (the writer's busy timeout
 * plus a margin). */
struct writer_client *writer_client_new(const char *path, int timeout_ms);
void writer_client_free(struct writer_client *w);

/* As rules_visit/claim/draw (draws use rules_rng_sodium), through the
 * writer when w is not NULL and the writer answers. On an error, the
 * message is set on l (ledger_errmsg). */
enum ld_err writer_visit(struct writer_client *w, struct ledger *l, const struct promo *p,
			 const char *uid, int64_t now_ms, enum rule_outcome *outcome,
			 struct visit_result *r);
enum ld_err writer_claim(struct writer_client *w, struct ledger *l, const struct promo *p,
			 const char *uid, const char *code, const char *client,
			 int64_t now_ms, enum rule_outcome *outcome, struct claim_result *r);
enum ld_err writer_draw(struct writer_client *w, struct ledger *l, const struct promo *p,
			const char *uid, const char *request_id, int64_t now_ms,
			enum rule_outcome *outcome, struct draw_result *r);

/* Runs q through the writer when w is not NULL and the writer answers,
 * else in this process with l and p (q's promotion); a gets the answer.
 * Returns a->err; an error's message is also set on l. A draw's prize
 * is known by its id (the index may be into the writer's copy). */
enum ld_err writer_call(struct writer_client *w, struct ledger *l, const struct promo *p,
			struct writer_request *q, struct writer_reply *a);

/* 1 when the last call's new balances were written to the cache by the
 * writer (the caller then does not write them again). */
int writer_cached(const struct writer_client *w);

#endif
