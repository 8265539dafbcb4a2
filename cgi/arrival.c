/*
 * arrival.c - whether a FastCGI request has all arrived (see arrival.h).
 */
#include <errno.h>
#include <sys/socket.h>

#include "arrival.h"

/* FastCGI's record types (the specification's numbers). */
enum { FCGI_BEGIN_REQUEST = 1, FCGI_PARAMS = 4, FCGI_STDIN = 5 };

enum arrival arrival_check(const unsigned char *buf, size_t n)
{
	unsigned id = 0;               /* the request's, once its BEGIN_REQUEST is in */
	int want = FCGI_BEGIN_REQUEST; /* the stream the request is in */
	size_t at = 0;

	while (n - at >= 8) {
		const unsigned char *h = buf + at;
		unsigned type = h[1], rid = (unsigned)h[2] << 8 | h[3];
		size_t clen = (size_t)h[4] << 8 | h[5], len = 8 + clen + h[6];

		if (h[0] != 1 || at + len > ARRIVAL_MAX)
			return ARRIVAL_BAD; /* not FastCGI 1, or never fits */
		if (n - at < len)
			break;
		at += len;
		if (want == FCGI_BEGIN_REQUEST) {
			if (type != FCGI_BEGIN_REQUEST)
				continue; /* answered or skipped by libfcgi */
			if (rid == 0 || clen != 8)
				return ARRIVAL_BAD;
			id = rid;
			want = FCGI_PARAMS;
			continue;
		}
		if (rid != id || type == FCGI_BEGIN_REQUEST)
			continue; /* another request's, or a second BEGIN: libfcgi refuses it */
		if ((int)type != want)
			return ARRIVAL_BAD;
		if (clen == 0) { /* the end of a stream */
			if (want == FCGI_STDIN)
				return ARRIVAL_WHOLE;
			want = FCGI_STDIN;
		}
	}
	if (n >= ARRIVAL_MAX)
		return ARRIVAL_BAD;
	return n == 0 ? ARRIVAL_NONE : ARRIVAL_PARTIAL;
}

enum arrival arrival_peek(int fd)
{
	static unsigned char buf[ARRIVAL_MAX];
	ssize_t got;

	do
		got = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? ARRIVAL_NONE : ARRIVAL_BAD;
	if (got == 0)
		return ARRIVAL_BAD; /* the peer closed */
	return arrival_check(buf, (size_t)got);
}
