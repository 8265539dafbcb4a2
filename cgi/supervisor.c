/*
 * supervisor.c - luckydice-fcgi: reads its options, opens the FastCGI
 * sockets, forks the workers, the checkpointer and the writer (child.h),
 * and replaces any that ends (see the help text below).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "app.h"
#include "child.h"
#include "listen.h"
#include "counters.h"

static volatile sig_atomic_t stopping; /* SIGTERM/SIGINT seen */

static const char help_text[] =
"NAME\n"
"    luckydice-fcgi - the luckydice FastCGI service: workers, writer, checkpointer\n"
"\n"
"SYNOPSIS\n"
"    luckydice-fcgi --socket PATH|HOST:PORT [--workers N]\n"
"                   [--write-socket PATH|HOST:PORT [--write-workers N]]\n"
"                   [--config FILE]\n"
"    luckydice-fcgi -h | --help | --version\n"
"\n"
"DESCRIPTION\n"
"    Opens the FastCGI sockets, forks the worker processes, the writer (which\n"
"    commits everyone's writes in groups) and the checkpointer, and starts\n"
"    again any of them that ends. nginx sends the writes (visit, claim,\n"
"    draws) to the write socket and everything else to the other. A unix\n"
"    socket path is made mode 0666, and refused while another process\n"
"    serves it.\n"
"\n"
"OPTIONS\n"
"    --socket PATH|HOST:PORT\n"
"        Where the workers accept requests (required). HOST is IPv4.\n"
"    --workers N\n"
"        Worker processes, 1 to 256 (default: the config's \"workers\").\n"
"    --write-socket PATH|HOST:PORT\n"
"        Where nginx sends the writes. The writer serves it itself, unless\n"
"        there are write workers.\n"
"    --write-workers N\n"
"        Worker processes on the write socket instead, 0 to 256 (default:\n"
"        the config's \"write_workers\").\n"
"    --config FILE\n"
"        The config file (default: $LUCKYDICE_CONFIG, else\n"
"        " LD_CONFIG_DEFAULT ").\n"
"    -h, --help\n"
"        This text.\n"
"    --version\n"
"        The version.\n"
"\n"
"EXIT STATUS\n"
"    0  stopped by SIGTERM or SIGINT\n"
"    2  cannot start: bad options, config or socket\n"
"\n"
"ENVIRONMENT\n"
"    LUCKYDICE_CONFIG  the config file, when --config is not given\n";

static void usage(void)
{
	fprintf(stderr, "usage: luckydice-fcgi --socket PATH|HOST:PORT [--workers N]\n"
		"         [--write-socket PATH|HOST:PORT [--write-workers N]] [--config FILE]\n"
		"       luckydice-fcgi -h | --help | --version\n");
	exit(2);
}

/*
 * The supervisor's children, by slot: the workers on the FastCGI socket,
 * then those on the write socket (when there is one: nginx sends the
 * POSTs there, so the reads keep a small, warm pool while the writes get
 * enough workers to fill the writer's group commits), then the
 * checkpointer, then the writer (none with "writes": "direct").
 */
struct pool {
	const char *config;    /* the config file's path */
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
			worker_main(p->config, p->read_fd);
		}
		if (i < p->nread + p->nwrite) {
			close_fd(p->read_fd);
			worker_main(p->config, p->write_fd);
		}
		close_fd(p->read_fd);
		if (i == p->nread + p->nwrite) {
			close_fd(p->write_fd);
			checkpointer_main(p->config,
					  p->writer && p->nwrite == 0 && p->write_fd >= 0);
		}
		if (p->nwrite > 0 || p->write_fd < 0) {
			close_fd(p->write_fd);
			writer_main(p->config, -1);
		}
		writer_main(p->config, p->write_fd); /* it serves the write socket itself */
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
	enum { OPT_SOCKET = 256, OPT_WORKERS, OPT_WRITE_SOCKET, OPT_WRITE_WORKERS, OPT_CONFIG,
	       OPT_VERSION };
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
	int nworkers = 0, nwrite = -1, status, n, opt;
	struct ld_config cfg;
	char err[512];
	pid_t *pids;

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case OPT_SOCKET:
			where = optarg;
			break;
		case OPT_WORKERS:
			nworkers = arg_count("--workers", optarg, 1, 256);
			break;
		case OPT_WRITE_SOCKET:
			write_where = optarg;
			break;
		case OPT_WRITE_WORKERS:
			nwrite = arg_count("--write-workers", optarg, 0, 256);
			break;
		case OPT_CONFIG:
			pool.config = optarg;
			break;
		case 'h':
			fputs(help_text, stdout);
			return 0;
		case OPT_VERSION:
			printf("luckydice-fcgi %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind < argc || !where)
		usage();
	if (!pool.config)
		pool.config = config_default_path();
	if (sodium_init() < 0) {
		fprintf(stderr, "fatal: cannot initialise libsodium\n");
		return 2;
	}
	/* Read the config once here to fail early with a clear message. */
	if (config_load(pool.config, &cfg, err, sizeof err) != LD_OK) {
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
	if (counters_init() != 0)
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
