/*
 * child.c - what passes between luckydice-fcgi's supervisor and its
 * children (see child.h). A note is one write of a fixed-size struct to
 * a pipe, smaller than PIPE_BUF, so notes never mix however many
 * children write at once, and each read gets one whole note.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "child.h"
#include "log.h"

const char *const child_kind_names[CHILD_KINDS] = { "worker", "writer", "checkpointer" };

volatile sig_atomic_t child_stopping;
volatile sig_atomic_t child_busy;

static pid_t supervisor;          /* its pid, before the fork */
static int notes[2] = { -1, -1 }; /* the pipe of notes */
static enum child_kind my_kind;

_Static_assert(sizeof(struct child_note) <= PIPE_BUF, "a note is written at once");

int children_prepare(void)
{
	supervisor = getpid();
	if (pipe2(notes, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	return notes[0];
}

/* One note, never blocking: a pipe full of notes the supervisor has not
 * read has woken it already. */
static void note(const struct child_note *n)
{
	if (notes[1] >= 0 && write(notes[1], n, sizeof *n) < 0) {
		/* nothing to do: see above */
	}
}

void child_wake(void)
{
	int saved = errno;
	struct child_note n = { .pid = 0 };

	note(&n);
	errno = saved;
}

/* Stops at once when idle, else at the end of what it is busy with. */
static void on_term(int sig)
{
	(void)sig;
	child_stopping = 1;
	if (!child_busy)
		_exit(0);
}

void child_start(enum child_kind kind)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigset_t none;

	/* Until the handler below is in place, SIGTERM waits (the
	 * supervisor forked with it blocked). The check after the prctl
	 * closes the race with a supervisor that died before it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != supervisor)
		_exit(0);
	if (notes[0] >= 0)
		close(notes[0]);
	my_kind = kind;
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	/* The supervisor forked with its signals blocked: a SIGTERM sent
	 * since is delivered now, to the handler above. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (kind == CHILD_WRITER)
		prctl(PR_SET_NAME, "ld-writer");
	else if (kind == CHILD_CHECKPOINTER)
		prctl(PR_SET_NAME, "ld-checkpoint");
}

void child_ready(void)
{
	struct child_note n = { .pid = getpid(), .ready = 1 };

	note(&n);
}

void child_fail(const char *fmt, ...)
{
	struct child_note n = { .pid = getpid() };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(n.why, sizeof n.why, fmt, ap);
	va_end(ap);
	ld_log(LOG_ERR, "%s: cannot start: %s", child_kind_names[my_kind], n.why);
	note(&n);
	_exit(4);
}
