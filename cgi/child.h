/*
 * child.h - the children of luckydice-fcgi (supervisor.c): what each
 * runs, and what passes between them and the supervisor. Each is a
 * process forked from the supervisor (never exec'd), which opens the
 * FastCGI sockets before it forks; each child opens its own database and
 * Redis connections after.
 *
 *   worker.c        a worker: accepts FastCGI requests one at a time
 *   served.c        the writer: group commit, and the write socket
 *   checkpointer.c  the checkpointer: copies the WAL into the database
 *
 * A child tells the supervisor when it is ready (it has opened all it
 * needs: child_ready) or why it cannot start (child_fail), through a
 * pipe the supervisor made before forking (children_prepare); the
 * supervisor's rule for children that keep failing is in its help text.
 * A child ends when the supervisor does, even by kill -9 (child_start).
 *
 * Each ends with _exit: 0 when told to stop (SIGTERM), 3 out of memory
 * (a worker), 4 when it cannot open what it needs.
 */
#ifndef LD_CHILD_H
#define LD_CHILD_H

#include <signal.h>
#include <sys/types.h>

enum child_kind { CHILD_WORKER, CHILD_WRITER, CHILD_CHECKPOINTER, CHILD_KINDS };

/* "worker", "writer", "checkpointer". */
extern const char *const child_kind_names[CHILD_KINDS];

/* The child's SIGTERM has come. */
extern volatile sig_atomic_t child_stopping;
/* The child is inside something it finishes before it stops (a
 * request, a checkpointer's pass, the writer's serving); while it is
 * 0, SIGTERM ends the child at once. */
extern volatile sig_atomic_t child_busy;

/* The children, each given the config's path. fd: the FastCGI socket
 * the worker accepts on; fcgi_fd: the write socket the writer serves
 * itself, or -1; writerless: no writer runs beside the checkpointer, so
 * it starts the WAL over itself. */
void worker_main(const char *config, int fd) __attribute__((noreturn));
void writer_main(const char *config, int fcgi_fd) __attribute__((noreturn));
void checkpointer_main(const char *config, int writerless) __attribute__((noreturn));

/* ---- in a child ---- */

/*
 * First thing in a child of that kind, right after the fork: it ends
 * (SIGTERM) when the supervisor does, and at once if the supervisor is
 * already gone. Then its signals: SIGTERM as above, SIGINT ignored (a
 * Ctrl-C is the supervisor's to handle), SIGPIPE ignored (a client gone
 * is an error return), SIGCHLD left alone; and it unblocks them all (the
 * supervisor forks with its own blocked, so that a SIGTERM sent right
 * after the fork waits for this child's handler). The writer and the
 * checkpointer get their names in ps (ld-writer, ld-checkpoint).
 */
void child_start(enum child_kind kind);

/* The child has opened all it needs and serves. */
void child_ready(void);

/* The child cannot start: says why (on stderr, and to the supervisor),
 * and exits 4. */
void child_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- in the supervisor ---- */

/* What a child said. */
struct child_note {
	pid_t pid; /* the child; 0: a wake-up (child_wake) */
	int ready; /* 1: ready; 0: cannot start, for the reason in why */
	char why[240];
};

/* Makes the pipe the children's notes come through, before the first
 * fork; returns its reading end (non-blocking), or -1 with errno. */
int children_prepare(void);

/* Wakes whoever waits on the notes (a signal handler may call it). */
void child_wake(void);

#endif
