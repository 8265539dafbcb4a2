/*
 * writer.c - group commit's server: the writer process's loop (see
 * writer.h). Each round gathers the requests waiting (the workers' on
 * the writer's socket, its own through take), runs them as one batch
 * (writer_batch.c), and answers each once the batch has committed.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cache.h"
#include "cachesync.h"
#include "listen.h"
#include "writer.h"

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

int writer_listen(const char *path, char *err, size_t errlen)
{
	/* Another writer answering on the path keeps it: both would serve
	 * the same database correctly, and this one takes over when it goes. */
	return ld_listen_unix(path, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0600, (gid_t)-1,
			      256, err, errlen);
}

/* One round's requests, in parallel arrays of max_batch entries. */
struct batch {
	size_t n;
	struct writer_request *q;
	const struct promo **p; /* q[i]'s promotion, looked up once */
	struct writer_reply *a;
	int *fd;   /* the client's connection: a worker's, or for one of
		    * the writer's own requests its client's */
	int *slot; /* -1, or the slot of one of the writer's own requests */
};

static void batch_alloc(struct batch *b, size_t max)
{
	b->n = 0;
	b->q = xcalloc(max, sizeof *b->q);
	b->p = xcalloc(max, sizeof *b->p);
	b->a = xcalloc(max, sizeof *b->a);
	b->fd = xcalloc(max, sizeof *b->fd);
	b->slot = xcalloc(max, sizeof *b->slot);
}

static void batch_free(struct batch *b)
{
	free(b->q);
	free(b->p);
	free(b->a);
	free(b->fd);
	free(b->slot);
}

/* Moves request from to index to (to <= from), dropping what was there. */
static void batch_move(struct batch *b, size_t to, size_t from)
{
	if (to == from)
		return;
	b->q[to] = b->q[from];
	b->p[to] = b->p[from];
	b->fd[to] = b->fd[from];
	b->slot[to] = b->slot[from];
}

/* The balances request i changed, if it committed, for the cache. */
static size_t changed(const struct batch *b, size_t i, struct cache_item *out)
{
	const struct writer_request *q = &b->q[i];
	const struct writer_reply *a = &b->a[i];
	size_t n = 0;

	if (a->err != LD_OK || a->outcome != RULE_OK)
		return 0;
	switch (q->op) {
	case WRITER_VISIT:
		if (a->r.visit.granted)
			out[n++] = (struct cache_item){ q->promo, q->uid, a->r.visit.bal.version,
							BALANCE(a->r.visit.bal) };
		break;
	case WRITER_CLAIM:
		out[n++] = (struct cache_item){ q->promo, q->uid, a->r.claim.bal.version,
						BALANCE(a->r.claim.bal) };
		if (a->r.claim.inviter_granted)
			out[n++] = (struct cache_item){ q->promo, a->r.claim.inviter,
							a->r.claim.inviter_bal.version,
							BALANCE(a->r.claim.inviter_bal) };
		break;
	case WRITER_DRAW:
		if (!a->r.draw.replay)
			out[n++] = (struct cache_item){ q->promo, q->uid, a->r.draw.bal.version,
							BALANCE(a->r.draw.bal) };
		break;
	}
	return n;
}

/* After a commit: every changed balance to the cache in one pipeline.
 * wait: read Redis' answers now; otherwise they are read before the next
 * use of the cache, while the writer goes on with the next batch.
 * Failures are kept for the repair. */
static void publish(struct cache *cache, const struct batch *b, struct cache_item *items, int wait)
{
	size_t k = 0;

	for (size_t i = 0; i < b->n; i++)
		k += changed(b, i, items + k);
	if (wait)
		cache_put_many(cache, items, k);
	else
		cache_put_send(cache, items, k);
}

/*
 * Drops the requests whose worker has hung up (it gave up waiting and
 * answered 503, so its request must not run), closing their sockets, and
 * gives back the writer's own requests whose client hung up (nginx gave
 * up waiting, or its client went away); the rest stay, in order. epoll's
 * events can be older than the hang-up: a writer stopped (SIGSTOP, or
 * just not scheduled) right after epoll_wait gathered them sees them
 * only when it runs again.
 */
static void drop_gone(const struct writer_options *opt, struct batch *b, struct pollfd *pf)
{
	size_t kept = 0;

	for (size_t i = 0; i < b->n; i++)
		pf[i] = (struct pollfd){ .fd = b->fd[i], .events = POLLRDHUP };
	if (poll(pf, (nfds_t)b->n, 0) <= 0)
		return;
	for (size_t i = 0; i < b->n; i++) {
		if (!(pf[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
			batch_move(b, kept++, i);
		else if (b->slot[i] >= 0)
			opt->give(opt->own, b->slot[i], NULL);
		else
			close(b->fd[i]);
	}
	b->n = kept;
}

/* Answers every request; a worker that gave up waiting is hung up on. */
static void answer(const struct writer_options *opt, struct batch *b, int cached)
{
	for (size_t i = 0; i < b->n; i++) {
		struct writer_reply *a = &b->a[i];

		a->cached = cached;
		if (b->slot[i] >= 0)
			opt->give(opt->own, b->slot[i], a);
		else if (send(b->fd[i], a, sizeof *a, MSG_DONTWAIT | MSG_NOSIGNAL) !=
			 (ssize_t)sizeof *a)
			close(b->fd[i]);
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
		opt->on_checkpoint(opt->arg, ld_mono_us() - t0);
	else if (e != LD_OK && e != LD_ERR_BUSY && opt->on_error)
		opt->on_error(opt->arg, ledger_errmsg(l));
}

/*
 * Accepts every worker waiting on listen_fd into ep. A worker runs as the
 * writer's user; a connection from a process of any other (root, who
 * alone could pass the socket's 0600 besides) is refused, and said
 * through opt->on_error: whatever it sent would run as anyone's write.
 */
static void accept_workers(const struct writer_options *opt, int ep, int listen_fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
	int c;

	while ((c = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct ucred peer = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		socklen_t len = sizeof peer;

		if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 ||
		    peer.uid != geteuid()) {
			char msg[160];
			snprintf(msg, sizeof msg,
				 "refused a connection to the writer's socket"
				 " from process %ld of uid %ld: not the writer's user (%ld)",
				 (long)peer.pid, (long)peer.uid, (long)geteuid());
			if (opt->on_error)
				opt->on_error(opt->arg, msg);
			close(c);
			continue;
		}
		ev.data.fd = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) != 0)
			close(c);
	}
}

/* Reads one worker's request on fd into the batch; its promotion is
 * looked up at now_ms (see take in writer.h). A request's own instant
 * later than now_ms is taken as now_ms: no caller's clock runs a rule
 * past the writer's (a day, a promotion's end, an invitee's window). */
static void receive(struct ledger *l, int fd, int64_t now_ms, struct batch *b)
{
	struct writer_request *q = &b->q[b->n];
	ssize_t got = recv(fd, q, sizeof *q, MSG_DONTWAIT);

	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (got != (ssize_t)sizeof *q || q->magic != WRITER_MAGIC) {
		close(fd); /* gone, or not one of ours */
		return;
	}
	q->promo[sizeof q->promo - 1] = q->uid[sizeof q->uid - 1] = '\0';
	q->arg[sizeof q->arg - 1] = q->client[sizeof q->client - 1] = '\0';
	if (q->now_ms > now_ms)
		q->now_ms = now_ms;
	b->p[b->n] = ledger_promo(l, q->promo, now_ms);
	b->fd[b->n] = fd;
	b->slot[b->n] = -1;
	b->n++;
}

/* Runs the round's batch and answers it, writing the cache before or
 * after the answers; then the WAL's start-over when it is due. */
static void run_round(struct ledger *l, const struct writer_options *opt, struct batch *b,
		      struct cache_item *items)
{
	struct cache *cache = opt->cache;
	int64_t t0 = ld_mono_us();
	int committed = writer_batch(l, b->q, b->p, b->a, b->n);
	int cached = committed && cache;

	/* When reads come from the cache, it is written before the answers
	 * (a user then reads their own write); otherwise the clients go on
	 * while Redis is written. */
	if (cached && opt->cache_before_answer)
		publish(cache, b, items, 1);
	answer(opt, b, cached);
	int64_t us = ld_mono_us() - t0;
	if (cached && !opt->cache_before_answer)
		publish(cache, b, items, 0);
	if (opt->on_batch)
		opt->on_batch(opt->arg, b->n, committed, us);
	if (opt->wal_restart_frames > 0 && ledger_wal_frames(l) >= opt->wal_restart_frames)
		restart_wal(l, opt);
}

int writer_serve(int listen_fd, struct ledger *l, const struct writer_options *opt,
		 volatile sig_atomic_t *stop)
{
	struct epoll_event ev = { .events = EPOLLIN }, evs[256];
	struct cache *cache = opt->cache;
	size_t max_batch = opt->max_batch > 0 ? (size_t)opt->max_batch : 64;
	int own = opt->take ? opt->own_fd : -1, rc = 0;
	struct cache_item *items;
	struct pollfd *pf;
	struct batch b;
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
	batch_alloc(&b, max_batch);
	items = xcalloc(max_batch * 2, sizeof *items);
	pf = xcalloc(max_batch, sizeof *pf);
	while (!*stop) {
		int n = epoll_wait(ep, evs, (int)(sizeof evs / sizeof evs[0]), 1000);
		int64_t now_ms = ld_now_ms(); /* the round's instant (see take) */

		if (n < 0 && errno != EINTR) {
			db_error(ledger_db(l), LD_ERR_IO, "writer: epoll_wait: %s",
				 strerror(errno));
			rc = -1;
			break;
		}
		b.n = 0;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == own) {
				while (b.n < max_batch) {
					int slot = opt->take(opt->own, now_ms, &b.q[b.n], &b.p[b.n],
							     &b.fd[b.n]);
					if (slot < 0)
						break;
					b.slot[b.n++] = slot;
				}
				continue; /* still readable when full: the next round */
			}
			if (fd == listen_fd) {
				accept_workers(opt, ep, listen_fd);
				continue;
			}
			if (evs[i].events & (EPOLLHUP | EPOLLRDHUP)) {
				/* The worker hung up: it gave up waiting (and
				 * answered 503), so what it sent is not run. */
				close(fd);
				continue;
			}
			if (b.n < max_batch) /* else still readable: the next round */
				receive(l, fd, now_ms, &b);
		}
		if (b.n > 0)
			drop_gone(opt, &b, pf);
		if (b.n > 0)
			run_round(l, opt, &b, items);
		/* Idle: read what Redis answered to the last pipeline. */
		if (cache && b.n == 0)
			cache_put_collect(cache);
		/* Catch the cache up after a Redis outage, between batches
		 * (no network while Redis is in its pause after a failure). */
		if (cache && cache_pending(cache, NULL) > 0)
			cache_repair(cache, cachesync_lookup, l);
	}
	free(pf);
	free(items);
	batch_free(&b);
	close(ep);
	return rc;
}
