/*
 * path.h - the pure part of routing: splitting a request path into the
 * promotion id and the endpoint after it. No FastCGI, so the fuzzers call
 * it directly.
 */
#ifndef LD_PATH_H
#define LD_PATH_H

#include "promo.h"

#define PATH_PROMO_PREFIX "/api/promotions/"

/*
 * Splits path. Under /api/promotions/{id}/ returns 1 with *rest pointing
 * at what follows the id's slash, and either the id copied into promo
 * (PROMO_ID_MAX + 1 bytes) or *bad_promo set when the id is empty, too
 * long or not [A-Za-z0-9_-] (promo is then ""). Any other path returns 0
 * with *rest = path.
 */
int path_split(const char *path, char promo[PROMO_ID_MAX + 1], const char **rest,
	       int *bad_promo);

/*
 * True when the raw request URI (REQUEST_URI: path and query as the
 * client sent them) has exactly path as its path part, that is when the
 * server did not have to decode escapes, remove dot segments or merge
 * slashes to get path. Our paths never need any of that, so a request
 * that did is refused rather than guessed at.
 */
int path_is_plain(const char *request_uri, const char *path);

#endif
