/*
 * child.c - what the children of luckydice-fcgi share (see child.h).
 */
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "child.h"

volatile sig_atomic_t child_stopping;
volatile sig_atomic_t child_busy;

/* Stops at once when idle, else at the end of what it is busy with. */
static void on_term(int sig)
{
	(void)sig;
	child_stopping = 1;
	if (!child_busy)
		_exit(0);
}

void child_start(const char *name)
{
	struct sigaction sa = { .sa_handler = on_term };

	sigaction(SIGTERM, &sa, NULL);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if (name)
		prctl(PR_SET_NAME, name);
}
