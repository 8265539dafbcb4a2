/*
 * main.c - luckydice-fcgi: opens the FastCGI socket, forks the worker
 * processes, the checkpointer and the writer, and replaces any that dies;
 * each worker accepts requests one at a time and routes them, sending
 * the writes to the writer (group commit, writer.h).
 *
 * usage: luckydice-fcgi --socket PATH|HOST:PORT [--workers N]
 *                       [--write-socket PATH|HOST:PORT [--write-workers N]]
 *        (config from $LUCKYDICE_CONFIG)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "app.h"
#include "cachesync.h"
#include "finish.h"
#include "listen.h"
#include "metrics.h"

static volatile sig_atomic_t stopping;   /* SIGTERM/SIGINT seen */
static volatile sig_atomic_t in_request; /* worker: a request is being served */
static FCGX_Request *current;           /* worker: for the out-of-memory answer */

static void usage(void)
{
	fprintf(stderr, "usage: luckydice-fcgi --socket PATH|HOST:PORT [--workers N]\n"
		"         [--write-socket PATH|HOST:PORT [--write-workers N]]\n");
	exit(2);
}

/* Worker out-of-memory policy: answer 500 to the request in flight and
 * exit; the supervisor starts a fresh worker. */
static void worker_oom(void)
{
	static const char answer[] =
		"Status: 500 Internal Server Error\r\nContent-Type: application/json\r\n\r\n"
		"{\"error\":\"internal_error\",\"message\":\"out of memory\"}\n";
	if (current) {
		FCGX_PutStr(answer, sizeof answer - 1, current->out);
		FCGX_Finish_r(current);
	}
	_exit(3);
}

/* A worker stops at once when idle, else after the request in flight. */
static void worker_on_term(int sig)
{
	(void)sig;
	stopping = 1;
	if (!in_request)
		_exit(0);
}

/* Whether cfg has a writer process ("writes": "grouped" and a database
 * path short enough for the socket next to it); path gets its socket. */
static int has_writer(const struct ld_config *cfg, char path[108])
{
	return !cfg->writes_direct && writer_socket_path(cfg->db, path, 108) == 0;
}

/* Loads the config and the token keys into app (nothing else opened);
 * returns -1 with a message printed. */
static int app_load(struct app *app)
{
	char err[512];

	memset(app, 0, sizeof *app);
	if (config_load_default(&app->cfg, err, sizeof err) != LD_OK ||
	    token_keys_load(&app->cfg, &app->key, err, sizeof err) != LD_OK) {
		fprintf(stderr, "fatal: %s\n", err);
		return -1;
	}
	return 0;
}

/* Opens per-process resources; returns -1 with a message printed. */
static int app_open(struct app *app)
{
	struct ledger_options lo = { 0 };
	char err[512], path[108];
	enum ld_err e;

	if (app_load(app) != 0)
		return -1;
	lo.busy_timeout_ms = app->cfg.busy_timeout_ms;
	lo.synchronous_full = app->cfg.synchronous_full;
	lo.defer_checkpoints = 1;
	if ((e = ledger_open(app->cfg.db, &lo, &app->ledger, err, sizeof err)) != LD_OK) {
		fprintf(stderr, "fatal: %s\n", err);
		return -1;
	}
	if (ledger_check_schema(app->ledger) != LD_OK) {
		fprintf(stderr, "fatal: %s\n", ledger_errmsg(app->ledger));
		return -1;
	}
	if (app->cfg.redis && !(app->cache = cache_new(app->cfg.redis, app->cfg.redis_timeout_ms))) {
		fprintf(stderr, "fatal: bad \"redis\" address '%s'\n", app->cfg.redis);
		return -1;
	}
	if (has_writer(&app->cfg, path))
		/* wait for the writer as long as it may wait for the lock */
		app->writer = writer_client_new(path, app->cfg.busy_timeout_ms + 3000);
	return 0;
}

static void app_release(struct app *app)
{
	writer_client_free(app->writer);
	cache_free(app->cache);
	ledger_free(app->ledger);
	token_key_release(&app->key);
	config_release(&app->cfg);
}

static void worker(int listen_fd)
{
	struct sigaction sa = { .sa_handler = worker_on_term };
	FCGX_Request fcgi;
	struct http_req req;
	struct app app;

	sigaction(SIGTERM, &sa, NULL);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	ld_oom = worker_oom;
	if (app_open(&app) != 0)
		_exit(4);
	FCGX_InitRequest(&fcgi, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
	while (!stopping && FCGX_Accept_r(&fcgi) == 0) {
		in_request = 1;
		current = &fcgi;
		http_req_init(&req, &fcgi);
		route_request(&app, &req);
		http_req_release(&req);
		fcgi_finish(&fcgi);
		current = NULL;
		/* Between requests: catch the cache up after a Redis outage. */
		if (app.cache && cache_pending(app.cache, NULL) > 0)
			cache_repair(app.cache, cachesync_lookup, app.ledger);
		in_request = 0;
	}
	app_release(&app);
	_exit(0);
}

/*
 * The checkpointer: a process of its own that copies the WAL into the
 * database, so that no worker, and the writer only briefly, pays for a
 * checkpoint and its syncs while answering a request. Passive, so it holds
 * no one up: every 10 ms while there are writes, every 2 ms once the WAL
 * holds 90 % of the writer's threshold, every 100 ms when idle. After
 * each pass it syncs the database file: a passive pass that does not
 * reach the WAL's end never does, so without this the writer's own
 * checkpoint synced every page copied since the WAL began (10-33 ms under
 * full load, growing with the database). The less is left to copy and to
 * sync when the writer starts the WAL over, the shorter its pause (now
 * 2-4 ms).
 *
 * The writer starts the WAL over itself (ledger_checkpoint). Without one
 * ("writes": "direct", or write workers and a database path too long for
 * the writer's socket next to it) a RESTART checkpoint does it, ten times
 * a second as before the writer did. With one, only when the WAL has
 * grown to twice the writer's threshold (the writer is restarting, or a
 * long read held the frames), and at most once a second: a RESTART holds
 * the writes back while it waits for the readers.
 */
static void checkpointer(int writer_serves)
{
	struct sigaction sa = { .sa_handler = worker_on_term };
	struct ledger_options lo = { 0 };
	struct ledger *l = NULL;
	struct ld_config cfg;
	char err[512];

	sigaction(SIGTERM, &sa, NULL);
	signal(SIGINT, SIG_IGN);
	prctl(PR_SET_NAME, "ld-checkpoint"); /* tell it from the workers in ps */
	if (config_load_default(&cfg, err, sizeof err) != LD_OK) {
		fprintf(stderr, "checkpointer: %s\n", err);
		_exit(4);
	}
	/* A restart holds new writers back while it waits for readers: never
	 * for more than 20 ms, whatever the workers' busy timeout. */
	lo.busy_timeout_ms = 20;
	lo.synchronous_full = cfg.synchronous_full;
	if (ledger_open(cfg.db, &lo, &l, err, sizeof err) != LD_OK) {
		fprintf(stderr, "checkpointer: %s\n", err);
		config_release(&cfg);
		_exit(4);
	}
	char sock[108];
	/* The writer serving the write socket starts the WAL over itself,
	 * even when the database's path is too long for its own socket. */
	int writerless = !writer_serves && !has_writer(&cfg, sock);
	if (writerless)
		fprintf(stderr, "checkpointer: no writer process; it starts the WAL over"
			" itself, ten times a second\n");
	int64_t last_restart_us = 0;
	int last_frames = -1;
	while (!stopping) {
		int frames = 0;
		enum ld_err e;

		in_request = 1;
		e = ledger_checkpoint(l, 0, &frames);
		/* What this pass copied goes to disk now, not in the writer's
		 * pause when it starts the WAL over. */
		if (e == LD_OK && frames > 0 && frames != last_frames)
			e = ledger_sync(l);
		if (e == LD_OK && (writerless || frames >= 2 * cfg.wal_restart_frames) &&
		    ld_mono_us() - last_restart_us >= (writerless ? 100000 : 1000000)) {
			last_restart_us = ld_mono_us();
			e = ledger_checkpoint(l, 1, NULL);
		}
		if (e != LD_OK && e != LD_ERR_BUSY && cfg.log_level >= 1)
			fprintf(stderr, "checkpointer: %s\n", ledger_errmsg(l));
		in_request = 0;
		/* Near the writer's start-over: more often, less left. */
		int near = !writerless && frames >= cfg.wal_restart_frames / 10 * 9;
		if (!stopping)
			usleep(frames == last_frames ? 100 * 1000 : near ? 2 * 1000 : 10 * 1000);
		last_frames = frames;
	}
	ledger_free(l);
	config_release(&cfg);
	_exit(0);
}

/* An error the writer went on after (a failed checkpoint). */
static void writer_error(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "writer: %s\n", msg);
}

/* Counts the writer's batches, and its Redis errors (cache: its cache,
 * or NULL), for /metrics. */
static void writer_counted(void *cache, size_t requests, int committed, int64_t us)
{
	metrics_writer(requests, committed, us);
	if (cache)
		metrics_cache(cache_stats(cache));
}

static void writer_checkpoint_counted(void *cache, int64_t us)
{
	(void)cache;
	metrics_writer_checkpoint(us);
}

/* The writer's socket; while another instance's writer answers on it,
 * waits (its workers write through that one meanwhile) unless once. */
static int listen_when_free(const char *path, int once)
{
	char err[512];
	int fd, told = 0;

	while ((fd = writer_listen(path, err, sizeof err)) < 0 && errno == EADDRINUSE &&
	       !stopping && !once) {
		if (!told++)
			fprintf(stderr, "writer: %s; waiting for it to stop\n", err);
		sleep(1);
	}
	if (fd < 0 && !stopping)
		fprintf(stderr, "writer: %s\n", err);
	return fd;
}

/*
 * The writer serving the FastCGI write socket itself ("write_workers":
 * 0): no write workers, and no hop from one to the writer. Each of
 * nginx's connections has a slot (an FCGX_Request kept across its
 * requests); ep holds the listening socket and every idle connection, one
 * event at a time. A request is routed in its slot: a write stays there
 * for the batch (route_begin), anything else is answered at once. After
 * the batch's commit each write is answered, and nginx keeps the
 * connection for its next request (fastcgi_keep_conn). The listening
 * socket is non-blocking, so accepting stops when nothing waits (libfcgi
 * reads each request blocking, but nginx sends all of one at once).
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
		fprintf(stderr, "writer: all %d connection slots hold a connection;"
			" new ones wait until nginx closes one\n", s->nslots);
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
		fprintf(stderr, "writer: cannot watch a connection: %s\n", strerror(errno));
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
				fprintf(stderr, "writer: cannot accept a request: %s\n",
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

static void served_give(void *own, int slot, const struct writer_reply *a)
{
	struct served *s = own;
	struct slot *sl = &s->slots[slot];

	if (!a) { /* nginx hung up: it answered, and the write is not run */
		sl->req.status = 499;
		sl->fcgi.keepConnection = 0;
	} else {
		api_write_answer(&sl->c, sl->q.op, a);
	}
	served_end(s, sl);
}

/* Readies s to serve fcgi_fd with the writer's ledger l and cache (both
 * borrowed); returns -1 with a message printed. */
static int served_open(struct served *s, int fcgi_fd, struct ledger *l, struct cache *cache)
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
		fprintf(stderr, "writer: cannot watch the write socket: %s\n", strerror(errno));
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
static void writer(int fcgi_fd)
{
	struct sigaction sa = { .sa_handler = worker_on_term };
	struct ledger_options lo = { 0 };
	struct served s = { .nslots = 512, .ep = -1 };
	struct ld_config *cfg = &s.app.cfg;
	struct ledger *l = NULL;
	char err[512], path[108];
	int fd = -1, rc = 4, fits;

	sigaction(SIGTERM, &sa, NULL);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "ld-writer");
	if (app_load(&s.app) != 0)
		_exit(4);
	/* Every write waits for this one process: it goes first for a CPU. */
	if (cfg->writer_nice != 0 && setpriority(PRIO_PROCESS, 0, cfg->writer_nice) != 0)
		fprintf(stderr, "writer: cannot take nice %d (%s: see LimitNICE in the"
			" service unit); it runs at the usual priority\n", cfg->writer_nice,
			strerror(errno));
	lo.busy_timeout_ms = cfg->busy_timeout_ms;
	lo.synchronous_full = cfg->synchronous_full;
	lo.own_checkpoints = 1;
	fits = writer_socket_path(cfg->db, path, sizeof path) == 0;
	if (!fits)
		fprintf(stderr, "writer: the path of the database '%s' is too long for"
			" a socket next to it; %s\n", cfg->db, fcgi_fd >= 0 ?
			"it serves the write socket, and a worker with a write runs it itself" :
			"the workers write themselves");
	if (!fits && fcgi_fd < 0) {
		rc = 4; /* nothing to serve */
	} else if (ledger_open(cfg->db, &lo, &l, err, sizeof err) != LD_OK) {
		fprintf(stderr, "writer: %s\n", err);
	} else if ((fd = fits ? listen_when_free(path, fcgi_fd >= 0) : -1) < 0 && fcgi_fd < 0) {
		rc = stopping ? 0 : 4;
	} else {
		in_request = 1; /* SIGTERM: finish the batch in hand, then stop */
		struct writer_options wo = {
			.cache = cfg->redis ? cache_new(cfg->redis, cfg->redis_timeout_ms) : NULL,
			.cache_before_answer = cfg->balance_from_cache,
			.max_batch = 64,
			.wal_restart_frames = cfg->wal_restart_frames,
			.on_batch = writer_counted,
			.on_checkpoint = writer_checkpoint_counted,
			.on_error = writer_error,
		};
		wo.arg = wo.cache;
		int ready = fcgi_fd < 0 || served_open(&s, fcgi_fd, l, wo.cache) == 0;
		if (ready && fcgi_fd >= 0) {
			wo.own_fd = s.ep;
			wo.own = &s;
			wo.take = served_take;
			wo.give = served_give;
		}
		if (ready && writer_serve(fd, l, &wo, &stopping) != 0) {
			fprintf(stderr, "writer: %s\n", ledger_errmsg(l));
			rc = 4;
		} else if (ready) {
			rc = 0;
		}
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		served_close(&s);
		cache_free(wo.cache);
	}
	ledger_free(l);
	app_release(&s.app);
	_exit(rc);
}

/*
 * The supervisor's children, by slot: the workers on the FastCGI socket,
 * then those on the write socket (when there is one: nginx sends the
 * POSTs there, so the reads keep a small, warm pool while the writes get
 * enough workers to fill the writer's group commits), then the
 * checkpointer, then the writer (none with "writes": "direct").
 */
struct pool {
	int read_fd, write_fd; /* write_fd -1: one socket for everything */
	int nread, nwrite;
	int writer;            /* 1: a writer process */
};

static int pool_slots(const struct pool *p)
{
	return p->nread + p->nwrite + 1 + p->writer;
}

static const char *slot_name(const struct pool *p, int i)
{
	if (i < p->nread)
		return "worker";
	if (i < p->nread + p->nwrite)
		return "write worker";
	return i == p->nread + p->nwrite ? "checkpointer" : "writer";
}

static void close_fd(int fd)
{
	if (fd >= 0)
		close(fd);
}

static pid_t spawn(const struct pool *p, int i)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (i < p->nread) {
			close_fd(p->write_fd);
			worker(p->read_fd);
		}
		if (i < p->nread + p->nwrite) {
			close_fd(p->read_fd);
			worker(p->write_fd);
		}
		close_fd(p->read_fd);
		if (i == p->nread + p->nwrite) {
			close_fd(p->write_fd);
			checkpointer(p->writer && p->nwrite == 0 && p->write_fd >= 0);
		}
		if (p->nwrite > 0 || p->write_fd < 0) {
			close_fd(p->write_fd);
			writer(-1);
		}
		writer(p->write_fd); /* it serves the write socket itself */
	}
	if (pid < 0)
		fprintf(stderr, "error: cannot fork a %s: %s\n", slot_name(p, i), strerror(errno));
	return pid;
}

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

/* A count on the command line, from min to max; anything else (a typo
 * that atoi would have read as 0) is fatal. */
static int arg_count(const char *flag, const char *arg, int min, int max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max) {
		fprintf(stderr, "fatal: %s wants a number from %d to %d, not '%s'\n", flag, min,
			max, arg);
		exit(2);
	}
	return (int)v;
}

/* The listening socket at where (a unix path made 0666, so that nginx
 * workers can connect, or HOST:PORT); -1 with a message printed. */
static int open_socket(const char *where)
{
	char err[512];
	int fd = ld_listen(where, SOCK_STREAM, 0666, 1024, err, sizeof err);

	if (fd < 0)
		fprintf(stderr, "fatal: %s\n", err);
	return fd;
}

static void unlink_socket(const char *where)
{
	if (where && ld_listen_is_path(where))
		unlink(where);
}

int main(int argc, char **argv)
{
	const char *where = NULL, *write_where = NULL;
	struct pool pool = { .read_fd = -1, .write_fd = -1 };
	int nworkers = 0, nwrite = -1, status, n;
	struct ld_config cfg;
	char err[512];
	pid_t *pids;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			where = argv[++i];
		else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
			nworkers = arg_count("--workers", argv[++i], 1, 256);
		else if (strcmp(argv[i], "--write-socket") == 0 && i + 1 < argc)
			write_where = argv[++i];
		else if (strcmp(argv[i], "--write-workers") == 0 && i + 1 < argc)
			nwrite = arg_count("--write-workers", argv[++i], 0, 256);
		else
			usage();
	}
	if (!where)
		usage();
	if (sodium_init() < 0) {
		fprintf(stderr, "fatal: cannot initialise libsodium\n");
		return 2;
	}
	/* Read the config once here to fail early with a clear message. */
	if (config_load_default(&cfg, err, sizeof err) != LD_OK) {
		fprintf(stderr, "fatal: %s\n", err);
		return 2;
	}
	pool.nread = nworkers > 0 ? nworkers : cfg.workers;
	pool.nwrite = !write_where ? 0 : nwrite >= 0 ? nwrite : cfg.write_workers;
	pool.writer = !cfg.writes_direct;
	config_release(&cfg);
	if (write_where && pool.nwrite == 0 && !pool.writer) {
		/* no writer to serve the write socket */
		pool.nwrite = pool.nread;
		fprintf(stderr, "luckydice-fcgi: \"writes\" is \"direct\": %d write workers"
			" serve the write socket\n", pool.nwrite);
	}
	if (FCGX_Init() != 0 || (pool.read_fd = open_socket(where)) < 0)
		return 2;
	if (write_where && (pool.write_fd = open_socket(write_where)) < 0) {
		unlink_socket(where);
		return 2;
	}

	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* The shared counters exist before the workers, so all of them see
	 * the same mapping. */
	if (metrics_init() != 0)
		fprintf(stderr, "warning: cannot map the metrics counters: %s;"
			" /metrics answers 503\n", strerror(errno));
	n = pool_slots(&pool);
	pids = xcalloc((size_t)n, sizeof *pids);
	for (int i = 0; i < n; i++)
		pids[i] = spawn(&pool, i);
	if (write_where && pool.nwrite == 0)
		fprintf(stderr, "luckydice-fcgi: %d workers on %s, the writer on %s\n",
			pool.nread, where, write_where);
	else if (write_where)
		fprintf(stderr, "luckydice-fcgi: %d workers on %s, %d write workers on %s\n",
			pool.nread, where, pool.nwrite, write_where);
	else
		fprintf(stderr, "luckydice-fcgi: %d workers on %s\n", pool.nread, where);

	/* Supervise: replace a child that dies, until told to stop. */
	while (!stopping) {
		pid_t pid = wait(&status);
		if (pid < 0) {
			if (errno != EINTR)
				sleep(1);
			continue;
		}
		for (int i = 0; i < n; i++) {
			if (pids[i] != pid)
				continue;
			if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0)
				fprintf(stderr, "luckydice-fcgi: %s %d ended (%s %d), starting another\n",
					slot_name(&pool, i), (int)pid,
					WIFSIGNALED(status) ? "signal" : "exit",
					WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			if (WIFEXITED(status) && WEXITSTATUS(status) == 4) {
				/* could not open its resources: do not spin */
				sleep(1);
			}
			pids[i] = stopping ? 0 : spawn(&pool, i);
		}
	}
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	while (wait(&status) > 0 || errno == EINTR)
		;
	unlink_socket(where);
	unlink_socket(write_where);
	free(pids);
	return 0;
}
