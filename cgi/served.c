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
 *  2. served_take accepts new connections into free slots and, once a
 *     connection's request has all arrived (arrival.h), routes it
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
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "app.h"
#include "arrival.h"
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
 * requests: fastcgi_keep_conn); ep holds the listening socket, every
 * connection (edge-triggered: it says when more arrives) and a timer for
 * the deadlines. A write stays in its slot, busy, from served_take to
 * served_give.
 *
 * The writer accepts the connections itself, and hands a connection's
 * request to libfcgi only once all of it is in (arrival.h): libfcgi
 * reads blocking and without a deadline, and the writer holds every
 * write, so two bytes from anyone on the socket used to stall them all,
 * and a connection that sent nothing cost 2 s inside libfcgi's accept.
 * A request that has not all arrived within ARRIVAL_DEADLINE_MS (from
 * the accept, or from its first byte on a kept connection) is closed; a
 * kept connection may sit idle, as nginx keeps it. The connections are
 * non-blocking: a peer that does not take its answer loses it, and
 * never holds the writer.
 *
 * Why this and not a receive timeout per connection (SO_RCVTIMEO): one
 * process serves every connection, so any wait inside libfcgi is every
 * write's wait. A timeout would only bound each stall (a peer sending a
 * byte a second is never timed out), and a unix socket's accepted
 * connections do not inherit it from the listening socket. The check
 * costs one peek (a recv with MSG_PEEK) per request.
 */
struct slot {
	FCGX_Request fcgi;
	struct http_req req;
	struct ctx c;
	struct writer_request q;
	int busy;
	int pending;      /* busy, and epoll said something arrived meanwhile */
	int64_t until_us; /* a request is arriving: its deadline (0: none) */
};

#define TIMER_EVENT UINT32_MAX /* ep's event for the timer; slots are 1.. */

struct served {
	struct app app;
	struct slot *slots;
	int nslots;
	int ep;               /* the listening socket, the connections, the timer */
	int listen_fd;        /* the write socket (borrowed) */
	int timer_fd;         /* the next deadline of a slot */
	int64_t timer_us;     /* when it is set for (0: not set) */
	int full;             /* every slot holds a connection: listen_fd not in ep */
	int64_t told_us;      /* when an accept error was last logged */
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
		ld_log(LOG_WARNING,
		       "writer: all %d connection slots hold a connection;"
		       " new ones wait until nginx closes one",
		       s->nslots);
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

/* Closes the slot's connection (without libfcgi's lingering wait). */
static void served_close_slot(struct served *s, struct slot *sl)
{
	FCGX_Detach(&sl->fcgi);
	FCGX_Free(&sl->fcgi, 1);
	sl->until_us = 0;
	served_freed(s, sl);
}

/* Sets the timer for the earliest deadline of a slot, unless it is set
 * for an earlier one already (it fires, and is set again, then). */
static void served_timer(struct served *s, int64_t until_us, int64_t now)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };
	int64_t us = until_us - now;

	if (s->timer_us && s->timer_us <= until_us)
		return;
	if (us < 1)
		us = 1;
	its.it_value.tv_sec = us / 1000000;
	its.it_value.tv_nsec = us % 1000000 * 1000;
	if (timerfd_settime(s->timer_fd, 0, &its, NULL) == 0)
		s->timer_us = until_us;
}

/* The timer fired: closes the connections whose request has not all
 * arrived by its deadline, and sets the timer for the next. */
static void served_expire(struct served *s)
{
	int64_t now = ld_mono_us(), next = 0;
	uint64_t fired;

	if (read(s->timer_fd, &fired, sizeof fired) < 0) {
		/* nothing: the timer is read only to quiet it */
	}
	s->timer_us = 0;
	for (int i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];
		if (!sl->until_us || sl->busy)
			continue;
		if (sl->until_us <= now)
			served_close_slot(s, sl);
		else if (!next || sl->until_us < next)
			next = sl->until_us;
	}
	if (next)
		served_timer(s, next, now);
}

/* Watches the slot's connection (edge-triggered) from its accept; MOD
 * also reports at once what is there already, which epoll said while the
 * slot was busy. A descriptor libfcgi closed is gone from ep; the same
 * number may since be a new connection: hence MOD, else ADD. */
static void served_arm(struct served *s, struct slot *sl)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET,
				  .data.u32 = (uint32_t)(sl - s->slots) + 1 };
	int fd = sl->fcgi.ipcFd;

	sl->until_us = 0;
	if (fd < 0)
		return;
	if (epoll_ctl(s->ep, EPOLL_CTL_MOD, fd, &ev) != 0 &&
	    epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		ld_log(LOG_ERR, "writer: cannot watch a connection: %s", strerror(errno));
		served_close_slot(s, sl); /* close it rather than lose it */
	}
}

/* After an answer. A connection nginx keeps stays watched as it is:
 * edge-triggered, its next request wakes epoll without a system call
 * here. Only what arrived while the slot was busy (epoll said so, and it
 * was passed over) needs it reported again. */
static void served_end(struct served *s, struct slot *sl)
{
	route_end(&sl->c);
	http_req_release(&sl->req);
	fcgi_finish(&sl->fcgi);
	sl->busy = 0;
	if (sl->pending)
		served_arm(s, sl);
	sl->pending = 0;
	served_freed(s, sl);
}

/* A new connection, into a slot without one: 1 when one is taken, 0
 * when there is none to take or no slot free, -1 when accept fails
 * otherwise (out of descriptors: the socket stays ready, and the caller
 * must not ask again at once). */
static int served_accept(struct served *s, int64_t now)
{
	struct slot *sl = NULL;
	int fd;

	for (int i = 0; i < s->nslots && !sl; i++)
		if (!s->slots[i].busy && s->slots[i].fcgi.ipcFd < 0)
			sl = &s->slots[i];
	if (!sl) {
		served_full(s);
		return 0;
	}
	if ((fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
		    errno == ECONNABORTED)
			return 0; /* that connection went away */
		if (now - s->told_us >= 1000000) {
			ld_log(LOG_ERR, "writer: cannot accept a connection: %s", strerror(errno));
			s->told_us = now;
		}
		return -1;
	}
	/* libfcgi takes it as a kept connection (its own accept is never
	 * called: the requests' listening socket is -1), and closes it
	 * without lingering (detached). */
	sl->fcgi.ipcFd = fd;
	sl->fcgi.keepConnection = 1;
	FCGX_Detach(&sl->fcgi);
	served_arm(s, sl); /* reports at once what is there already */
	if (sl->fcgi.ipcFd >= 0) {
		sl->until_us = now + ARRIVAL_DEADLINE_MS * 1000LL;
		served_timer(s, sl->until_us, now);
	}
	return 1;
}

/* Step 2 (writer_options.take): the next write waiting, routed into its
 * slot; the reads and refused writes on the way are answered here. */
static int served_take(void *own, int64_t now_ms, struct writer_request *q, const struct promo **p,
		       int *fd)
{
	struct served *s = own;

	for (;;) {
		struct epoll_event ev;
		struct slot *sl;
		int64_t now;

		if (epoll_wait(s->ep, &ev, 1, 0) != 1)
			return -1;
		if (ev.data.u32 == 0) { /* a new connection */
			if (served_accept(s, ld_mono_us()) < 0) {
				usleep(10 * 1000); /* rather than spin on it */
				return -1;
			}
			continue;
		}
		if (ev.data.u32 == TIMER_EVENT) {
			served_expire(s);
			continue;
		}
		sl = &s->slots[ev.data.u32 - 1];
		if (sl->busy) {
			sl->pending = 1; /* looked at again once answered */
			continue;
		}
		if (sl->fcgi.ipcFd < 0)
			continue; /* closed since */
		switch (arrival_peek(sl->fcgi.ipcFd)) {
		case ARRIVAL_NONE: /* a kept connection, idle */ continue;
		case ARRIVAL_PARTIAL:
			if (!sl->until_us) {
				now = ld_mono_us();
				sl->until_us = now + ARRIVAL_DEADLINE_MS * 1000LL;
				served_timer(s, sl->until_us, now);
			}
			continue;
		case ARRIVAL_BAD: /* closed, or not a request */ served_close_slot(s, sl); continue;
		case ARRIVAL_WHOLE: break;
		}
		sl->until_us = 0;
		if (FCGX_Accept_r(&sl->fcgi) != 0) {
			/* A request libfcgi refuses (a role it does not play,
			 * bad parameters): it closed the connection. */
			served_freed(s, sl);
			continue;
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
	struct epoll_event tev = { .events = EPOLLIN, .data.u32 = TIMER_EVENT };

	s->app.ledger = l; /* borrowed: see struct app */
	s->app.cache = cache;
	s->listen_fd = fcgi_fd;
	s->slots = xcalloc((size_t)s->nslots, sizeof *s->slots);
	for (int i = 0; i < s->nslots; i++)
		FCGX_InitRequest(&s->slots[i].fcgi, -1, 0); /* see struct slot */
	if (fcntl(fcgi_fd, F_SETFL, fcntl(fcgi_fd, F_GETFL) | O_NONBLOCK) != 0 ||
	    (s->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
	    epoll_ctl(s->ep, EPOLL_CTL_ADD, fcgi_fd, &ev) != 0 ||
	    epoll_ctl(s->ep, EPOLL_CTL_ADD, s->timer_fd, &tev) != 0) {
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
	if (s->timer_fd >= 0)
		close(s->timer_fd);
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
	struct served s = { .nslots = 512, .ep = -1, .timer_fd = -1 };
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
		ld_log(LOG_WARNING,
		       "writer: cannot take nice %d (%s: see LimitNICE in the"
		       " service unit); it runs at the usual priority",
		       cfg->writer_nice, strerror(errno));
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
		ld_log(LOG_WARNING,
		       "writer: %s; it serves the write socket, and a worker"
		       " with a write runs it itself",
		       err);
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
