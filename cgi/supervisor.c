/*
 * supervisor.c - luckydice-fcgi: reads its options, opens the FastCGI
 * sockets, forks the workers, the writer and the checkpointer (child.h),
 * starts again any that ends, and gives up when they keep failing to
 * start (see the help text below).
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>
#include <systemd/sd-daemon.h>

#include "app.h"
#include "child.h"
#include "counters.h"
#include "listen.h"

/* The rule for children that keep failing to start (ending before they
 * are ready, by an exit or a crash, not killed from outside): that many
 * start failures of one kind within that many seconds, and the
 * supervisor gives up. A child that failed to start is started again at
 * once when it is the first of its kind to fail within those seconds,
 * after RETRY_MS when it is not. */
#define GIVE_UP_FAILURES 5
#define GIVE_UP_SECONDS  30
#define RETRY_MS         1000

#define STR(x)           STR_(x)
#define STR_(x)          #x

static volatile sig_atomic_t stopping; /* SIGTERM/SIGINT seen */

static const char help_text[] =
	"usage: luckydice-fcgi --socket PATH|HOST:PORT [--workers N]\n"
	"                      [--write-socket PATH|HOST:PORT [--write-workers N]]\n"
	"                      [--config FILE]\n"
	"       luckydice-fcgi --help | --version\n"
	"\n"
	"The luckydice FastCGI service: opens the sockets, forks the worker processes,\n"
	"the writer (it commits everyone's writes in groups) and the checkpointer, and\n"
	"starts again any of them that ends. nginx sends the writes (visit, claim,\n"
	"draws) to the write socket and everything else to the other.\n"
	"\n"
	"options:\n"
	"  --socket PATH|HOST:PORT        where the workers accept requests (required);\n"
	"                                 a unix path is made mode 0660 in the group\n"
	"                                 of the config's \"socket_group\" (default:\n"
	"                                 www-data), and refused while another process\n"
	"                                 serves it\n"
	"  --workers N                    worker processes, 1 to 256 (default: the\n"
	"                                 config's \"workers\")\n"
	"  --write-socket PATH|HOST:PORT  where nginx sends the writes; the writer\n"
	"                                 serves it itself, unless there are write\n"
	"                                 workers\n"
	"  --write-workers N              worker processes on the write socket\n"
	"                                 instead, 0 to 256 (default: the config's\n"
	"                                 \"write_workers\")\n"
	"  --config FILE                  the config file (default: $LUCKYDICE_CONFIG\n"
	"                                 if set, else " LD_CONFIG_DEFAULT ")\n"
	"  -h, --help                     print this help and exit\n"
	"  --version                      print the version and exit\n"
	"\n"
	"restarts: a child that ends is started again at once, as is one killed\n"
	"(SIGKILL, SIGTERM) while it starts. One that fails to start (exits or crashes\n"
	"before it is ready: before it has opened its database and all it needs) is\n"
	"too when it is the first of its kind to within " STR(
		GIVE_UP_SECONDS) " seconds, else after a\n"
				 "second. When children of one kind (the workers, the writer, the checkpointer)\n"
				 "fail to start " STR(GIVE_UP_FAILURES) " times within " STR(
					 GIVE_UP_SECONDS) " seconds, luckydice-fcgi gives up: it stops\n"
							  "all its children and exits 1, saying why the last one could not start. The\n"
							  "children end when luckydice-fcgi does, even when it is killed. With\n"
							  "NOTIFY_SOCKET set (systemd, Type=notify) it says READY=1 once every child is\n"
							  "ready, and STOPPING=1 when it stops.\n"
							  "\n"
							  "exit status: 0 stopped by SIGTERM or SIGINT; 1 gave up, children kept failing\n"
							  "to start; 2 cannot start (usage, config, a socket).\n"
							  "\n"
							  "See luckydice-fcgi(8), luckydice.json(5).\n";

static void usage(void)
{
	ld_log(LOG_ERR, "usage: luckydice-fcgi --socket PATH|HOST:PORT [--workers N]");
	ld_log(LOG_ERR,
	       "         [--write-socket PATH|HOST:PORT [--write-workers N]] [--config FILE]");
	ld_log(LOG_ERR, "       luckydice-fcgi --help | --version");
	exit(2);
}

/* One child of the pool. */
struct child {
	pid_t pid;        /* 0: not running */
	int ready;        /* it said it is ready */
	int64_t start_at; /* not running: when to start it (ld_mono_us) */
	char why[240];    /* why it cannot start, when it said */
};

/* The start failures of one kind of child: the times of the last
 * GIVE_UP_FAILURES, a ring. */
struct failures {
	int64_t at[GIVE_UP_FAILURES];
	int next, count;
};

/*
 * The supervisor's children, by slot: the workers on the FastCGI socket,
 * then those on the write socket (when there is one: nginx sends the
 * POSTs there, so the reads keep a small, warm pool while the writes get
 * enough workers to fill the writer's group commits), then the
 * checkpointer (none on PostgreSQL: it keeps SQLite's WAL short), then
 * the writer (none with "writes": "direct", nor with write workers and a
 * database path too long for the writer's socket, or on a server).
 */
struct pool {
	const char *config;    /* the config file's path */
	int read_fd, write_fd; /* write_fd -1: one socket for everything */
	int nread, nwrite;
	int checkpointer; /* 1: a checkpointer process */
	int writer;       /* 1: a writer process */
	int n;            /* slots */
	struct child *kids;
	struct failures failed[CHILD_KINDS];
};

static enum child_kind slot_kind(const struct pool *p, int i)
{
	if (i < p->nread + p->nwrite)
		return CHILD_WORKER;
	return p->checkpointer && i == p->nread + p->nwrite ? CHILD_CHECKPOINTER : CHILD_WRITER;
}

static const char *slot_name(const struct pool *p, int i)
{
	if (i >= p->nread && i < p->nread + p->nwrite)
		return "write worker";
	return child_kind_names[slot_kind(p, i)];
}

static void close_fd(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* Forks the child of slot i; in the child, runs it (never returns).
 * The supervisor's signals are blocked across the fork: a SIGTERM that
 * came to the child before child_start set its own handler would run
 * the supervisor's, which only sets a flag, and the child would never
 * stop (child_start unblocks them, and the SIGTERM is its own then). */
static void spawn(struct pool *p, int i)
{
	struct child *k = &p->kids[i];
	sigset_t block, was;
	pid_t pid;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &was);
	pid = fork();
	if (pid != 0)
		sigprocmask(SIG_SETMASK, &was, NULL);
	if (pid == 0) {
		if (i < p->nread) {
			close_fd(p->write_fd);
			worker_main(p->config, p->read_fd);
		}
		if (i < p->nread + p->nwrite) {
			close_fd(p->read_fd);
			worker_main(p->config, p->write_fd);
		}
		close_fd(p->read_fd);
		if (slot_kind(p, i) == CHILD_CHECKPOINTER) {
			close_fd(p->write_fd);
			checkpointer_main(p->config, !p->writer);
		}
		if (p->nwrite > 0 || p->write_fd < 0) {
			close_fd(p->write_fd);
			writer_main(p->config, -1);
		}
		writer_main(p->config, p->write_fd); /* it serves the write socket itself */
	}
	*k = (struct child){ .pid = pid > 0 ? pid : 0 };
	if (pid < 0) {
		ld_log(LOG_ERR, "luckydice-fcgi: cannot fork a %s: %s; trying again in a second",
		       slot_name(p, i), strerror(errno));
		k->start_at = ld_mono_us() + RETRY_MS * 1000;
	}
}

/* The slot of the child pid, or -1. */
static int slot_of(const struct pool *p, pid_t pid)
{
	for (int i = 0; i < p->n; i++)
		if (p->kids[i].pid == pid)
			return i;
	return -1;
}

/* Reads every note waiting on fd: who is ready, who cannot start. */
static void read_notes(struct pool *p, int fd)
{
	struct child_note n;
	int i;

	while (read(fd, &n, sizeof n) == (ssize_t)sizeof n) {
		if (n.pid <= 0 || (i = slot_of(p, n.pid)) < 0)
			continue;
		if (n.ready)
			p->kids[i].ready = 1;
		else
			snprintf(p->kids[i].why, sizeof p->kids[i].why, "%.*s",
				 (int)sizeof n.why - 1, n.why);
	}
}

/* 1 when a child of kind failed to start within GIVE_UP_SECONDS of now. */
static int failed_lately(const struct pool *p, enum child_kind kind, int64_t now)
{
	const struct failures *f = &p->failed[kind];
	int last = (f->next + GIVE_UP_FAILURES - 1) % GIVE_UP_FAILURES;

	return f->count > 0 && now - f->at[last] <= GIVE_UP_SECONDS * 1000000LL;
}

/* Counts a start failure of kind at now; 1 when it makes
 * GIVE_UP_FAILURES within GIVE_UP_SECONDS. */
static int failed_to_start(struct pool *p, enum child_kind kind, int64_t now)
{
	struct failures *f = &p->failed[kind];

	f->at[f->next] = now;
	f->next = (f->next + 1) % GIVE_UP_FAILURES;
	if (f->count < GIVE_UP_FAILURES)
		f->count++;
	/* f->at[f->next]: the oldest of the last GIVE_UP_FAILURES, now's included */
	return f->count == GIVE_UP_FAILURES && now - f->at[f->next] <= GIVE_UP_SECONDS * 1000000LL;
}

/*
 * The child of slot i ended with status. Says so, and when it is started
 * again. Returns -1 when it makes the supervisor give up, with the
 * reason in why.
 */
static int ended(struct pool *p, int i, int status, char *why, size_t n)
{
	struct child *k = &p->kids[i];
	int64_t now = ld_mono_us();
	pid_t pid = k->pid;
	char how[40];

	snprintf(how, sizeof how, "%s %d", WIFSIGNALED(status) ? "signal" : "exit",
		 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	k->pid = 0;
	/* Killed from outside while it started (SIGKILL, SIGTERM: an
	 * operator, the OOM killer) is no failure of its own: started again
	 * at once, as a running one is. */
	if (!k->ready && WIFSIGNALED(status) &&
	    (WTERMSIG(status) == SIGKILL || WTERMSIG(status) == SIGTERM))
		k->ready = 1;
	if (!k->ready) { /* a start failure */
		int again = failed_lately(p, slot_kind(p, i), now);

		snprintf(why, n, "%s", k->why[0] ? k->why : how);
		if (failed_to_start(p, slot_kind(p, i), now))
			return -1;
		ld_log(LOG_ERR, "luckydice-fcgi: %s %d could not start (%s), trying again%s",
		       slot_name(p, i), (int)pid, how, again ? " in a second" : "");
		k->start_at = again ? now + RETRY_MS * 1000 : now;
		return 0;
	}
	if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0)
		ld_log(LOG_ERR, "luckydice-fcgi: %s %d ended (%s), starting another",
		       slot_name(p, i), (int)pid, how);
	/* could not open what it needs once running: do not spin */
	k->start_at = WIFEXITED(status) && WEXITSTATUS(status) == 4 ? now + RETRY_MS * 1000 : now;
	return 0;
}

/* Starts again the children whose time has come; returns how long until
 * the next one's, in ms (-1: none waits). */
static int start_due(struct pool *p)
{
	int64_t now = ld_mono_us(), next = -1;

	for (int i = 0; i < p->n; i++) {
		struct child *k = &p->kids[i];
		if (k->pid > 0)
			continue;
		if (k->start_at <= now) {
			counters_restart(slot_kind(p, i));
			spawn(p, i);
		}
		if (k->pid == 0 && (next < 0 || k->start_at < next))
			next = k->start_at;
	}
	return next < 0 ? -1 : (int)((next - now) / 1000 + 1);
}

static int all_ready(const struct pool *p)
{
	for (int i = 0; i < p->n; i++)
		if (!p->kids[i].ready)
			return 0;
	return 1;
}

/*
 * Supervises until told to stop (returns 0) or until children keep
 * failing to start (returns 1, having said why). notes: the children's
 * notes (children_prepare).
 */
static int supervise(struct pool *p, int notes)
{
	int told_ready = 0;

	while (!stopping) {
		struct pollfd pf = { .fd = notes, .events = POLLIN };
		pid_t dead[64];
		int status[64], ndead = 0, timeout;
		char why[300];

		/* Who ended, then what they said (before they ended), then
		 * what to do about it. */
		while (ndead < 64 && (dead[ndead] = waitpid(-1, &status[ndead], WNOHANG)) > 0)
			ndead++;
		read_notes(p, notes);
		for (int j = 0; j < ndead; j++) {
			int i = slot_of(p, dead[j]);
			if (i >= 0 && ended(p, i, status[j], why, sizeof why) != 0) {
				ld_log(LOG_ERR,
				       "luckydice-fcgi: giving up: the %s failed to start %d"
				       " times within %d s; the last time: %s",
				       child_kind_names[slot_kind(p, i)], GIVE_UP_FAILURES,
				       GIVE_UP_SECONDS, why);
				sd_notifyf(0,
					   "STOPPING=1\nSTATUS=giving up: the %s cannot start: %s",
					   child_kind_names[slot_kind(p, i)], why);
				return 1;
			}
		}
		timeout = start_due(p);
		if (!told_ready && all_ready(p)) {
			sd_notify(0, "READY=1");
			told_ready = 1;
		}
		if (ndead == 64)
			continue; /* more to reap */
		if (poll(&pf, 1, timeout) < 0 && errno != EINTR)
			sleep(1);
	}
	sd_notify(0, "STOPPING=1");
	return 0;
}

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
	child_wake();
}

static void on_child(int sig)
{
	(void)sig;
	child_wake();
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
		ld_log(LOG_ERR, "fatal: %s wants a number from %d to %d, not '%s'", flag, min, max,
		       arg);
		exit(2);
	}
	return (int)v;
}

/*
 * The group of the FastCGI sockets, the web server's, into *gid: the
 * config's "socket_group", else www-data where that group exists, else
 * (gid_t)-1, the group the files are made with (said once, on stderr).
 * -1 with a message in err when the configured group does not exist.
 */
static int socket_group(const struct ld_config *cfg, gid_t *gid, char *err, size_t errlen)
{
	const char *name = cfg->socket_group ? cfg->socket_group : "www-data";
	struct group *g;

	errno = 0;
	if ((g = getgrnam(name))) {
		*gid = g->gr_gid;
		return 0;
	}
	if (cfg->socket_group) {
		snprintf(err, errlen, "config '%s': \"socket_group\": no group '%s' here%s%s",
			 cfg->path, name, errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	*gid = (gid_t)-1;
	ld_log(LOG_WARNING,
	       "luckydice-fcgi: no group www-data here: the sockets keep the group"
	       " they are made with; set \"socket_group\" to the web server's group");
	return 0;
}

/* The listening socket at where (HOST:PORT, or a unix path made 0660 in
 * group, so that nginx's workers and nobody else can connect); -1 with a
 * message printed. group_name: for that message. */
static int open_socket(const char *where, gid_t group, const char *group_name)
{
	char err[512];
	int fd = ld_listen(where, SOCK_STREAM, 0660, group, 1024, err, sizeof err);

	if (fd < 0 && errno == EPERM)
		ld_log(LOG_ERR,
		       "fatal: %s: luckydice-fcgi is not in the group '%s', nor root"
		       " (under systemd: SupplementaryGroups=%s)",
		       err, group_name, group_name);
	else if (fd < 0)
		ld_log(LOG_ERR, "fatal: %s", err);
	return fd;
}

static void unlink_socket(const char *where)
{
	if (where && ld_listen_is_path(where))
		unlink(where);
}

int main(int argc, char **argv)
{
	enum {
		OPT_SOCKET = 256,
		OPT_WORKERS,
		OPT_WRITE_SOCKET,
		OPT_WRITE_WORKERS,
		OPT_CONFIG,
		OPT_VERSION
	};
	static const struct option options[] = {
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "write-socket", required_argument, NULL, OPT_WRITE_SOCKET },
		{ "write-workers", required_argument, NULL, OPT_WRITE_WORKERS },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *where = NULL, *write_where = NULL;
	struct pool pool = { .config = NULL, .read_fd = -1, .write_fd = -1 };
	int nworkers = 0, nwrite = -1, status, opt, notes, rc;
	struct ld_config cfg;
	char err[512], sock[108], no_writer[640] = "", group_name[64];
	gid_t group;

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case OPT_SOCKET: where = optarg; break;
		case OPT_WORKERS: nworkers = arg_count("--workers", optarg, 1, 256); break;
		case OPT_WRITE_SOCKET: write_where = optarg; break;
		case OPT_WRITE_WORKERS:
			nwrite = arg_count("--write-workers", optarg, 0, 256);
			break;
		case OPT_CONFIG: pool.config = optarg; break;
		case 'h': fputs(help_text, stdout); return 0;
		case OPT_VERSION: printf("luckydice-fcgi %s\n", PACKAGE_VERSION); return 0;
		default: usage();
		}
	}
	if (optind < argc || !where)
		usage();
	if (!pool.config)
		pool.config = config_default_path();
	if (sodium_init() < 0) {
		ld_log(LOG_ERR, "fatal: cannot initialise libsodium");
		return 2;
	}
	/* Read the config once here to fail early with a clear message. */
	if (config_load(pool.config, &cfg, err, sizeof err) != LD_OK) {
		ld_log(LOG_ERR, "fatal: %s", err);
		return 2;
	}
	ld_log_set_level(cfg.log_level);
	if (socket_group(&cfg, &group, err, sizeof err) != 0) {
		ld_log(LOG_ERR, "fatal: %s", err);
		config_release(&cfg);
		return 2;
	}
	snprintf(group_name, sizeof group_name, "%s",
		 cfg.socket_group ? cfg.socket_group : "www-data");
	pool.nread = nworkers > 0 ? nworkers : cfg.workers;
	pool.nwrite = !write_where ? 0 : nwrite >= 0 ? nwrite : cfg.write_workers;
	pool.checkpointer = !ld_is_conninfo(cfg.db);
	/* A writer has something to serve: its own socket next to the
	 * database, or the write socket. */
	pool.writer = !cfg.writes_direct &&
		(app_writer_socket(&cfg, sock) || (write_where && pool.nwrite == 0));
	if (!cfg.writes_direct && !pool.writer) { /* said once the sockets are open */
		app_no_writer_socket(&cfg, err, sizeof err);
		snprintf(no_writer, sizeof no_writer,
			 "luckydice-fcgi: %s; the workers write"
			 " themselves",
			 err);
	}
	config_release(&cfg);
	if (write_where && pool.nwrite == 0 && !pool.writer) {
		/* no writer to serve the write socket */
		pool.nwrite = pool.nread;
		ld_log(LOG_INFO,
		       "luckydice-fcgi: \"writes\" is \"direct\": %d write workers"
		       " serve the write socket",
		       pool.nwrite);
	}
	if (FCGX_Init() != 0 || (pool.read_fd = open_socket(where, group, group_name)) < 0)
		return 2;
	if (write_where && (pool.write_fd = open_socket(write_where, group, group_name)) < 0) {
		unlink_socket(where);
		return 2;
	}

	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa = (struct sigaction){ .sa_handler = on_child, .sa_flags = SA_NOCLDSTOP };
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* The shared counters and the children's notes exist before the
	 * children, so all of them see the same. */
	if (counters_init() != 0)
		ld_log(LOG_WARNING,
		       "warning: cannot map the metrics counters: %s;"
		       " /metrics answers 503",
		       strerror(errno));
	if ((notes = children_prepare()) < 0) {
		ld_log(LOG_ERR, "fatal: cannot make a pipe: %s", strerror(errno));
		unlink_socket(where);
		unlink_socket(write_where);
		return 2;
	}
	if (no_writer[0])
		ld_log(LOG_WARNING, "%s", no_writer);
	pool.n = pool.nread + pool.nwrite + pool.checkpointer + pool.writer;
	pool.kids = xcalloc((size_t)pool.n, sizeof *pool.kids);
	for (int i = 0; i < pool.n; i++)
		spawn(&pool, i);
	if (write_where && pool.nwrite == 0)
		ld_log(LOG_INFO, "luckydice-fcgi: %d workers on %s, the writer on %s", pool.nread,
		       where, write_where);
	else if (write_where)
		ld_log(LOG_INFO, "luckydice-fcgi: %d workers on %s, %d write workers on %s",
		       pool.nread, where, pool.nwrite, write_where);
	else
		ld_log(LOG_INFO, "luckydice-fcgi: %d workers on %s", pool.nread, where);

	rc = supervise(&pool, notes);
	for (int i = 0; i < pool.n; i++)
		if (pool.kids[i].pid > 0)
			kill(pool.kids[i].pid, SIGTERM);
	while (wait(&status) > 0 || errno == EINTR)
		;
	unlink_socket(where);
	unlink_socket(write_where);
	free(pool.kids);
	return rc;
}
