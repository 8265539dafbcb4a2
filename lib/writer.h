/*
 * writer.h - group commit. SQLite has one writer at a time: when several
 * processes each run their own write transactions, they queue on the
 * write lock, and every commit throws away the other processes' page
 * caches. Instead one process, the writer, runs the write rules (visit,
 * claim, draw) for everyone, many requests to a transaction. In three
 * parts:
 *
 *   the batch (writer_batch.c)   runs an array of requests as one
 *                                transaction and fills their replies;
 *                                no sockets, so it is tested directly;
 *   the server (writer.c)        the writer process's loop: gathers the
 *                                requests waiting, runs them as one
 *                                batch, answers each after the commit;
 *   the client (writer_client.c) a worker's side: sends one request and
 *                                waits for its reply, or runs it itself.
 *
 * A batch runs without savepoints: a refusal writes nothing it must undo.
 * When a request fails (an error, not a refusal), the batch is rolled
 * back and run again with a savepoint per request, so that the failed
 * one alone is undone; nothing is answered in between. Nothing is
 * answered before its commit, so a crash of the writer loses nothing
 * acknowledged.
 *
 * The writer gathers requests from two places: the workers, over its
 * own socket (a SOCK_SEQPACKET unix socket next to the database,
 * "<db>-writer", mode 0600, and a peer of another user than the
 * writer's refused; messages are fixed-size structs between processes
 * of the same build, whose instant never runs past the writer's own
 * clock), and requests of its own
 * (writer_options.take): the FastCGI write socket, which it serves itself
 * (cgi/served.c). When the writer cannot be reached (not started yet,
 * restarting, "writes": "direct"), a worker runs the rule itself: the
 * writer makes things fast, never makes them possible.
 */
#ifndef LD_WRITER_H
#define LD_WRITER_H

#include <signal.h>

#include "cache.h"
#include "ledger.h"
#include "rules.h"
#include "token.h"

#define WRITER_MAGIC 0x6c647731u /* "ldw1": same build on both ends */

enum writer_op { WRITER_VISIT = 1, WRITER_CLAIM, WRITER_DRAW };

/* One write. */
struct writer_request {
	uint32_t magic, op; /* op: enum writer_op */
	int64_t now_ms;
	char promo[PROMO_ID_MAX + 1];
	char uid[TOKEN_UID_MAX + 1];
	char arg[REQUEST_ID_MAX + 1]; /* the invite code or the draw's request_id */
	char client[CLIENT_ID_MAX + 1];
	int has_client;
};

/* Its reply. */
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

/* ---- the batch (writer_batch.c) ---- */

/*
 * Runs q with l on p (q's promotion) as the rules do by themselves,
 * outside a batch: what a worker does without a writer. a gets the
 * reply (a draw's prize index is into p). Returns a->err; an error's
 * message is set on l.
 */
enum ld_err writer_run(struct ledger *l, const struct promo *p, const struct writer_request *q,
		       struct writer_reply *a);

/*
 * Runs the n requests q[] as one batch on l: one transaction, committed
 * once. promos[i] is q[i]'s promotion, found by the caller (NULL: there
 * is none, and a[i] is LD_ERR_NOTFOUND). a[i] gets q[i]'s reply, with an
 * error when the commit did not keep what it did. Returns 1 when the
 * batch committed, 0 when it did not (every reply is then an error).
 */
int writer_batch(struct ledger *l, const struct writer_request *q,
		 const struct promo *const *promos, struct writer_reply *a, size_t n);

/* ---- the server (writer.c) ---- */

/* The socket path for database db; -1 when it does not fit out, or
 * when db is on a server (a connection string) and has no file to put
 * the socket beside. */
int writer_socket_path(const char *db, char *out, size_t n);

/* Listens on the writer's socket path. Returns the listening socket, or
 * -1 with a message in err (another writer already answers on path:
 * errno EADDRINUSE). */
int writer_listen(const char *path, char *err, size_t errlen);

struct writer_options {
	struct cache *cache;     /* NULL: no cache (the workers write it) */
	int max_batch;           /* requests per transaction at most (0: 64) */
	int cache_before_answer; /* 1: write the cache, then answer (the
				  * reads come from the cache); 0: answer,
				  * then write it */
	/* 0: checkpoints are someone else's (the ledger's automatic ones,
	 * or another process). > 0 (l opened with own_checkpoints): once
	 * the WAL holds this many frames, a passive checkpoint after each
	 * batch's answers until one has copied everything, so that the
	 * next batch starts the WAL over (ledger_checkpoint). */
	int wal_restart_frames;
	/* After each batch (may be NULL): its requests, whether it
	 * committed, and how long it took, from BEGIN to the last answer
	 * sent (the wait for the write lock included), microseconds. */
	void (*on_batch)(void *arg, size_t requests, int committed, int64_t us);
	/* After each of the checkpoints above that ran (may be NULL): how
	 * long it took, microseconds. */
	void (*on_checkpoint)(void *arg, int64_t us);
	/* An error the writer goes on after (may be NULL): a checkpoint
	 * that failed, a connection to its socket refused. The program
	 * logs it; lib/ prints nothing. */
	void (*on_error)(void *arg, const char *msg);
	void *arg; /* for on_batch, on_checkpoint and on_error */
	/*
	 * The writer's own requests (take NULL: none). While own_fd is
	 * readable and the batch has room, take(own, now_ms, q, p, fd)
	 * fills q with one request, *p with its promotion and *fd with its
	 * client's connection, and returns its slot (>= 0), or -1 when none
	 * is waiting (it answers itself what needs no write). Once the
	 * batch has committed, or failed, give(own, slot, a) answers each;
	 * a NULL a: not run, its client hung up before the batch began. At
	 * most max_batch slots are taken before they are given back.
	 *
	 * now_ms is the same for every take of a round and for every
	 * promotion the server looks up in it: the ledger re-reads its
	 * promotions only when a call's now_ms says it is time to look
	 * (ledger_promo), so the promotions of a round stay valid until its
	 * answers are out, and each is looked up once.
	 */
	int own_fd;
	void *own;
	int (*take)(void *own, int64_t now_ms, struct writer_request *q, const struct promo **p,
		    int *fd);
	void (*give)(void *own, int slot, const struct writer_reply *a);
};

/*
 * Serves requests on listen_fd (-1: only the writer's own) with ledger l
 * until *stop is set (by a signal handler). After each commit the
 * changed balances go to the cache in one pipelined round trip; writes
 * Redis missed are repaired from the ledger between batches. Returns 0
 * when stopped, -1 on a fatal socket error (message in ledger_errmsg).
 */
int writer_serve(int listen_fd, struct ledger *l, const struct writer_options *opt,
		 volatile sig_atomic_t *stop);

/* ---- the client (writer_client.c) ---- */

/* One per worker process; connects on first use. */
struct writer_client;

/* timeout_ms: how long to wait for a reply (the writer's busy timeout
 * plus a margin). */
struct writer_client *writer_client_new(const char *path, int timeout_ms);
void writer_client_free(struct writer_client *w);

/*
 * Runs q through the writer when w is not NULL and the writer answers,
 * else here with l and p (q's promotion, writer_run); a gets the reply.
 * Returns a->err; an error's message is also set on l. A request the
 * writer received but did not answer (it died, or stayed silent past the
 * timeout) is LD_ERR_BUSY (503, try again): it is never run twice here,
 * and a retry by the client is safe because every write is idempotent or
 * refused once done (visit once, claim once, draws by request_id). A
 * worker that gives up hangs up, and the writer does not run what a
 * hung-up worker sent (unless it had already begun). A draw's prize is
 * known by its id (the index may be into the writer's copy of p).
 */
enum ld_err writer_call(struct writer_client *w, struct ledger *l, const struct promo *p,
			struct writer_request *q, struct writer_reply *a);

#endif
