/*
 * writer_client.c - group commit's client: a worker's side (see
 * writer.h). One request at a time over a SOCK_SEQPACKET connection to
 * the writer; without a writer, the request runs here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "writer.h"

struct writer_client {
	char *path;
	int fd;
	int timeout_ms;
};

struct writer_client *writer_client_new(const char *path, int timeout_ms)
{
	struct writer_client *w = xcalloc(1, sizeof *w);

	w->path = xstrdup(path);
	w->fd = -1;
	w->timeout_ms = timeout_ms;
	return w;
}

void writer_client_free(struct writer_client *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->path);
	free(w);
}

static void hang_up(struct writer_client *w)
{
	close(w->fd);
	w->fd = -1;
}

static int dial(struct writer_client *w)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = w->timeout_ms / 1000,
			      .tv_usec = (w->timeout_ms % 1000) * 1000 };

	if (strlen(w->path) >= sizeof sun.sun_path)
		return -1;
	strcpy(sun.sun_path, w->path);
	w->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (w->fd < 0)
		return -1;
	if (setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
	    setsockopt(w->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
	    connect(w->fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		hang_up(w);
		return -1;
	}
	return 0;
}

/*
 * Sends q and waits for its reply. Returns 0 with *a filled, 1 when the
 * writer never got q (run it here), -1 when it got q but did not answer.
 */
static int call(struct writer_client *w, struct writer_request *q, struct writer_reply *a)
{
	ssize_t got;

	q->magic = WRITER_MAGIC;
	for (int attempt = 0;; attempt++) {
		if (w->fd < 0 && dial(w) != 0)
			return 1;
		if (send(w->fd, q, sizeof *q, MSG_NOSIGNAL) == (ssize_t)sizeof *q)
			break;
		/* A connection to a writer that has since restarted: dial again
		 * once; a message a peer never read was never acted on. */
		hang_up(w);
		if (attempt == 1)
			return 1;
	}
	do
		got = recv(w->fd, a, sizeof *a, 0);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)sizeof *a || a->magic != WRITER_MAGIC) {
		hang_up(w); /* a late reply must never be read as the next one's */
		return -1;
	}
	a->errmsg[sizeof a->errmsg - 1] = '\0';
	return 0;
}

enum ld_err writer_call(struct writer_client *w, struct ledger *l, const struct promo *p,
			struct writer_request *q, struct writer_reply *a)
{
	memset(a, 0, sizeof *a);
	switch (w ? call(w, q, a) : 1) {
	case 1: /* no writer, or it never got q */ return writer_run(l, p, q, a);
	case -1:
		memset(a, 0, sizeof *a);
		a->err = db_error(ledger_db(l), LD_ERR_BUSY,
				  "writer: no answer (it restarted or is stuck)");
		return LD_ERR_BUSY;
	}
	if (a->err != LD_OK)
		db_error(ledger_db(l), (enum ld_err)a->err, "%s", a->errmsg);
	if (q->op == WRITER_CLAIM)
		a->r.claim.inviter[sizeof a->r.claim.inviter - 1] = '\0';
	if (q->op == WRITER_DRAW)
		a->r.draw.prize_id[sizeof a->r.draw.prize_id - 1] = '\0';
	return (enum ld_err)a->err;
}
