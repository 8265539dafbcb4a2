/*
 * ref-responder.c - the cheapest possible libfcgi responder: the ceiling
 * the benchmark compares luckydice's handlers with. It forks N processes
 * on one unix socket, like luckydice-fcgi, and answers every request with
 * the same small JSON 200 and the same headers as http_send(), without
 * parsing the request, touching a database or allocating. It ends each
 * request as the workers do (cgi/finish.h), and listens as they do
 * (lib/listen.h).
 *
 * usage: ref-responder --socket PATH [--workers N]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "../cgi/finish.h"
#include "../lib/listen.h"

static const char answer[] = "Status: 200 OK\r\n"
			     "Content-Type: application/json; charset=utf-8\r\n"
			     "Content-Length: 14\r\n"
			     "Cache-Control: no-store\r\n"
			     "X-Content-Type-Options: nosniff\r\n"
			     "\r\n"
			     "{\"balance\":1}\n";

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

/* Accepts and answers until killed. */
static void serve(int fd)
{
	FCGX_Request req;

	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_IGN);
	FCGX_InitRequest(&req, fd, 0);
	while (FCGX_Accept_r(&req) == 0) {
		FCGX_PutStr(answer, sizeof answer - 1, req.out);
		fcgi_finish(&req);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	int nworkers = 2, fd, status;
	char err[512];
	struct sigaction sa = { .sa_handler = on_term };
	pid_t *pids;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
			nworkers = atoi(argv[++i]);
		else
			path = NULL, i = argc;
	}
	if (!path || nworkers < 1 || nworkers > 64) {
		fprintf(stderr, "usage: ref-responder --socket PATH [--workers N]\n");
		return 2;
	}
	if (FCGX_Init() != 0)
		return 2;
	/* mode 0666: nginx workers connect */
	if ((fd = ld_listen_unix(path, SOCK_STREAM, 0666, (gid_t)-1, 1024, err, sizeof err)) < 0) {
		fprintf(stderr, "fatal: %s\n", err);
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	pids = calloc((size_t)nworkers, sizeof *pids);
	if (!pids)
		return 2;
	for (int i = 0; i < nworkers; i++)
		if ((pids[i] = fork()) == 0)
			serve(fd);
	while (!stopping)
		pause();
	for (int i = 0; i < nworkers; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	while (wait(&status) > 0 || errno == EINTR)
		;
	unlink(path);
	free(pids);
	return 0;
}
