/*
 * path.c - request paths to promotion id and endpoint.
 */
#include <string.h>

#include "path.h"

int path_split(const char *path, char promo[PROMO_ID_MAX + 1], const char **rest, int *bad_promo)
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

/* Copies segment s (n bytes) into param of pattern segment name (n
 * bytes, "{promo}" ...); 0, or -1 when it is not valid for it. */
static int take(const char *name, size_t nlen, const char *s, size_t n, struct path_args *a)
{
	if (nlen == 7 && memcmp(name, "{promo}", 7) == 0) {
		if (n > PROMO_ID_MAX)
			return -1;
		memcpy(a->promo, s, n);
		a->promo[n] = '\0';
		if (ld_is_ident(a->promo, PROMO_ID_MAX))
			return 0;
		a->promo[0] = '\0';
		return -1;
	}
	if (nlen == 5 && memcmp(name, "{uid}", 5) == 0) {
		if (n > PATH_UID_MAX)
			return -1;
		memcpy(a->uid, s, n);
		a->uid[n] = '\0';
		if (ld_is_ident(a->uid, PATH_UID_MAX))
			return 0;
		a->uid[0] = '\0';
		return -1;
	}
	/* {id} */
	if (n > 18 || s[0] == '0')
		return -1;
	a->id = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			a->id = 0;
			return -1;
		}
		a->id = a->id * 10 + (s[i] - '0');
	}
	return 0;
}

int path_match(const char *pattern, const char *path, struct path_args *a)
{
	const char *p = pattern, *q = path;

	memset(a, 0, sizeof *a);
	for (;;) {
		size_t pn = strcspn(p, "/"), qn = strcspn(q, "/");

		if (pn && p[0] == '{') {
			if (qn == 0)
				return 0;
			if (!a->bad && take(p, pn, q, qn, a) != 0)
				a->bad = p[1] == 'p' ? "promo" : p[1] == 'u' ? "uid" : "id";
		} else if (pn != qn || memcmp(p, q, pn) != 0) {
			return 0;
		}
		p += pn;
		q += qn;
		if (!*p || !*q)
			return !*p && !*q;
		p++;
		q++;
	}
}
