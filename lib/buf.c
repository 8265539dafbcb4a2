/*
 * buf.c - the capped growable buffer (see buf.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void buf_init(struct buf *b, size_t max)
{
	b->p = NULL;
	b->len = b->size = 0;
	b->max = max;
}

/* Makes room for n more bytes and the NUL after them: LD_OK, or
 * LD_ERR_INVALID (nothing changed) when len + n would pass the cap. */
static enum ld_err room(struct buf *b, size_t n)
{
	size_t need, size;

	if (n > b->max - b->len)
		return LD_ERR_INVALID;
	need = b->len + n + 1;
	if (need <= b->size)
		return LD_OK;
	size = b->size ? b->size : 64;
	while (size < need)
		size = size > (SIZE_MAX - 1) / 2 ? need : size * 2;
	if (b->max < SIZE_MAX && size > b->max + 1)
		size = b->max + 1;
	b->p = xrealloc(b->p, size);
	b->size = size;
	return LD_OK;
}

enum ld_err buf_add(struct buf *b, const void *data, size_t n)
{
	if (room(b, n) != LD_OK)
		return LD_ERR_INVALID;
	if (n > 0)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return LD_OK;
}

enum ld_err buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || room(b, (size_t)n) != LD_OK)
		return LD_ERR_INVALID;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return LD_OK;
}

void *buf_grow(struct buf *b, size_t n)
{
	char *at;

	if (room(b, n) != LD_OK)
		return NULL;
	at = b->p + b->len;
	memset(at, 0, n + 1);
	b->len += n;
	return at;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->p);
	buf_init(b, b->max);
}

void *buf_take(struct buf *b, size_t *len)
{
	void *p = b->p ? b->p : xstrdup("");

	if (len)
		*len = b->len;
	buf_init(b, b->max);
	return p;
}

void *buf_take_array(struct buf *b, size_t size, size_t *n)
{
	*n = b->len / size;
	if (*n == 0) {
		buf_free(b);
		return NULL;
	}
	return buf_take(b, NULL);
}
