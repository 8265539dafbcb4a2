/*
 * child.h - the children of luckydice-fcgi (supervisor.c): what each
 * runs, and what they share. Each is a process forked from the
 * supervisor (never exec'd), which opens the FastCGI sockets before it
 * forks; each child opens its own database and Redis connections after.
 *
 *   worker.c        a worker: accepts FastCGI requests one at a time
 *   served.c        the writer: group commit, and the write socket
 *   checkpointer.c  the checkpointer: copies the WAL into the database
 *
 * Each ends with _exit: 0 when told to stop (SIGTERM), 3 out of memory
 * (a worker), 4 when it cannot open what it needs.
 */
#ifndef LD_CHILD_H
#define LD_CHILD_H

#include <signal.h>

/* The child's SIGTERM has come. */
extern volatile sig_atomic_t child_stopping;
/* The child is inside something it finishes before it stops (a
 * request, a checkpointer's pass, the writer's serving); while it is
 * 0, SIGTERM ends the child at once. */
extern volatile sig_atomic_t child_busy;

/* Sets the child's signals: SIGTERM as above, SIGINT ignored (a Ctrl-C
 * is the supervisor's to handle), SIGPIPE ignored (a client gone is an
 * error return). name (may be NULL) is its name in ps. */
void child_start(const char *name);

/* The children, each given the config's path. fd: the FastCGI socket
 * the worker accepts on; fcgi_fd: the write socket the writer serves
 * itself, or -1; writer_serves: the writer serves the write socket
 * (then it starts the WAL over, even without a socket of its own). */
void worker_main(const char *config, int fd) __attribute__((noreturn));
void writer_main(const char *config, int fcgi_fd) __attribute__((noreturn));
void checkpointer_main(const char *config, int writer_serves) __attribute__((noreturn));

#endif
