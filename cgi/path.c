/*
 * path.c - request paths to promotion id and endpoint.
 */
#include <string.h>

#include "path.h"

int path_split(const char *path, char promo[PROMO_ID_MAX + 1], const char **rest,
	       int *bad_promo)
{
	const char *p, *slash;
	size_t n;

	*bad_promo = 0;
	promo[0] = '\0';
	*rest = path;
	if (strncmp(path, PATH_PROMO_PREFIX, sizeof PATH_PROMO_PREFIX - 1) != 0)
		return 0;
	p = path + sizeof PATH_PROMO_PREFIX - 1;
	if (!(slash = strchr(p, '/')))
		return 0;
	*rest = slash + 1;
	n = (size_t)(slash - p);
	if (n == 0 || n > PROMO_ID_MAX) {
		*bad_promo = 1;
		return 1;
	}
	memcpy(promo, p, n);
	promo[n] = '\0';
	if (!ld_is_ident(promo, PROMO_ID_MAX)) {
		*bad_promo = 1;
		promo[0] = '\0';
	}
	return 1;
}

int path_is_plain(const char *request_uri, const char *path)
{
	size_t n = strcspn(request_uri, "?");

	return strlen(path) == n && memcmp(request_uri, path, n) == 0;
}
