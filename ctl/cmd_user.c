/*
 * cmd_user.c - user show PROMO UID [--json]: everything the ledger knows
 * about one user, for support ("why do I have 3 dice?"), with the cached
 * balance beside the ledger's. The facts come from history_json
 * (HISTORY_SUPPORT); this file only renders them.
 */
#include <stdio.h>
#include <string.h>

#include "cache.h"
#include "cachesync.h"
#include "ctl.h"
#include "history.h"

/* Member k of o as a string ("-" when missing or null). */
static const char *str(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !v)
		return "-";
	return json_object_get_string(v);
}

static int64_t num(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_int64(v) : 0;
}

static struct json_object *arr(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_array)
		? v
		: NULL;
}

/* The cache's view of the user, as the JSON member "cache". */
static struct json_object *cache_json(struct ctl *c, const char *promo, const char *uid,
				      const struct ld_balance *b)
{
	struct cache *cache = ctl_cache_open(c);
	struct json_object *o = cachesync_user_json(cache, promo, uid, b, 1);

	cache_free(cache);
	return o;
}

static void show_grants(struct json_object *h)
{
	struct json_object *a = arr(h, "grants");
	size_t n = a ? json_object_array_length(a) : 0;

	printf("\ngrants (%zu):\n", n);
	/* newest first in the JSON; oldest first reads better as a story */
	for (size_t i = n; i-- > 0;) {
		struct json_object *g = json_object_array_get_idx(a, i);
		const char *reason = str(g, "reason"), *ref = str(g, "ref");
		char why[600];

		if (strcmp(reason, "visit") == 0)
			snprintf(why, sizeof why, "first visit");
		else if (strcmp(reason, "inviter") == 0)
			snprintf(why, sizeof why, "for inviting %s", ref);
		else if (strcmp(reason, "invitee") == 0)
			snprintf(why, sizeof why, "invited by %s", ref);
		else
			snprintf(why, sizeof why, "ticket %s: %s", ref, str(g, "note"));
		printf("  %s  %-8s %+4lld  %s\n", str(g, "at"), reason, (long long)num(g, "amount"),
		       why);
	}
}

static void show_invites(struct json_object *h)
{
	struct json_object *a = arr(h, "invites"), *by;
	size_t n = a ? json_object_array_length(a) : 0;

	if (json_object_object_get_ex(h, "invited_by", &by) && by)
		printf("\ninvited by: %s (code %s) at %s\n", str(by, "inviter"), str(by, "code"),
		       str(by, "at"));
	else
		printf("\ninvited by: nobody (no credited invite)\n");
	printf("\ninvites credited as inviter (%zu, %lld with a grant):\n", n,
	       (long long)num(h, "invites_granted"));
	for (size_t i = n; i-- > 0;) {
		struct json_object *v = json_object_array_get_idx(a, i), *g;
		json_object_object_get_ex(v, "inviter_granted", &g);
		printf("  %s  %-20s %s\n", str(v, "at"), str(v, "invitee"),
		       json_object_get_boolean(g) ? "inviter granted"
						  : "no grant: inviter past the cap");
	}
	a = arr(h, "refused_claims");
	n = a ? json_object_array_length(a) : 0;
	printf("\nrefused claims (%zu):\n", n);
	for (size_t i = n; i-- > 0;) {
		struct json_object *v = json_object_array_get_idx(a, i);
		printf("  %s  %-18s code %s of %s, client %s\n", str(v, "at"), str(v, "reason"),
		       str(v, "code"), str(v, "inviter"), str(v, "client"));
	}
}

static void show_draws(struct json_object *h)
{
	struct json_object *a = arr(h, "draws");
	size_t n = a ? json_object_array_length(a) : 0;

	printf("\ndraws (%zu):\n", n);
	for (size_t i = n; i-- > 0;) {
		struct json_object *d = json_object_array_get_idx(a, i), *z;
		char out[300];
		if (json_object_object_get_ex(d, "prize", &z) && z)
			snprintf(out, sizeof out, "won %s (%s)", str(z, "id"), str(z, "name"));
		else
			snprintf(out, sizeof out, "miss");
		printf("  %s  draw %-6lld request %-24s %s\n", str(d, "at"),
		       (long long)num(d, "id"), str(d, "request_id"), out);
	}
	a = arr(h, "events");
	n = a ? json_object_array_length(a) : 0;
	printf("\nrewards and notifications (%zu):\n", n);
	for (size_t i = n; i-- > 0;) {
		struct json_object *v = json_object_array_get_idx(a, i);
		printf("  %s  %-13s %-9s attempts %lld, last status %s, last error %s  [%s]\n",
		       str(v, "at"), str(v, "kind"), str(v, "state"), (long long)num(v, "attempts"),
		       str(v, "last_status"), str(v, "last_error"), str(v, "key"));
	}
}

static void show_balance(struct json_object *h, struct json_object *cache)
{
	const char *state = str(cache, "state");
	struct json_object *d;

	printf("balance    ledger: %lld (granted %lld, spent %lld, version %lld)\n",
	       (long long)num(h, "balance"), (long long)num(h, "granted"),
	       (long long)num(h, "spent"), (long long)num(h, "version"));
	if (strcmp(state, "hit") == 0) {
		json_object_object_get_ex(cache, "drift", &d);
		printf("           cache:  %lld (version %lld)%s\n",
		       (long long)num(cache, "balance"), (long long)num(cache, "version"),
		       json_object_get_boolean(d) ? "  DRIFT: differs from the ledger"
						    " (luckydicectl cache rebuild)"
						  : "  same as the ledger");
	} else {
		printf("           cache:  %s\n",
		       strcmp(state, "miss") == 0
			       ? "miss (no key: filled on the next read or write)"
			       : strcmp(state, "unavailable") == 0 ? "redis unavailable"
								   : "not configured");
	}
}

/* user show PROMO UID [--json] */
static int user_show(struct ctl *c, const struct ctl_call *call)
{
	const char *uid = call->argv[1];
	struct json_object *h, *cache, *promo;
	const struct promo *p;
	struct ld_balance b;

	if (!ld_is_ident(uid, 64))
		ctl_die("'%s' is not a valid user id (1-64 of A-Z a-z 0-9 _ -)", uid);
	p = ctl_promo(c, call->argv[0]);
	if (history_json(ctl_ledger(c), p, uid, ld_now_ms(), HISTORY_SUPPORT, &h) != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	b.granted = num(h, "granted");
	b.spent = num(h, "spent");
	b.version = num(h, "version");
	cache = cache_json(c, p->id, uid, &b);
	json_object_object_add(h, "cache", cache);
	if (ctl_flag(call, "json")) {
		ctl_print_json(h);
		return 0;
	}
	json_object_object_get_ex(h, "promotion", &promo);
	printf("user %s in promotion %s (%s, %s to %s, %s, times in %s)\n", uid, p->id,
	       str(promo, "name"), p->first_day, p->last_day,
	       promo_active(p, ld_now_ms()) ? "active" : "not active", p->time_zone);
	show_balance(h, cache);
	show_grants(h);
	show_invites(h);
	show_draws(h);
	json_object_put(h);
	return 0;
}

/* clang-format off */
const struct ctl_cmd ctl_cmds_user[] = {
	{ "user", "show", user_show, "PROMO UID", 2, 2, 0,
	  "one user explained: grants, invites, claims, draws, rewards, balance vs cache",
	  "Explains user UID in promotion PROMO for support: every grant with its\n"
	  "reason, from or for whom and local time; invites credited (and whether the\n"
	  "inviter got a grant); who invited them; refused claims; draws; every\n"
	  "reward and notification with its delivery state; and the ledger's balance\n"
	  "beside the cached one, marked DRIFT when they differ. A user the ledger\n"
	  "does not know shows as empty.",
	  "0 shown; 2 no such promotion, a malformed UID, or cannot run (usage, config,\n"
	  "database)",
	  { CTL_OPT_JSON, { NULL } } },
	{ NULL },
};
/* clang-format on */
