/*
 * t/unit/arrival.c - cgi/arrival.c: a FastCGI request is whole once its
 * BEGIN_REQUEST, its PARAMS up to the empty record and its STDIN up to
 * the empty record are in, and not one byte before; records of other
 * requests and management records on the way are skipped; what libfcgi
 * would refuse, or what can never fit, is bad. Then the same through a
 * socket, by peeking: nothing is read.
 */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../cgi/arrival.c"
#include "../tap.h"

static unsigned char req[2 * ARRIVAL_MAX]; /* room for a record past the end */
static size_t len;

/* Appends a record of type for request id with clen bytes of content
 * (zeros) and plen of padding. */
static void record(int type, int id, size_t clen, int plen)
{
	unsigned char *h = req + len;

	h[0] = 1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(clen >> 8);
	h[5] = (unsigned char)clen;
	h[6] = (unsigned char)plen;
	h[7] = 0;
	memset(h + 8, 0, clen + (size_t)plen);
	len += 8 + clen + (size_t)plen;
}

/* nginx's GET: BEGIN, PARAMS with content, the empty PARAMS, the empty STDIN. */
static void nginx_get(int id)
{
	len = 0;
	record(FCGI_BEGIN_REQUEST, id, 8, 0);
	record(FCGI_PARAMS, id, 300, 4);
	record(FCGI_PARAMS, id, 0, 0);
	record(FCGI_STDIN, id, 0, 0);
}

/* Whether every strict prefix of req is partial (or none), and req whole. */
static int whole_only_at_end(void)
{
	for (size_t n = 0; n < len; n++)
		if (arrival_check(req, n) != (n == 0 ? ARRIVAL_NONE : ARRIVAL_PARTIAL))
			return 0;
	return arrival_check(req, len) == ARRIVAL_WHOLE;
}

int main(void)
{
	int sv[2];

	nginx_get(1);
	ok(whole_only_at_end(),
	   "a GET is whole at its empty STDIN record, partial at every byte before");
	is_int(arrival_check(req, 2), ARRIVAL_PARTIAL, "two bytes are part of a request");
	is_int(arrival_check(req, 12), ARRIVAL_PARTIAL, "so is half a BEGIN_REQUEST");
	record(FCGI_BEGIN_REQUEST, 1, 8, 0);
	is_int(arrival_check(req, len), ARRIVAL_WHOLE,
	       "what follows a whole request does not matter");

	len = 0;
	record(FCGI_BEGIN_REQUEST, 7, 8, 0);
	record(FCGI_PARAMS, 7, 1000, 0);
	record(FCGI_PARAMS, 7, 0, 0);
	record(FCGI_STDIN, 7, 60, 4);
	record(FCGI_STDIN, 7, 0, 0);
	ok(whole_only_at_end(), "a POST is whole once its body and the empty STDIN are in");

	len = 0;
	record(9, 0, 16, 0); /* a management record */
	record(FCGI_BEGIN_REQUEST, 2, 8, 0);
	record(FCGI_PARAMS, 3, 10, 0); /* another request's */
	record(FCGI_PARAMS, 2, 0, 0);
	record(FCGI_STDIN, 3, 0, 0); /* another request's end: not ours */
	is_int(arrival_check(req, len), ARRIVAL_PARTIAL,
	       "management records and another request's records are skipped, its STDIN end too");
	record(FCGI_STDIN, 2, 0, 0);
	is_int(arrival_check(req, len), ARRIVAL_WHOLE, "and the request's own end makes it whole");

	len = 0;
	record(FCGI_BEGIN_REQUEST, 1, 8, 0);
	record(FCGI_STDIN, 1, 0, 0);
	is_int(arrival_check(req, len), ARRIVAL_BAD,
	       "STDIN before the end of PARAMS: libfcgi refuses it, bad");
	len = 0;
	record(FCGI_STDIN, 1, 0, 0);
	is_int(arrival_check(req, len), ARRIVAL_PARTIAL,
	       "an empty STDIN without a BEGIN_REQUEST is no request (libfcgi would wait on)");
	len = 0;
	record(FCGI_BEGIN_REQUEST, 0, 8, 0);
	is_int(arrival_check(req, len), ARRIVAL_BAD, "a BEGIN_REQUEST for request 0 is bad");
	len = 0;
	record(FCGI_BEGIN_REQUEST, 1, 9, 0);
	is_int(arrival_check(req, len), ARRIVAL_BAD, "a BEGIN_REQUEST of 9 bytes is bad");
	nginx_get(1);
	req[0] = 'G';
	is_int(arrival_check(req, len), ARRIVAL_BAD, "HTTP instead of FastCGI is bad");
	is_int(arrival_check((const unsigned char *)"\x01\x01\x00\x01", 4), ARRIVAL_PARTIAL,
	       "half a header is partial");

	len = 0;
	record(FCGI_BEGIN_REQUEST, 1, 8, 0);
	record(FCGI_PARAMS, 1, 65535, 255);
	is_int(arrival_check(req, 24), ARRIVAL_BAD,
	       "a record that would end past %d bytes is bad as soon as its header is in",
	       ARRIVAL_MAX);
	len = 0;
	record(FCGI_BEGIN_REQUEST, 1, 8, 0);
	record(FCGI_PARAMS, 1, 60000, 0);
	record(FCGI_PARAMS, 1, ARRIVAL_MAX - len - 8, 0);
	is_int((long long)len, ARRIVAL_MAX, "(a request of exactly %d bytes so far)", ARRIVAL_MAX);
	is_int(arrival_check(req, len), ARRIVAL_BAD, "%d bytes without the end are bad",
	       ARRIVAL_MAX);

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		bail("socketpair");
	is_int(arrival_peek(sv[1]), ARRIVAL_NONE, "through a socket: nothing yet");
	nginx_get(5);
	if (write(sv[0], req, 2) != 2)
		bail("write");
	is_int(arrival_peek(sv[1]), ARRIVAL_PARTIAL, "two bytes");
	if (write(sv[0], req + 2, len - 2) != (ssize_t)(len - 2))
		bail("write");
	is_int(arrival_peek(sv[1]), ARRIVAL_WHOLE, "the rest, sent apart: whole");
	is_int(arrival_peek(sv[1]), ARRIVAL_WHOLE, "peeking again: still whole, nothing was read");
	unsigned char got[600];
	is_int(read(sv[1], got, sizeof got), (long long)len,
	       "all %zu bytes are still there to read", len);
	close(sv[0]);
	is_int(arrival_peek(sv[1]), ARRIVAL_BAD, "the peer closed: bad");
	close(sv[1]);
	return done_testing();
}
