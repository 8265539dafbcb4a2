/*
 * path.h - the pure part of routing: splitting a request path into the
 * promotion id and the endpoint after it. No FastCGI, so the fuzzers call
 * it directly.
 */
#ifndef LD_PATH_H
#define LD_PATH_H

#include "promo.h"

#define PATH_PROMO_PREFIX "/api/promotions/"
#define PATH_UID_MAX      64 /* a user id, as in tokens */

/* What a path pattern's parameters took from a path (path_match). */
struct path_args {
	char promo[PROMO_ID_MAX + 1]; /* {promo}: 1..PROMO_ID_MAX of [A-Za-z0-9_-] */
	char uid[PATH_UID_MAX + 1];   /* {uid}: 1..PATH_UID_MAX of [A-Za-z0-9_-] */
	int64_t id;                   /* {id}: 1 to 18 digits, no leading zero */
	const char *bad;              /* the first parameter whose segment is not
				       * one ("promo", "uid", "id"); NULL */
};

/*
 * Splits path. Under /api/promotions/{id}/ returns 1 with *rest pointing
 * at what follows the id's slash, and either the id copied into promo
 * (PROMO_ID_MAX + 1 bytes) or *bad_promo set when the id is empty, too
 * long or not [A-Za-z0-9_-] (promo is then ""). Any other path returns 0
 * with *rest = path.
 */
int path_split(const char *path, char promo[PROMO_ID_MAX + 1], const char **rest, int *bad_promo);

/*
 * Whether path has the shape of pattern: the same number of '/'
 * separated segments, each literal segment equal, each parameter
 * segment ("{promo}", "{uid}", "{id}") there and not empty. Returns 1
 * and fills *a (a->bad naming the first parameter whose segment is not
 * valid, those after it then unset), or 0.
 *
 *	path_match("/console/api/promotions/{promo}/users/{uid}", path, &a)
 */
int path_match(const char *pattern, const char *path, struct path_args *a);

/*
 * True when the raw request URI (REQUEST_URI: path and query as the
 * client sent them) has exactly path as its path part, that is when the
 * server did not have to decode escapes, remove dot segments or merge
 * slashes to get path. Our paths never need any of that, so a request
 * that did is refused rather than guessed at.
 */
int path_is_plain(const char *request_uri, const char *path);

#endif
