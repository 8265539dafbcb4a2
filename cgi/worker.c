/*
 * worker.c - a worker: accepts FastCGI requests on one socket, one at a
 * time, and routes each (routes.c); a write goes through the writer
 * (writer.h), or runs here when there is none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "app.h"
#include "cachesync.h"
#include "child.h"
#include "finish.h"

static FCGX_Request *current; /* for the out-of-memory answer */
static char oom_answer[256];  /* made before the first request */
static int oom_len;

/* Out of memory: answer 500 to the request in flight and exit; the
 * supervisor starts a fresh worker. Nothing here allocates. */
static void worker_oom(void)
{
	if (current) {
		FCGX_PutStr(oom_answer, oom_len, current->out);
		FCGX_Finish_r(current);
	}
	_exit(3);
}

void worker_main(const char *config, int fd)
{
	FCGX_Request fcgi;
	struct http_req req;
	struct app app;
	char err[512];

	child_start(CHILD_WORKER);
	oom_len = snprintf(oom_answer, sizeof oom_answer,
			   "Status: 500 %s\r\nContent-Type: application/json\r\n\r\n"
			   "{\"error\":\"internal_error\",\"message\":\"out of memory\"}\n",
			   http_reason(500));
	if (oom_len < 0 || (size_t)oom_len >= sizeof oom_answer)
		oom_len = 0; /* cannot happen: then no answer, the worker still ends */
	ld_oom = worker_oom;
	if (app_open(&app, config, err, sizeof err) != 0)
		child_fail("%s", err);
	child_ready();
	FCGX_InitRequest(&fcgi, fd, FCGI_FAIL_ACCEPT_ON_INTR);
	while (!child_stopping && FCGX_Accept_r(&fcgi) == 0) {
		child_busy = 1;
		current = &fcgi;
		http_req_init(&req, &fcgi);
		route_request(&app, &req);
		http_req_release(&req);
		fcgi_finish(&fcgi);
		current = NULL;
		/* Between requests: catch the cache up after a Redis outage. */
		if (app.cache && cache_pending(app.cache, NULL) > 0)
			cache_repair(app.cache, cachesync_lookup, app.ledger);
		child_busy = 0;
	}
	app_release(&app);
	_exit(0);
}
