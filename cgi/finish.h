/*
 * finish.h - ends a FastCGI request without libfcgi's lingering close.
 *
 * FCGX_Finish_r shuts the socket down and then waits for nginx to close
 * its end first (up to 2 s), so that unread data never makes the kernel
 * reset the connection. On a unix socket that wait is a round trip
 * through nginx, and three more system calls, before the process can
 * accept the next request. nginx sends all of a request before it
 * reads the answer (it buffers bodies), so reading stdin to its end
 * leaves nothing unread and a plain close is clean: the answer is in
 * nginx's socket already. A detached request is closed that way
 * (FCGX_Free: no shutdown).
 *
 * Used by the workers and by the benchmark's reference responder alike,
 * so that the reference stays the cheapest responder there is.
 */
#ifndef LD_FINISH_H
#define LD_FINISH_H

#include <fcgiapp.h>

static inline void fcgi_finish(FCGX_Request *r)
{
	char rest[512];

	while (r->in && FCGX_GetStr(rest, sizeof rest, r->in) > 0)
		;
	FCGX_Detach(r);
	FCGX_Finish_r(r);
}

#endif
