/*
 * worker.c - a worker: accepts FastCGI connections on one socket and
 * routes each one's request (routes.c), one at a time; a write goes
 * through the writer (writer.h), or runs here when there is none.
 *
 * The worker accepts the connections itself, not libfcgi, and hands one
 * to libfcgi only once its whole request has arrived (arrival.h):
 * libfcgi reads blocking and without a deadline, so a connection that
 * sent half a request would hold the worker for as long as its peer
 * liked, and four of them every read. A connection still sending waits
 * in the worker's epoll beside the listening socket, and is closed past
 * its deadline. Each connection serves one request (nginx's
 * fastcgi_keep_conn is off for the reads). Connections are non-blocking:
 * an answer (a few KB; a unix socket takes some 200 KB before it blocks)
 * that its peer does not take is dropped, and never holds the worker.
 *
 * Why not only a receive timeout on each connection (SO_RCVTIMEO): it
 * bounds each read, not the request, so a peer sending a byte a second
 * holds the worker all the same; a unix socket's accepted connections do
 * not inherit it from the listening socket (TCP's do), so it would take
 * a system call per connection anyway; and a peer that sent nothing
 * would still cost 2 s inside libfcgi's own accept. The check costs one
 * peek (a recv with MSG_PEEK) per request.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app.h"
#include "arrival.h"
#include "cachesync.h"
#include "child.h"
#include "finish.h"

/* Connections accepted whose request has not all arrived, per worker;
 * past that, the oldest is closed to make room. */
#define WAITING_MAX 32

static FCGX_Request *current; /* for the out-of-memory answer */
static char oom_answer[256];  /* made before the first request */
static int oom_len;

/* Out of memory: answer 500 to the request in flight and exit; the
 * supervisor starts a fresh worker. Nothing here allocates. */
static void worker_oom(void)
{
	if (current) {
		FCGX_PutStr(oom_answer, oom_len, current->out);
		FCGX_Finish_r(current);
	}
	_exit(3);
}

/* What the worker waits on: the listening socket, and the connections
 * whose request is still arriving, oldest first, each until its
 * deadline (ld_mono_us). */
struct waiting {
	int ep;
	int listen_fd;
	int n;
	int fd[WAITING_MAX];
	int64_t until_us[WAITING_MAX];
};

static int waiting_find(const struct waiting *w, int fd)
{
	for (int i = 0; i < w->n; i++)
		if (w->fd[i] == fd)
			return i;
	return -1;
}

/* Takes connection i off the list; closes it unless keep. */
static void waiting_remove(struct waiting *w, int i, int keep)
{
	if (keep)
		epoll_ctl(w->ep, EPOLL_CTL_DEL, w->fd[i], NULL);
	else
		close(w->fd[i]);
	memmove(&w->fd[i], &w->fd[i + 1], (size_t)(w->n - i - 1) * sizeof w->fd[0]);
	memmove(&w->until_us[i], &w->until_us[i + 1],
		(size_t)(w->n - i - 1) * sizeof w->until_us[0]);
	w->n--;
}

/* Waits for the rest of fd's request: epoll tells when more arrives
 * (edge-triggered: the bytes already there do not wake it again). */
static void waiting_add(struct waiting *w, int fd, int64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = fd };

	if (w->n == WAITING_MAX)
		waiting_remove(w, 0, 0);
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		return;
	}
	w->fd[w->n] = fd;
	w->until_us[w->n++] = now + ARRIVAL_DEADLINE_MS * 1000LL;
}

/* Closes the connections past their deadline; returns the ms until the
 * next one's (-1: none waits). */
static int waiting_expire(struct waiting *w, int64_t now)
{
	int64_t next = -1;

	for (int i = 0; i < w->n;) {
		if (w->until_us[i] <= now) {
			waiting_remove(w, i, 0);
			continue;
		}
		if (next < 0 || w->until_us[i] < next)
			next = w->until_us[i];
		i++;
	}
	return next < 0 ? -1 : (int)((next - now + 999) / 1000);
}

/* Serves the request that has all arrived on fd, then closes fd. */
static void serve(struct app *app, FCGX_Request *fcgi, int fd)
{
	struct http_req req;

	/* libfcgi takes fd as a kept connection (its accept is never
	 * called: the request's listening socket is -1), and closes it
	 * without its lingering wait (detached) if the request is bad. */
	fcgi->ipcFd = fd;
	fcgi->keepConnection = 1;
	FCGX_Detach(fcgi);
	if (FCGX_Accept_r(fcgi) != 0)
		return; /* not a request libfcgi takes: it closed fd */
	child_busy = 1;
	current = fcgi;
	http_req_init(&req, fcgi);
	route_request(app, &req);
	http_req_release(&req);
	fcgi->keepConnection = 0;
	fcgi_finish(fcgi);
	current = NULL;
	/* Between requests: catch the cache up after a Redis outage. */
	if (app->cache && cache_pending(app->cache, NULL) > 0)
		cache_repair(app->cache, cachesync_lookup, app->ledger);
	child_busy = 0;
}

/* The connection fd has something new (or was just accepted): serves
 * its request once it has all arrived. */
static void consider(struct waiting *w, struct app *app, FCGX_Request *fcgi, int fd, int64_t now)
{
	int i = waiting_find(w, fd);

	switch (arrival_peek(fd)) {
	case ARRIVAL_WHOLE:
		if (i >= 0)
			waiting_remove(w, i, 1);
		serve(app, fcgi, fd);
		break;
	case ARRIVAL_NONE:
	case ARRIVAL_PARTIAL:
		if (i < 0)
			waiting_add(w, fd, now);
		break;
	case ARRIVAL_BAD:
		if (i >= 0)
			waiting_remove(w, i, 0);
		else
			close(fd);
		break;
	}
}

/* Accepts one connection, if another worker has not taken it. */
static void accept_one(struct waiting *w, struct app *app, FCGX_Request *fcgi, int64_t now)
{
	int fd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd >= 0) /* else EAGAIN: another worker took it; or it went away */
		consider(w, app, fcgi, fd, now);
}

void worker_main(const char *config, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE }, evs[8];
	struct waiting w = { .listen_fd = fd };
	FCGX_Request fcgi;
	struct app app;
	char err[512];
	int timeout = -1;

	child_start(CHILD_WORKER);
	oom_len = snprintf(oom_answer, sizeof oom_answer,
			   "Status: 500 %s\r\nContent-Type: application/json\r\n\r\n"
			   "{\"error\":\"internal_error\",\"message\":\"out of memory\"}\n",
			   http_reason(500));
	if (oom_len < 0 || (size_t)oom_len >= sizeof oom_answer)
		oom_len = 0; /* cannot happen: then no answer, the worker still ends */
	ld_oom = worker_oom;
	if (app_open(&app, config, err, sizeof err) != 0)
		child_fail("%s", err);
	/* The workers share the listening socket: whoever epoll wakes
	 * accepts, and the others find nothing (non-blocking). */
	ev.data.fd = fd;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
	    (w.ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    epoll_ctl(w.ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		child_fail("cannot watch the FastCGI socket: %s", strerror(errno));
	FCGX_InitRequest(&fcgi, -1, 0);
	child_ready();
	while (!child_stopping) {
		int n = epoll_wait(w.ep, evs, (int)(sizeof evs / sizeof evs[0]), timeout);
		int64_t now = ld_mono_us();

		if (n < 0 && errno != EINTR) {
			ld_log(LOG_ERR, "worker: cannot wait on the FastCGI socket: %s",
			       strerror(errno));
			_exit(4);
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == fd)
				accept_one(&w, &app, &fcgi, now);
			else if (waiting_find(&w, evs[i].data.fd) >= 0)
				consider(&w, &app, &fcgi, evs[i].data.fd, now);
			/* else closed since this round's events were gathered */
		}
		timeout = w.n ? waiting_expire(&w, ld_mono_us()) : -1;
	}
	app_release(&app);
	_exit(0);
}
