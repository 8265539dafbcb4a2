/*
 * writer.c - group commit: the writer process's loop and the workers'
 * client (see writer.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cache.h"
#include "cachesync.h"
#include "listen.h"
#include "token.h"
#include "writer.h"

#define WRITER_MAGIC 0x6c647731u /* "ldw1": same build on both ends */

int writer_socket_path(const char *db, char *out, size_t n)
{
	struct sockaddr_un sun;

	/* A database on a server has no file to put the socket beside: its
	 * writer serves only the FastCGI write socket, and a worker with a
	 * write runs it itself. */
	if (ld_is_conninfo(db))
		return -1;
	if (n > sizeof sun.sun_path)
		n = sizeof sun.sun_path;
	return ld_fmt(out, n, "%s-writer", db);
}

/* ---- the writer ---- */

int writer_listen(const char *path, char *err, size_t errlen)
{
	/* Another writer answering on the path keeps it: both would serve
	 * the same database correctly, and this one takes over when it goes. */
	return ld_listen_unix(path, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0600, 256,
			      err, errlen);
}

struct job {
	int fd;   /* the client's connection: a worker's, or for one of the
		   * writer's own requests its client's */
	int slot; /* -1, or the slot of one of the writer's own requests
		   * (writer_options.take) */
	struct writer_request q;
	struct writer_reply a;
};

/* Runs op with l on p (arg: the invite code or the draw's request_id;
 * client may be NULL): a gets the outcome and the result. */
static enum ld_err run_here(struct ledger *l, const struct promo *p, uint32_t op,
			    const char *uid, const char *arg, const char *client,
			    int64_t now_ms, struct writer_reply *a)
{
	enum rule_outcome o = RULE_OK;
	enum ld_err e;

	switch (op) {
	case WRITER_VISIT:
		e = rules_visit(l, p, uid, now_ms, &o, &a->r.visit);
		break;
	case WRITER_CLAIM:
		e = rules_claim(l, p, uid, arg, client, now_ms, &o, &a->r.claim);
		break;
	case WRITER_DRAW:
		e = rules_draw(l, p, uid, arg, now_ms, rules_rng_sodium, NULL, &o, &a->r.draw);
		break;
	default:
		e = db_error(ledger_db(l), LD_ERR_INVALID, "writer: unknown operation");
	}
	a->err = e;
	a->outcome = o;
	return e;
}

/* Runs one request inside the batch's transaction. */
static void run_job(struct ledger *l, struct job *j)
{
	const struct promo *p = ledger_promo(l, j->q.promo, j->q.now_ms);

	if (!p) {
		j->a.err = LD_ERR_NOTFOUND;
		snprintf(j->a.errmsg, sizeof j->a.errmsg, "writer: no promotion '%s'", j->q.promo);
		return;
	}
	if (run_here(l, p, j->q.op, j->q.uid, j->q.arg, j->q.has_client ? j->q.client : NULL,
		     j->q.now_ms, &j->a) != LD_OK)
		snprintf(j->a.errmsg, sizeof j->a.errmsg, "%s", ledger_errmsg(l));
}

/* One transaction for all of jobs; each gets its answer, and an error
 * when the commit did not keep what it did. Returns 1 if committed.
 * First without savepoints; when a job failed (and so may have left
 * writes it could not undo), all over again with them, so that the
 * failed job alone is undone. Nothing was answered in between. */
static int run_batch(struct ledger *l, struct job *jobs, size_t n)
{
	enum ld_err e;
	int savepoints = 0, failed;

again:
	e = ledger_batch_begin(l, savepoints);
	failed = 0;
	for (size_t i = 0; i < n; i++) {
		memset(&jobs[i].a, 0, sizeof jobs[i].a);
		jobs[i].a.magic = WRITER_MAGIC;
		if (e == LD_OK && !(failed && !savepoints)) {
			run_job(l, &jobs[i]);
			failed |= jobs[i].a.err != LD_OK;
		}
	}
	if (e == LD_OK && !savepoints && (failed || ledger_batch_spoiled(l))) {
		ledger_batch_end(l, 0);
		savepoints = 1;
		goto again;
	}
	if (e == LD_OK)
		e = ledger_batch_end(l, 1);
	if (e == LD_OK)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (jobs[i].a.err == LD_OK) {
			memset(&jobs[i].a.r, 0, sizeof jobs[i].a.r);
			jobs[i].a.err = e;
			snprintf(jobs[i].a.errmsg, sizeof jobs[i].a.errmsg, "%s", ledger_errmsg(l));
		}
	return 0;
}

/* The balances a committed job changed, for the cache. */
static size_t changed(const struct job *j, struct cache_item *out)
{
	const struct writer_reply *a = &j->a;
	size_t n = 0;

	if (a->err != LD_OK || a->outcome != RULE_OK)
		return 0;
	switch (j->q.op) {
	case WRITER_VISIT:
		if (a->r.visit.granted)
			out[n++] = (struct cache_item){ j->q.promo, j->q.uid,
				a->r.visit.bal.version, BALANCE(a->r.visit.bal) };
		break;
	case WRITER_CLAIM:
		out[n++] = (struct cache_item){ j->q.promo, j->q.uid,
			a->r.claim.bal.version, BALANCE(a->r.claim.bal) };
		if (a->r.claim.inviter_granted)
			out[n++] = (struct cache_item){ j->q.promo, a->r.claim.inviter,
				a->r.claim.inviter_bal.version, BALANCE(a->r.claim.inviter_bal) };
		break;
	case WRITER_DRAW:
		if (!a->r.draw.replay)
			out[n++] = (struct cache_item){ j->q.promo, j->q.uid,
				a->r.draw.bal.version, BALANCE(a->r.draw.bal) };
		break;
	}
	return n;
}

/* After a commit: every changed balance to the cache in one pipeline.
 * wait: read Redis' answers now; otherwise they are read before the next
 * use of the cache, while the writer goes on with the next batch.
 * Failures are kept for the repair. */
static void publish(struct cache *cache, struct job *jobs, size_t n,
		    struct cache_item *items, int wait)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += changed(&jobs[i], items + k);
	if (wait)
		cache_put_many(cache, items, k);
	else
		cache_put_send(cache, items, k);
}

/*
 * Drops the jobs whose worker has hung up (it gave up waiting and
 * answered 503, so its request must not run), closing their sockets, and
 * gives back the writer's own requests whose client hung up (nginx gave
 * up waiting, or its client went away);
 * returns how many are left, in order. epoll's events can be older than
 * the hang-up: a writer stopped (SIGSTOP, or just not scheduled) right
 * after epoll_wait gathered them sees them only when it runs again.
 */
static size_t drop_gone(const struct writer_options *opt, struct job *jobs, size_t n,
			struct pollfd *pf)
{
	size_t kept = 0;

	for (size_t i = 0; i < n; i++)
		pf[i] = (struct pollfd){ .fd = jobs[i].fd, .events = POLLRDHUP };
	if (poll(pf, (nfds_t)n, 0) <= 0)
		return n;
	for (size_t i = 0; i < n; i++) {
		if (!(pf[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
			jobs[kept++] = jobs[i];
		else if (jobs[i].slot >= 0)
			opt->give(opt->own, jobs[i].slot, NULL);
		else
			close(jobs[i].fd);
	}
	return kept;
}

/* Answers every job; a worker that gave up waiting is hung up on. */
static void answer(const struct writer_options *opt, struct job *jobs, size_t n, int cached)
{
	for (size_t i = 0; i < n; i++) {
		jobs[i].a.cached = cached;
		if (jobs[i].slot >= 0)
			opt->give(opt->own, jobs[i].slot, &jobs[i].a);
		else if (send(jobs[i].fd, &jobs[i].a, sizeof jobs[i].a, MSG_DONTWAIT | MSG_NOSIGNAL) !=
		    (ssize_t)sizeof jobs[i].a)
			close(jobs[i].fd);
	}
}

/*
 * Copies into the database what the checkpointer has not copied yet (the
 * frames of the last few batches), so that the next batch, finding the
 * WAL all copied, starts it over. When the checkpointer is copying right
 * now (BUSY), or a reader still needed old frames (a partial copy, or the
 * next batch could not start the WAL over), the WAL stays past the
 * threshold and this runs again after the next batch.
 */
static void restart_wal(struct ledger *l, const struct writer_options *opt)
{
	int64_t t0 = ld_mono_us();
	enum ld_err e = ledger_checkpoint(l, 0, NULL);

	if (e == LD_OK && opt->on_checkpoint)
		opt->on_checkpoint(ld_mono_us() - t0);
	else if (e != LD_OK && e != LD_ERR_BUSY && opt->on_error)
		opt->on_error(ledger_errmsg(l));
}

int writer_serve(int listen_fd, struct ledger *l, const struct writer_options *opt,
		 volatile sig_atomic_t *stop)
{
	struct epoll_event ev = { .events = EPOLLIN }, evs[256];
	struct cache *cache = opt->cache;
	int max_batch = opt->max_batch > 0 ? opt->max_batch : 64;
	int own = opt->take ? opt->own_fd : -1, rc = 0;
	struct cache_item *items;
	struct pollfd *pf;
	struct job *jobs;
	int ep;

	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		db_error(ledger_db(l), LD_ERR_IO, "writer: epoll: %s", strerror(errno));
		return -1;
	}
	ev.data.fd = listen_fd;
	if (listen_fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
		db_error(ledger_db(l), LD_ERR_IO, "writer: epoll: %s", strerror(errno));
		close(ep);
		return -1;
	}
	ev.data.fd = own;
	if (own >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, own, &ev) != 0) {
		db_error(ledger_db(l), LD_ERR_IO, "writer: epoll: %s", strerror(errno));
		close(ep);
		return -1;
	}
	jobs = xcalloc((size_t)max_batch, sizeof *jobs);
	items = xcalloc((size_t)max_batch * 2, sizeof *items);
	pf = xcalloc((size_t)max_batch, sizeof *pf);
	while (!*stop) {
		int n = epoll_wait(ep, evs, (int)(sizeof evs / sizeof evs[0]), 1000);
		size_t nj = 0;

		if (n < 0 && errno != EINTR) {
			db_error(ledger_db(l), LD_ERR_IO, "writer: epoll_wait: %s", strerror(errno));
			rc = -1;
			break;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == own) {
				while (nj < (size_t)max_batch) {
					struct job *j = &jobs[nj];
					if ((j->slot = opt->take(opt->own, &j->q, &j->fd)) < 0)
						break;
					nj++;
				}
				continue; /* still readable when full: the next round */
			}
			if (fd == listen_fd) {
				int c;
				while ((c = accept4(listen_fd, NULL, NULL,
						    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					ev.events = EPOLLIN | EPOLLRDHUP;
					ev.data.fd = c;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) != 0)
						close(c);
				}
				continue;
			}
			if (evs[i].events & (EPOLLHUP | EPOLLRDHUP)) {
				/* The worker hung up: it gave up waiting (and
				 * answered 503), so what it sent is not run. */
				close(fd);
				continue;
			}
			if (nj == (size_t)max_batch)
				continue; /* still readable: the next round takes it */
			struct job *j = &jobs[nj];
			ssize_t got = recv(fd, &j->q, sizeof j->q, MSG_DONTWAIT);
			if (got < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (got != (ssize_t)sizeof j->q || j->q.magic != WRITER_MAGIC) {
				close(fd); /* gone, or not one of ours */
				continue;
			}
			j->q.promo[sizeof j->q.promo - 1] = j->q.uid[sizeof j->q.uid - 1] = '\0';
			j->q.arg[sizeof j->q.arg - 1] = j->q.client[sizeof j->q.client - 1] = '\0';
			j->fd = fd;
			j->slot = -1;
			nj++;
		}
		if (nj > 0)
			nj = drop_gone(opt, jobs, nj, pf);
		if (nj > 0) {
			int64_t t0 = ld_mono_us();
			int committed = run_batch(l, jobs, nj);
			int cached = committed && cache;
			/* When reads come from the cache, it is written before
			 * the answers (a user then reads their own write);
			 * otherwise the workers go on while Redis is written. */
			if (cached && opt->cache_before_answer)
				publish(cache, jobs, nj, items, 1);
			answer(opt, jobs, nj, cached);
			int64_t us = ld_mono_us() - t0;
			if (cached && !opt->cache_before_answer)
				publish(cache, jobs, nj, items, 0);
			if (opt->on_batch)
				opt->on_batch(nj, committed, us);
			if (opt->wal_restart_frames > 0 &&
			    ledger_wal_frames(l) >= opt->wal_restart_frames)
				restart_wal(l, opt);
		}
		/* Idle: read what Redis answered to the last pipeline. */
		if (cache && nj == 0)
			cache_put_collect(cache);
		/* Catch the cache up after a Redis outage, between batches
		 * (no network while Redis is in its pause after a failure). */
		if (cache && cache_pending(cache, NULL) > 0)
			cache_repair(cache, cachesync_lookup, l);
	}
	free(pf);
	free(items);
	free(jobs);
	close(ep);
	return rc;
}

/* ---- the workers' client ---- */

struct writer_client {
	char *path;
	int fd;
	int timeout_ms;
	int cached; /* the last answer: the writer wrote the cache */
};

struct writer_client *writer_client_new(const char *path, int timeout_ms)
{
	struct writer_client *w = xcalloc(1, sizeof *w);

	w->path = xstrdup(path);
	w->fd = -1;
	w->timeout_ms = timeout_ms;
	return w;
}

void writer_client_free(struct writer_client *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->path);
	free(w);
}

static void hang_up(struct writer_client *w)
{
	close(w->fd);
	w->fd = -1;
}

static int dial(struct writer_client *w)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = w->timeout_ms / 1000,
			      .tv_usec = (w->timeout_ms % 1000) * 1000 };

	if (strlen(w->path) >= sizeof sun.sun_path)
		return -1;
	strcpy(sun.sun_path, w->path);
	w->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (w->fd < 0)
		return -1;
	if (setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
	    setsockopt(w->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
	    connect(w->fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		hang_up(w);
		return -1;
	}
	return 0;
}

/*
 * Sends q and waits for its answer. Returns 0 with *a filled, 1 when the
 * writer never got q (run it here), -1 when it got q but did not answer.
 */
static int call(struct writer_client *w, struct writer_request *q, struct writer_reply *a)
{
	ssize_t got;

	q->magic = WRITER_MAGIC;
	for (int attempt = 0;; attempt++) {
		if (w->fd < 0 && dial(w) != 0)
			return 1;
		if (send(w->fd, q, sizeof *q, MSG_NOSIGNAL) == (ssize_t)sizeof *q)
			break;
		/* A connection to a writer that has since restarted: dial again
		 * once; a message a peer never read was never acted on. */
		hang_up(w);
		if (attempt == 1)
			return 1;
	}
	do
		got = recv(w->fd, a, sizeof *a, 0);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)sizeof *a || a->magic != WRITER_MAGIC) {
		hang_up(w); /* a late answer must never be read as the next one's */
		return -1;
	}
	a->errmsg[sizeof a->errmsg - 1] = '\0';
	return 0;
}

int writer_request_set(struct writer_request *q, enum writer_op op, const struct promo *p,
		       const char *uid, const char *arg, const char *client, int64_t now_ms)
{
	memset(q, 0, sizeof *q); /* padding too: it is sent as it is */
	q->magic = WRITER_MAGIC;
	q->op = op;
	q->now_ms = now_ms;
	q->has_client = client != NULL;
	if (ld_fmt(q->promo, sizeof q->promo, "%s", p->id) != 0 ||
	    ld_fmt(q->uid, sizeof q->uid, "%s", uid) != 0 ||
	    ld_fmt(q->arg, sizeof q->arg, "%s", arg ? arg : "") != 0 ||
	    ld_fmt(q->client, sizeof q->client, "%s", client ? client : "") != 0)
		return -1;
	return 0;
}

enum ld_err writer_call(struct writer_client *w, struct ledger *l, const struct promo *p,
			struct writer_request *q, struct writer_reply *a)
{
	memset(a, 0, sizeof *a);
	if (w)
		w->cached = 0;
	switch (w ? call(w, q, a) : 1) {
	case 1: /* no writer, or it never got q */
		memset(a, 0, sizeof *a);
		return run_here(l, p, q->op, q->uid, q->arg, q->has_client ? q->client : NULL,
				q->now_ms, a);
	case -1:
		memset(a, 0, sizeof *a);
		a->err = db_error(ledger_db(l), LD_ERR_BUSY,
				  "writer: no answer (it restarted or is stuck)");
		return LD_ERR_BUSY;
	}
	w->cached = a->cached;
	if (a->err != LD_OK)
		db_error(ledger_db(l), (enum ld_err)a->err, "%s", a->errmsg);
	if (q->op == WRITER_CLAIM)
		a->r.claim.inviter[sizeof a->r.claim.inviter - 1] = '\0';
	if (q->op == WRITER_DRAW)
		a->r.draw.prize_id[sizeof a->r.draw.prize_id - 1] = '\0';
	return (enum ld_err)a->err;
}

int writer_cached(const struct writer_client *w)
{
	return w && w->cached;
}

/* writer_call for the typed wrappers: a string too long for a request
 * runs the rule here, with the strings as they are. */
static enum ld_err typed_call(struct writer_client *w, struct ledger *l, enum writer_op op,
			      const struct promo *p, const char *uid, const char *arg,
			      const char *client, int64_t now_ms, enum rule_outcome *outcome,
			      struct writer_reply *a)
{
	struct writer_request q;
	enum ld_err e;

	if (writer_request_set(&q, op, p, uid, arg, client, now_ms) == 0) {
		e = writer_call(w, l, p, &q, a);
	} else {
		memset(a, 0, sizeof *a);
		e = run_here(l, p, op, uid, arg, client, now_ms, a);
	}
	*outcome = (enum rule_outcome)a->outcome;
	return e;
}

enum ld_err writer_visit(struct writer_client *w, struct ledger *l, const struct promo *p,
			 const char *uid, int64_t now_ms, enum rule_outcome *outcome,
			 struct visit_result *r)
{
	struct writer_reply a;
	enum ld_err e = typed_call(w, l, WRITER_VISIT, p, uid, NULL, NULL, now_ms, outcome, &a);

	*r = a.r.visit;
	return e;
}

enum ld_err writer_claim(struct writer_client *w, struct ledger *l, const struct promo *p,
			 const char *uid, const char *code, const char *client,
			 int64_t now_ms, enum rule_outcome *outcome, struct claim_result *r)
{
	struct writer_reply a;
	enum ld_err e = typed_call(w, l, WRITER_CLAIM, p, uid, code, client, now_ms, outcome, &a);

	*r = a.r.claim;
	return e;
}

enum ld_err writer_draw(struct writer_client *w, struct ledger *l, const struct promo *p,
			const char *uid, const char *request_id, int64_t now_ms,
			enum rule_outcome *outcome, struct draw_result *r)
{
	struct writer_reply a;
	enum ld_err e = typed_call(w, l, WRITER_DRAW, p, uid, request_id, NULL, now_ms, outcome,
				   &a);

	*r = a.r.draw;
	/* The writer's index is into its copy of the promotion: find the
	 * prize in ours by id. */
	const struct promo_prize *z = r->prize_id[0] ? promo_prize_find(p, r->prize_id) : NULL;
	r->prize = z ? (int)(z - p->prizes) : -1;
	return e;
}
