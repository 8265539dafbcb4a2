/*
 * served.c - the writer process: group commit for every worker
 * (writer.h) and, with "write_workers": 0 (the default), the FastCGI
 * write socket served by the writer itself: no write workers, and no
 * hop from one to the writer.
 *
 * A write's path through the writer serving the write socket:
 *
 *  1. writer_serve (lib/writer.c) waits until the write socket or a
 *     connection nginx kept is readable, and calls served_take for each
 *     request waiting, with the round's instant;
 *  2. served_take accepts the request into a free slot and routes it
 *     (route_begin): the route checks the token and finds the promotion,
 *     the handler checks the body into the slot's writer_request. A read,
 *     or a write refused there (a bad body, a bad token), is answered at
 *     once; a write goes to the batch with its promotion;
 *  3. writer_batch runs the round's writes as one transaction;
 *  4. after the commit, served_give answers each from its reply
 *     (api_write_answer), counts and logs it (route_end), and watches
 *     the connection again for nginx's next request on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "app.h"
#include "child.h"
#include "finish.h"
#include "counters.h"

/* An error the writer went on after (a failed checkpoint). */
static void writer_error(void *arg, const char *msg)
{
	(void)arg;
	ld_log(LOG_WARNING, "writer: %s", msg);
}

/* Counts the writer's batches, and its Redis errors (cache: its cache,
 * or NULL), for /metrics. */
static void writer_counted(void *cache, size_t requests, int committed, int64_t us)
{
	counters_writer_batch(requests, committed, us);
	if (cache)
		counters_cache(cache_stats(cache));
}

static void writer_checkpoint_counted(void *cache, int64_t us)
{
	(void)cache;
	counters_writer_checkpoint(us);
}

/* The writer's socket; while another instance's writer answers on it,
 * waits (its workers write through that one meanwhile) unless once.
 * -1 with a message in err. */
static int listen_when_free(const char *path, int once, char *err, size_t errlen)
{
	int fd, told = 0;

	while ((fd = writer_listen(path, err, errlen)) < 0 && errno == EADDRINUSE &&
	       !child_stopping && !once) {
		if (!told++)
			ld_log(LOG_WARNING, "writer: %s; waiting for it to stop", err);
		sleep(1);
	}
	return fd;
}

/*
 * Each of nginx's connections has a slot (an FCGX_Request kept across its
 * requests: fastcgi_keep_conn); ep holds the listening socket and every
 * idle connection, one event at a time. A write stays in its slot, busy,
 * from served_take to served_give. The listening socket is non-blocking,
 * so accepting stops when nothing waits (libfcgi reads each request
 * blocking, but nginx sends all of one at once).
 */
struct slot {
	FCGX_Request fcgi;
	struct http_req req;
	struct ctx c;
	struct writer_request q;
	int busy;
};

struct served {
	struct app app;
	struct slot *slots;
	int nslots;
	int ep;          /* the listening socket and the idle kept connections */
	int listen_fd;   /* the write socket (borrowed) */
	int full;        /* every slot holds a connection: listen_fd not in ep */
	int64_t told_us; /* when an accept error was last logged */
	int64_t full_told_us; /* when "every slot taken" was last logged */
};

/* Every slot holds a connection: stop watching the listening socket until
 * one is free. Left in ep it would be ready on every wait with nothing
 * able to take it (the writer spun, and each batch ended at it). New
 * connections wait in the socket's backlog meanwhile. */
static void served_full(struct served *s)
{
	if (s->full || epoll_ctl(s->ep, EPOLL_CTL_DEL, s->listen_fd, NULL) != 0)
		return;
	s->full = 1;
	int64_t now = ld_mono_us();
	if (now - s->full_told_us >= 1000000) {
		ld_log(LOG_WARNING, "writer: all %d connection slots hold a connection;"
		       " new ones wait until nginx closes one", s->nslots);
		s->full_told_us = now;
	}
}

/* Watches the listening socket again once sl has no connection. */
static void served_freed(struct served *s, const struct slot *sl)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };

	if (s->full && !sl->busy && sl->fcgi.ipcFd < 0 &&
	    epoll_ctl(s->ep, EPOLL_CTL_ADD, s->listen_fd, &ev) == 0)
		s->full = 0;
}

/* Watches the slot's connection again (for one event), when nginx keeps
 * it for the next request. A descriptor libfcgi closed is gone from ep;
 * the same number may since be a new connection: hence MOD, else ADD. */
static void served_arm(struct served *s, struct slot *sl)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT,
				  .data.u32 = (uint32_t)(sl - s->slots) + 1 };
	int fd = sl->fcgi.ipcFd;

	if (fd < 0)
		return;
	if (epoll_ctl(s->ep, EPOLL_CTL_MOD, fd, &ev) != 0 &&
	    epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		ld_log(LOG_ERR, "writer: cannot watch a connection: %s", strerror(errno));
		sl->fcgi.keepConnection = 0; /* close it rather than lose it */
		fcgi_finish(&sl->fcgi);
	}
}

static void served_end(struct served *s, struct slot *sl)
{
	route_end(&sl->c);
	http_req_release(&sl->req);
	fcgi_finish(&sl->fcgi);
	sl->busy = 0;
	served_arm(s, sl);
	served_freed(s, sl);
}

/* Step 2 (writer_options.take): the next write waiting, routed into its
 * slot; the reads and refused writes on the way are answered here. */
static int served_take(void *own, int64_t now_ms, struct writer_request *q,
		       const struct promo **p, int *fd)
{
	struct served *s = own;

	for (;;) {
		struct epoll_event ev;
		struct slot *sl = NULL;
		int rc;

		if (epoll_wait(s->ep, &ev, 1, 0) != 1)
			return -1;
		if (ev.data.u32 == 0) { /* a new connection: a slot without one */
			for (int i = 0; i < s->nslots && !sl; i++)
				if (!s->slots[i].busy && s->slots[i].fcgi.ipcFd < 0)
					sl = &s->slots[i];
			if (!sl) {
				served_full(s);
				continue;
			}
		} else {
			sl = &s->slots[ev.data.u32 - 1];
		}
		if ((rc = FCGX_Accept_r(&sl->fcgi)) != 0) {
			served_freed(s, sl); /* libfcgi closed its connection */
			if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR)
				continue; /* that connection went away */
			int64_t now = ld_mono_us();
			if (now - s->told_us >= 1000000) {
				ld_log(LOG_ERR, "writer: cannot accept a request: %s",
				       rc < 0 && rc > -4096 ? strerror(-rc) : "libfcgi error");
				s->told_us = now;
			}
			usleep(10 * 1000);
			return -1;
		}
		http_req_init(&sl->req, &sl->fcgi);
		if (route_begin(&s->app, &sl->req, &sl->c, now_ms, &sl->q)) {
			sl->busy = 1;
			*q = sl->q;
			*p = sl->c.promo;
			*fd = sl->fcgi.ipcFd;
			return (int)(sl - s->slots);
		}
		served_end(s, sl);
	}
}

/* Step 4 (writer_options.give): a write's answer, once its batch is
 * done; a NULL a: nginx hung up before the batch began. */
static void served_give(void *own, int slot, const struct writer_reply *a)
{
	struct served *s = own;
	struct slot *sl = &s->slots[slot];

	if (!a) { /* nginx hung up: it answered, and the write is not run */
		sl->req.status = 499;
		sl->fcgi.keepConnection = 0;
	} else {
		api_write_answer(&sl->c, &sl->q, a);
	}
	served_end(s, sl);
}

/* Readies s to serve fcgi_fd with the writer's ledger l and cache (both
 * borrowed); returns -1 with a message in err. */
static int served_open(struct served *s, int fcgi_fd, struct ledger *l, struct cache *cache,
		       char *err, size_t errlen)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };

	s->app.ledger = l; /* borrowed: see struct app */
	s->app.cache = cache;
	s->listen_fd = fcgi_fd;
	s->slots = xcalloc((size_t)s->nslots, sizeof *s->slots);
	for (int i = 0; i < s->nslots; i++)
		FCGX_InitRequest(&s->slots[i].fcgi, fcgi_fd, FCGI_FAIL_ACCEPT_ON_INTR);
	if (fcntl(fcgi_fd, F_SETFL, fcntl(fcgi_fd, F_GETFL) | O_NONBLOCK) != 0 ||
	    (s->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    epoll_ctl(s->ep, EPOLL_CTL_ADD, fcgi_fd, &ev) != 0) {
		snprintf(err, errlen, "cannot watch the write socket: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Closes what served_open opened; the kept connections close with the
 * process. */
static void served_close(struct served *s)
{
	if (s->ep >= 0)
		close(s->ep);
	free(s->slots);
	s->app.ledger = NULL;
	s->app.cache = NULL;
}

/*
 * The writer: one process that runs the workers' write rules, many per
 * transaction (writer.h), and with fcgi_fd >= 0 serves that FastCGI
 * socket itself. Without it (not started, restarting, another
 * instance's writer already serving the database) the workers write
 * themselves.
 */
void writer_main(const char *config, int fcgi_fd)
{
	struct ledger_options lo = { 0 };
	struct served s = { .nslots = 512, .ep = -1 };
	struct ld_config *cfg = &s.app.cfg;
	struct writer_options wo = { .max_batch = 64 };
	struct ledger *l = NULL;
	const char *lid = NULL;
	char err[512], path[108];
	int fd = -1, rc;

	child_start(CHILD_WRITER);
	if (app_load(&s.app, config, err, sizeof err) != 0)
		child_fail("%s", err);
	/* Every write waits for this one process: it goes first for a CPU. */
	if (cfg->writer_nice != 0 && setpriority(PRIO_PROCESS, 0, cfg->writer_nice) != 0)
		ld_log(LOG_WARNING, "writer: cannot take nice %d (%s: see LimitNICE in the"
		       " service unit); it runs at the usual priority", cfg->writer_nice,
		       strerror(errno));
	lo.busy_timeout_ms = cfg->busy_timeout_ms;
	lo.synchronous_full = cfg->synchronous_full;
	lo.own_checkpoints = 1;
	if (app_ledger_open(cfg, &lo, &l, err, sizeof err) != 0)
		child_fail("%s", err);
	if (ledger_id(l, &lid) != LD_OK)
		child_fail("%s", ledger_errmsg(l));
	/* Its own socket, for the workers' writes; without one (the path is
	 * too long, or another writer answers there) it serves only the
	 * write socket, and a worker with a write runs it itself. */
	if (writer_socket_path(cfg->db, path, sizeof path) != 0) {
		app_no_writer_socket(cfg, err, sizeof err);
		if (fcgi_fd < 0)
			child_fail("%s, and there is no write socket to serve", err);
		ld_log(LOG_WARNING, "writer: %s; it serves the write socket, and a worker"
		       " with a write runs it itself", err);
	} else if ((fd = listen_when_free(path, fcgi_fd >= 0, err, sizeof err)) < 0) {
		if (child_stopping)
			_exit(0);
		if (fcgi_fd < 0)
			child_fail("%s", err);
		ld_log(LOG_WARNING, "writer: %s", err);
	}
	wo.cache = cfg->redis ? cache_new(cfg->redis, cfg->redis_timeout_ms, lid) : NULL;
	wo.cache_before_answer = cfg->balance_from_cache;
	wo.wal_restart_frames = cfg->wal_restart_frames;
	wo.on_batch = writer_counted;
	wo.on_checkpoint = writer_checkpoint_counted;
	wo.on_error = writer_error;
	wo.arg = wo.cache;
	if (fcgi_fd >= 0) {
		if (served_open(&s, fcgi_fd, l, wo.cache, err, sizeof err) != 0)
			child_fail("%s", err);
		wo.own_fd = s.ep;
		wo.own = &s;
		wo.take = served_take;
		wo.give = served_give;
	}
	child_ready();
	child_busy = 1; /* SIGTERM: finish the batch in hand, then stop */
	rc = 0;
	if (writer_serve(fd, l, &wo, &child_stopping) != 0) {
		ld_log(LOG_ERR, "writer: %s", ledger_errmsg(l));
		rc = 4;
	}
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	served_close(&s);
	cache_free(wo.cache);
	ledger_free(l);
	app_release(&s.app);
	_exit(rc);
}
