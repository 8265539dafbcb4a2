/* fuzz-route: path splitting, the console's patterns and the plain-path
 * check (cgi/path.c); the input is "REQUEST_URI\nPATH". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "path.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *buf = malloc(size + 1), *path, promo[PROMO_ID_MAX + 1], re[256];
	const char *rest;
	int bad;

	memcpy(buf, data, size);
	buf[size] = '\0';
	path = strchr(buf, '\n');
	if (path)
		*path++ = '\0';
	else
		path = buf;
	if (path_is_plain(buf, path) && strncmp(buf, path, strlen(path)) != 0)
		abort();
	if (path_split(path, promo, &rest, &bad)) {
		if (bad ? promo[0] != '\0' : !ld_is_ident(promo, PROMO_ID_MAX))
			abort();
		if (!bad &&
		    (snprintf(re, sizeof re, "%s%s/%s", PATH_PROMO_PREFIX, promo, rest) < 0 ||
		     (strlen(path) < sizeof re && strcmp(re, path) != 0)))
			abort();
	} else if (rest != path || promo[0] != '\0') {
		abort();
	}
	/* a console pattern: what it takes is valid, or named bad */
	{
		struct path_args a;
		if (path_match("/console/api/promotions/{promo}/users/{uid}/grant", path, &a) &&
		    !a.bad &&
		    (!ld_is_ident(a.promo, PROMO_ID_MAX) || !ld_is_ident(a.uid, PATH_UID_MAX)))
			abort();
		if (path_match("/console/api/promotions/{promo}/outbox/{id}/retry", path, &a) &&
		    !a.bad && a.id < 1)
			abort();
	}
	free(buf);
	return 0;
}
