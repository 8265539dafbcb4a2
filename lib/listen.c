/*
 * listen.c - listening sockets (see listen.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listen.h"

int ld_listen_is_path(const char *where)
{
	return where[0] == '/' || where[0] == '.';
}

/* Closes fd (when open) keeping errno; returns -1. */
static int fail(int fd)
{
	int saved = errno;

	if (fd >= 0)
		close(fd);
	errno = saved;
	return -1;
}

int ld_listen_unix(const char *path, int type, mode_t mode, gid_t group, int backlog, char *err,
		   size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t umask_was;
	int fd, bound;

	if (strlen(path) >= sizeof sun.sun_path) {
		snprintf(err, errlen, "socket path '%s' is too long", path);
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	/* Something answering on the path keeps it. */
	fd = socket(AF_UNIX, (type & ~SOCK_NONBLOCK) | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0) {
		close(fd);
		snprintf(err, errlen, "'%s' is served by another process", path);
		errno = EADDRINUSE;
		return -1;
	}
	if (fd >= 0)
		close(fd);
	unlink(path);
	/* The file is made 0600, so that nobody else can connect before it
	 * has its group and then its mode: the group first, so that the
	 * group's bits never apply to another group. (umask is the
	 * process's: every program here calls this before any thread.) */
	if ((fd = socket(AF_UNIX, type, 0)) < 0) {
		snprintf(err, errlen, "cannot listen on '%s': %s", path, strerror(errno));
		return -1;
	}
	umask_was = umask(0177);
	bound = bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(umask_was);
	if (bound != 0) {
		snprintf(err, errlen, "cannot listen on '%s': %s", path, strerror(errno));
		return fail(fd);
	}
	if (group != (gid_t)-1 && chown(path, (uid_t)-1, group) != 0)
		snprintf(err, errlen, "cannot give '%s' to group %lu: %s", path,
			 (unsigned long)group, strerror(errno));
	else if (chmod(path, mode) != 0 || listen(fd, backlog) != 0)
		snprintf(err, errlen, "cannot listen on '%s': %s", path, strerror(errno));
	else
		return fd;
	bound = errno;
	unlink(path);
	errno = bound;
	return fail(fd);
}

static int listen_inet(const char *where, int type, int backlog, char *err, size_t errlen)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	const char *colon = strrchr(where, ':');
	char host[64], *end;
	int fd, one = 1;
	long port;

	if (!colon || (size_t)(colon - where) >= sizeof host) {
		snprintf(err, errlen, "'%s' is neither a socket path nor HOST:PORT", where);
		errno = EINVAL;
		return -1;
	}
	memcpy(host, where, (size_t)(colon - where));
	host[colon - where] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 1 || port > 65535) {
		snprintf(err, errlen, "the port in '%s' wants a number from 1 to 65535, not '%s'",
			 where, colon + 1);
		errno = EINVAL;
		return -1;
	}
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		snprintf(err, errlen, "'%s' is not an IPv4 address", host);
		errno = EINVAL;
		return -1;
	}
	fd = socket(AF_INET, type, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, backlog) != 0) {
		snprintf(err, errlen, "cannot listen on '%s': %s", where, strerror(errno));
		return fail(fd);
	}
	return fd;
}

int ld_listen(const char *where, int type, mode_t mode, gid_t group, int backlog, char *err,
	      size_t errlen)
{
	if (ld_listen_is_path(where))
		return ld_listen_unix(where, type, mode, group, backlog, err, errlen);
	return listen_inet(where, type, backlog, err, errlen);
}
