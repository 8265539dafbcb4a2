/* fuzz-promo: promo_parse on any bytes; what it accepts is consistent. */
#include <stdlib.h>

#include "promo.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct promo *p = NULL;
	char err[256];

	if (promo_parse((const char *)data, size, &p, err, sizeof err) != LD_OK) {
		if (p || !err[0])
			abort();
		return 0;
	}
	if (!ld_is_ident(p->id, PROMO_ID_MAX) || p->ndays < 1 || p->ndays > PROMO_MAX_DAYS ||
	    p->nprizes > PROMO_MAX_PRIZES)
		abort();
	for (int d = 0; d < p->ndays; d++)
		if (p->day_start_ms[d] >= p->day_start_ms[d + 1])
			abort();
	for (uint32_t r = 0; r < PROMO_SCALE; r += PROMO_SCALE / 64)
		if (promo_pick(p, r) >= (int)p->nprizes)
			abort();
	promo_free(p);
	return 0;
}
