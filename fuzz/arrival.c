/* fuzz-arrival: whether a FastCGI request has all arrived (cgi/arrival.c)
 * on any bytes. The answer for a prefix never contradicts the whole: a
 * request found whole is not bad one byte shorter, and bytes that are
 * bad stay bad with more after them. And ARRIVAL_MAX bytes (the input
 * over and over) are never still arriving: arrival_peek sees no more
 * than that, so such a connection would wait for nothing until its
 * deadline. */
#include <stdlib.h>
#include <string.h>

#include "arrival.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static unsigned char full[ARRIVAL_MAX];
	enum arrival a;

	if (size > ARRIVAL_MAX)
		size = ARRIVAL_MAX;
	a = arrival_check(data, size);
	if (a != ARRIVAL_NONE && a != ARRIVAL_PARTIAL && a != ARRIVAL_WHOLE && a != ARRIVAL_BAD)
		abort();
	if ((a == ARRIVAL_NONE) != (size == 0))
		abort();
	if (size > 0 && a == ARRIVAL_WHOLE && arrival_check(data, size - 1) == ARRIVAL_BAD)
		abort();
	if (size > 0 && size < ARRIVAL_MAX && arrival_check(data, size - 1) == ARRIVAL_BAD &&
	    a != ARRIVAL_BAD)
		abort();
	if (size > 0) {
		size_t have = size;

		memcpy(full, data, size);
		for (; have < sizeof full; have *= 2)
			memcpy(full + have, full,
			       have < sizeof full - have ? have : sizeof full - have);
		a = arrival_check(full, sizeof full);
		if (a == ARRIVAL_NONE || a == ARRIVAL_PARTIAL)
			abort();
	}
	return 0;
}
