/*
 * t/unit/log.c - lib/log.c: a line's syslog priority prefix when stderr
 * is a pipe (as the journal's stream or a test's log file is), none on a
 * terminal (a pseudo-terminal here), the level that drops the less
 * urgent lines, and a line too long cut with "...".
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../lib/log.c"
#include "../tap.h"

/* The lines a child writes with stderr on fd, read from rd until the
 * child ends (at most cap - 1 bytes). */
typedef void (*writer_fn)(void);

static void run(writer_fn f, int fd, int rd, char *out, size_t cap)
{
	size_t len = 0;
	ssize_t n;
	pid_t pid;
	int st;

	if ((pid = fork()) < 0)
		bail("cannot fork");
	if (pid == 0) {
		dup2(fd, 2);
		f();
		_exit(0);
	}
	close(fd);
	while (len < cap - 1 && (n = read(rd, out + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(rd);
	waitpid(pid, &st, 0);
}

static void lines(void)
{
	ld_log(LOG_ERR, "fatal: %s", "x");
	ld_log(LOG_WARNING, "writer: slow");
	ld_log(LOG_NOTICE, "request status=%d", 409);
	ld_log(LOG_INFO, "request status=%d", 200);
	ld_log(LOG_DEBUG, "not at the default level");
	ld_log_set_level(0); /* "error" */
	ld_log(LOG_WARNING, "dropped");
	ld_log(LOG_ERR, "kept");
	ld_log_set_level(3); /* "debug" */
	ld_log(LOG_DEBUG, "debug now");
}

static void long_line(void)
{
	char big[3 * LOG_LINE_MAX];

	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ld_log(LOG_ERR, "%s", big);
	ld_log(LOG_ERR, "after");
}

static void exact_line(void)
{
	char fits[LOG_LINE_MAX - 3]; /* "<3>", these, "\n": the whole buffer */

	memset(fits, 'b', sizeof fits - 1);
	fits[sizeof fits - 1] = '\0';
	ld_log(LOG_ERR, "%s", fits);
}

int main(void)
{
	static char out[4 * LOG_LINE_MAX];
	int p[2], master, slave;
	char *nl;

	if (pipe(p) != 0)
		bail("cannot make a pipe");
	run(lines, p[1], p[0], out, sizeof out);
	is_string(out,
		  "<3>fatal: x\n<4>writer: slow\n<5>request status=409\n"
		  "<6>request status=200\n<3>kept\n<7>debug now\n",
		  "on a pipe each line has its priority; the level drops the less urgent");

	if (pipe(p) != 0)
		bail("cannot make a pipe");
	run(long_line, p[1], p[0], out, sizeof out);
	nl = strchr(out, '\n');
	ok(nl && (size_t)(nl - out) == LOG_LINE_MAX - 2 && strncmp(nl - 3, "...", 3) == 0 &&
		   strncmp(out, "<3>aaa", 6) == 0,
	   "a line too long is cut to %d bytes with its newline, ending \"...\"", LOG_LINE_MAX - 1);
	is_string(nl ? nl + 1 : "", "<3>after\n", "and the next line is whole");

	if (pipe(p) != 0)
		bail("cannot make a pipe");
	run(exact_line, p[1], p[0], out, sizeof out);
	ok(strlen(out) == LOG_LINE_MAX && out[LOG_LINE_MAX - 2] == 'b' &&
		   out[LOG_LINE_MAX - 1] == '\n',
	   "a line that fits the buffer exactly is not cut");

	/* A terminal: a pseudo-terminal's slave as stderr, read on its master
	 * (which turns "\n" into "\r\n"). */
	if ((master = posix_openpt(O_RDWR | O_NOCTTY)) < 0 || grantpt(master) != 0 ||
	    unlockpt(master) != 0 || (slave = open(ptsname(master), O_RDWR | O_NOCTTY)) < 0) {
		ok(1, "# SKIP no pseudo-terminal here");
		return done_testing();
	}
	run(lines, slave, master, out, sizeof out);
	is_string(out,
		  "fatal: x\r\nwriter: slow\r\nrequest status=409\r\n"
		  "request status=200\r\nkept\r\ndebug now\r\n",
		  "on a terminal the same lines have no prefix");
	return done_testing();
}
