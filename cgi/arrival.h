/*
 * arrival.h - whether a FastCGI request has all arrived on a connection.
 *
 * libfcgi reads a request with blocking reads and no deadline: handed a
 * connection that sent two bytes, or nothing, FCGX_Accept_r waits for
 * the rest for as long as the peer keeps it open, and so does the
 * process that called it (a worker, or the writer and every write behind
 * it). Its own accept even waits up to 2 s on each connection that has
 * sent nothing yet. So the workers and the writer accept connections
 * themselves and hand one to libfcgi only once its whole request is in
 * the socket: then every read libfcgi makes returns at once. A
 * connection whose request does not arrive within ARRIVAL_DEADLINE_MS
 * is closed.
 *
 * The check reads nothing: it peeks at the FastCGI records, whose 8-byte
 * headers give each record's length. A request is there once its
 * BEGIN_REQUEST record, its PARAMS stream and its STDIN stream up to the
 * empty STDIN record that ends it are all in. Records of other request
 * ids and management records (id 0) on the way are whole records too,
 * which libfcgi skips or answers.
 */
#ifndef LD_ARRIVAL_H
#define LD_ARRIVAL_H

#include <stddef.h>

/* The largest request taken, records and padding included: the
 * shipped nginx sends at most its header buffers (4 x 8 KB by default)
 * and a 4 KB body, each FastCGI record at most 65,535 + 255 bytes. */
#define ARRIVAL_MAX (64 * 1024)

/* How long a connection may take to send its whole request, from its
 * accept or from the first byte of a request on a kept connection. nginx
 * sends a request in one write as it connects. */
#define ARRIVAL_DEADLINE_MS 1000

enum arrival {
	ARRIVAL_NONE,    /* nothing yet */
	ARRIVAL_PARTIAL, /* part of a request */
	ARRIVAL_WHOLE,   /* a whole request: hand it to libfcgi */
	ARRIVAL_BAD,     /* closed, an error, not FastCGI, or larger than ARRIVAL_MAX */
};

/* What the n bytes at buf, the start of what a connection sent, hold. */
enum arrival arrival_check(const unsigned char *buf, size_t n);

/* What waits on the connection fd, by peeking (MSG_PEEK | MSG_DONTWAIT):
 * nothing is read. Uses a static buffer of ARRIVAL_MAX bytes. */
enum arrival arrival_peek(int fd);

#endif
