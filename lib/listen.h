/*
 * listen.h - a listening socket on a unix path or on HOST:PORT, written
 * once for every program that serves one: luckydice-fcgi's FastCGI
 * sockets, the writer's own socket (writer.h) and the benchmark's
 * reference responder.
 *
 * Not FCGX_OpenSocket, which exits on a bind failure and silently takes
 * over a unix socket path another process is serving. Here a unix path is
 * refused while something answers on it; a file nothing answers on (left
 * by a process that was killed) is replaced. Only libc: the reference
 * responder links this alone.
 */
#ifndef LD_LISTEN_H
#define LD_LISTEN_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Listens on where: a unix socket path when it begins with '/' or '.',
 * else an IPv4 HOST:PORT (SO_REUSEADDR, the port strictly a number from
 * 1 to 65535). type is the socket type with its flags (SOCK_STREAM,
 * SOCK_SEQPACKET | SOCK_NONBLOCK, ...). A unix socket file gets group
 * ((gid_t)-1: the process's own, as the file is made) and then mode,
 * whatever the umask; until both are set it is 0600, so nobody else can
 * connect to it meanwhile (connecting takes write permission on the
 * file, and search permission on every directory above it). Returns the
 * descriptor, or -1 with a message in err (lowercase, naming where) and
 * errno EADDRINUSE when another process answers on the path. A process
 * that is not root can give the file only a group it is a member of.
 */
int ld_listen(const char *where, int type, mode_t mode, gid_t group, int backlog, char *err,
	      size_t errlen);

/* The same on a unix socket path, whatever it begins with. */
int ld_listen_unix(const char *path, int type, mode_t mode, gid_t group, int backlog, char *err,
		   size_t errlen);

/* 1 when where names a unix socket path (as ld_listen reads it). */
int ld_listen_is_path(const char *where);

#endif
