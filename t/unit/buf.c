/*
 * t/unit/buf.c - lib/buf.c: the capped growable buffer. Bytes and text
 * are appended and stay NUL-terminated, growth stops exactly at the cap
 * and a refused addition changes nothing, an array of structs grows in
 * it, and its memory is kept, handed over or freed.
 */
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "../tap.h"

struct pair {
	int64_t a;
	int b;
};

static void test_bytes(void)
{
	struct buf b;
	char big[300];

	buf_init(&b, 100);
	ok(b.p == NULL && b.len == 0, "a new buffer holds nothing and has no memory");
	is_int(buf_add(&b, "abc", 3), LD_OK, "add");
	is_int(buf_addf(&b, "-%d-%s", 42, "x"), LD_OK, "addf");
	is_string(b.p, "abc-42-x", "bytes and text, NUL-terminated");
	is_int((long long)b.len, 8, "len counts no NUL");
	memset(big, 'y', sizeof big);
	is_int(buf_add(&b, big, 93), LD_ERR_INVALID, "past the cap (101 bytes): refused");
	is_string(b.p, "abc-42-x", "and nothing changed");
	is_int(buf_add(&b, big, 92), LD_OK, "up to the cap exactly: taken");
	ok(b.len == 100 && b.p[100] == '\0' && b.size == 101,
	   "100 bytes, NUL after, no more memory");
	is_int(buf_add(&b, "z", 1), LD_ERR_INVALID, "a full buffer takes nothing more");
	is_int(buf_addf(&b, "%s", ""), LD_OK, "but nothing is always room");
	is_int(buf_addf(&b, "%d", 7), LD_ERR_INVALID, "text past the cap: refused");
	buf_reset(&b);
	ok(b.len == 0 && b.p && b.p[0] == '\0' && b.size == 101, "reset: empty, memory kept");
	buf_free(&b);
	ok(b.p == NULL && b.len == 0 && b.max == 100, "free: no memory, the same cap");
}

static void test_array(void)
{
	struct pair *x, *all;
	struct buf b;
	size_t n;
	int bad = 0;

	buf_init(&b, 1000 * sizeof(struct pair));
	for (int i = 0; i < 1000; i++) {
		if (!(x = buf_grow(&b, sizeof *x)) || x->a != 0 || x->b != 0)
			bad++;
		else
			*x = (struct pair){ (int64_t)i * 3, i };
	}
	is_int(bad, 0, "1000 structs appended, each zeroed");
	ok(buf_grow(&b, sizeof *x) == NULL, "the 1001st is past the cap");
	all = buf_take(&b, &n);
	is_int((long long)(n / sizeof *all), 1000, "taken: 1000 of them");
	ok(all[0].a == 0 && all[999].a == 2997 && all[999].b == 999, "in order");
	ok(b.p == NULL && b.len == 0, "the buffer is empty after the take");
	free(all);
	char *empty = buf_take(&b, &n);
	ok(empty && empty[0] == '\0' && n == 0,
	   "taking from an empty buffer gives an empty string");
	free(empty);
}

int main(void)
{
	test_bytes();
	test_array();
	return done_testing();
}
