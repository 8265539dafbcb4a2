/*
 * t/unit/path.c - cgi/path.c: a request path split into the promotion id
 * and the endpoint after it, a bad id told from no id, and the check that
 * the raw request URI is the path itself (no escapes, dot segments or
 * repeated slashes for nginx to have undone); console paths matched
 * against patterns with {promo}, {uid} and {id}.
 */
#include <string.h>

#include "../../cgi/path.c"
#include "../tap.h"

/* path_split of path: checks the return, the promotion, the rest and
 * the bad flag. */
static void split(const char *path, int want, const char *promo, const char *rest, int bad)
{
	char got[PROMO_ID_MAX + 1];
	const char *r = NULL;
	int b = -1, n = path_split(path, got, &r, &b);

	ok(n == want && strcmp(got, promo) == 0 && r && strcmp(r, rest) == 0 && b == bad,
	   "'%.80s' -> %d, promo '%s', rest '%s', bad %d (got %d, '%s', '%s', %d)", path, want,
	   promo, rest, bad, n, got, r ? r : "(null)", b);
}

/* path_match of path against pattern: the return, and what it took
 * ("promo=p uid=u id=3 bad=-"). */
static void match(const char *pattern, const char *path, int want, const char *took)
{
	struct path_args a;
	char got[200];
	int n = path_match(pattern, path, &a);

	snprintf(got, sizeof got, "promo=%s uid=%s id=%lld bad=%s", a.promo, a.uid, (long long)a.id,
		 a.bad ? a.bad : "-");
	ok(n == want && (!want || strcmp(got, took) == 0), "'%.80s' ~ '%s' -> %d %s (got %d %s)",
	   path, pattern, want, want ? took : "", n, got);
}

static void test_match(void)
{
	const char *user = "/console/api/promotions/{promo}/users/{uid}";
	const char *retry = "/console/api/promotions/{promo}/outbox/{id}/retry";
	char uid[PATH_UID_MAX + 2], path[200];

	match("/console/api/session", "/console/api/session", 1, "promo= uid= id=0 bad=-");
	match("/console/api/session", "/console/api/session/", 0, "");
	match("/console/api/session", "/console/api/sessions", 0, "");
	match("/console/api/session", "/console/api", 0, "");
	match(user, "/console/api/promotions/p-1/users/u_2", 1, "promo=p-1 uid=u_2 id=0 bad=-");
	match(user, "/console/api/promotions/p/users/", 0, "");
	match(user, "/console/api/promotions//users/u", 0, "");
	match(user, "/console/api/promotions/p/users/u/grant", 0, "");
	match(user, "/console/api/promotions/p.x/users/u", 1, "promo= uid= id=0 bad=promo");
	match(user, "/console/api/promotions/p/users/u%20v", 1, "promo=p uid= id=0 bad=uid");
	memset(uid, 'u', PATH_UID_MAX);
	uid[PATH_UID_MAX] = '\0';
	snprintf(path, sizeof path, "/console/api/promotions/p/users/%s", uid);
	match(user, path, 1,
	      "promo=p uid=uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu id=0 bad=-");
	uid[PATH_UID_MAX] = 'u';
	uid[PATH_UID_MAX + 1] = '\0';
	snprintf(path, sizeof path, "/console/api/promotions/p/users/%s", uid);
	match(user, path, 1, "promo=p uid= id=0 bad=uid");
	match(retry, "/console/api/promotions/p/outbox/42/retry", 1, "promo=p uid= id=42 bad=-");
	match(retry, "/console/api/promotions/p/outbox/042/retry", 1, "promo=p uid= id=0 bad=id");
	match(retry, "/console/api/promotions/p/outbox/0/retry", 1, "promo=p uid= id=0 bad=id");
	match(retry, "/console/api/promotions/p/outbox/-1/retry", 1, "promo=p uid= id=0 bad=id");
	match(retry, "/console/api/promotions/p/outbox/1234567890123456789/retry", 1,
	      "promo=p uid= id=0 bad=id");
	match(retry, "/console/api/promotions/p/outbox/999999999999999999/retry", 1,
	      "promo=p uid= id=999999999999999999 bad=-");
	match(retry, "/console/api/promotions/p/outbox/1/retry/", 0, "");
	match(retry, "", 0, "");
}

int main(void)
{
	char id[PROMO_ID_MAX + 2], path[PROMO_ID_MAX + 64];

	test_match();
	split("/api/promotions/lucky-dice_2024/visit", 1, "lucky-dice_2024", "visit", 0);
	split("/api/promotions/p/invite/claim", 1, "p", "invite/claim", 0);
	split("/api/promotions/p/", 1, "p", "", 0);
	split("/healthz", 0, "", "/healthz", 0);
	split("/", 0, "", "/", 0);
	split("", 0, "", "", 0);
	split("/api/promotions/p", 0, "", "/api/promotions/p", 0);
	split("/api/promotions", 0, "", "/api/promotions", 0);
	split("/api/promotionsX/p/visit", 0, "", "/api/promotionsX/p/visit", 0);
	split("/api/promotions//visit", 1, "", "visit", 1);
	split("/api/promotions/p.q/visit", 1, "", "visit", 1);
	split("/api/promotions/p q/visit", 1, "", "visit", 1);
	split("/api/promotions/%70/visit", 1, "", "visit", 1);

	memset(id, 'x', PROMO_ID_MAX);
	id[PROMO_ID_MAX] = '\0';
	snprintf(path, sizeof path, "/api/promotions/%s/me", id);
	split(path, 1, id, "me", 0);
	id[PROMO_ID_MAX] = 'x';
	id[PROMO_ID_MAX + 1] = '\0';
	snprintf(path, sizeof path, "/api/promotions/%s/me", id);
	split(path, 1, "", "me", 1);

	ok(path_is_plain("/healthz", "/healthz"), "a path is plain");
	ok(path_is_plain("/healthz?x=%2F..", "/healthz"), "whatever its query");
	ok(path_is_plain("/api/promotions/p/visit", "/api/promotions/p/visit"),
	   "an API path is plain");
	ok(!path_is_plain("/health%7a", "/healthz"), "an escape is not");
	ok(!path_is_plain("/api/promotions/p/../p/visit", "/api/promotions/p/visit"),
	   "nor a dot segment");
	ok(!path_is_plain("/api//promotions/p/visit", "/api/promotions/p/visit"),
	   "nor a repeated slash");
	ok(!path_is_plain("/healthz/", "/healthz"), "nor a trailing slash nginx did not match");
	ok(!path_is_plain("/health", "/healthz"), "nor a path shorter than the one matched");
	ok(!path_is_plain("", "/healthz"), "nor an empty URI");
	return done_testing();
}
