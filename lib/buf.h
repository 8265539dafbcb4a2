/*
 * buf.h - the one growable buffer of lib/, with a hard cap (after curl's
 * dynbuf). Whatever grows - a file read into memory, the rows of a
 * query, the promotions, the cache's pipeline - grows through it.
 *
 * A buffer starts empty with its cap, the most bytes it may ever hold.
 * It grows by doubling as bytes are added, never past the cap: an
 * addition that would go past is refused with LD_ERR_INVALID and leaves
 * the buffer as it was. Memory comes from the x* wrappers (out of
 * memory: ld_oom, ld.h). The bytes are always followed by a NUL that len
 * does not count, so a buffer of text is a C string.
 *
 * The buffer owns its memory until buf_take hands it to the caller;
 * buf_free frees it. A pointer into the bytes is good until the next
 * call that adds to the buffer.
 *
 * For an array of structs: T *x = buf_grow(&b, sizeof *x) appends one,
 * (T *)b.p is the array and b.len / sizeof(T) its length, and
 * buf_take_array hands it over.
 */
#ifndef LD_BUF_H
#define LD_BUF_H

#include <stdarg.h>
#include "ld.h"

struct buf {
	char *p;     /* the bytes; NULL until the first addition */
	size_t len;  /* bytes in use */
	size_t size; /* bytes allocated (len + 1 at least, once allocated) */
	size_t max;  /* the cap: len never passes it */
};

/* An empty buffer that will hold at most max bytes. */
void buf_init(struct buf *b, size_t max);

/* Appends n bytes of data. */
enum ld_err buf_add(struct buf *b, const void *data, size_t n);

/* Appends formatted text. */
enum ld_err buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends n bytes, zeroed, and returns where they are; NULL when they
 * would pass the cap (nothing appended). */
void *buf_grow(struct buf *b, size_t n);

/* Empties the buffer and keeps its memory, for the next use. */
void buf_reset(struct buf *b);

/* Frees the memory; the buffer is empty again, with the same cap. */
void buf_free(struct buf *b);

/* Hands the bytes (NUL-terminated; an empty string when nothing was
 * added) to the caller, who frees them; *len (may be NULL) gets their
 * length. The buffer is empty again. */
void *buf_take(struct buf *b, size_t *len);

/* buf_take for an array of items of size bytes: *n gets their count,
 * and NULL comes back when there is none. */
void *buf_take_array(struct buf *b, size_t size, size_t *n);

#endif
