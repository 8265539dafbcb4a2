/*
 * t/unit/history.c - lib/history.c on a real SQLite file: one user's
 * story as they see it (GET me) and as support sees it (luckydicectl
 * user show). Ann visits, Bob claims her invite, Cat claims it too late,
 * Ann rolls a win and a miss and gets a compensation; each of them is
 * then read back.
 */
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "history.h"
#include "rules.h"
#include "support.h"
#include "../tap.h"
#include "testdb.h"

#define H  (3600 * 1000LL)
#define T0 1720400000000LL /* 2024-07-08T00:53:20Z, 09:53:20 in Seoul */

static const char def[] =
	"{\"id\":\"story\",\"name\":\"Story\",\"time_zone\":\"Asia/Seoul\","
	"\"first_day\":\"2024-07-07\",\"last_day\":\"2024-07-31\","
	"\"grants\":{\"visit\":1,\"inviter\":2,\"invitee\":3},"
	"\"invites\":{\"max_credited_per_inviter\":30,\"invitee_new_within_hours\":24},"
	"\"prizes\":[{\"id\":\"coffee\",\"name\":\"Coffee\",\"daily_stock\":10,"
	"\"probability\":0.5}]}";

static struct ledger *l;
static const struct promo *p;

static uint32_t fixed(void *arg)
{
	return *(uint32_t *)arg;
}

static struct json_object *story(const char *uid, enum history_view view)
{
	struct json_object *o;

	if (history_json(l, p, uid, T0 + 10 * H, view, &o) != LD_OK)
		bail("history of '%s': %s", uid, ledger_errmsg(l));
	return o;
}

static struct json_object *get(struct json_object *o, const char *path)
{
	char key[64];
	const char *dot;

	while (o && (dot = strchr(path, '.'))) {
		snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
		o = json_object_object_get_ex(o, key, &o) ? o : NULL;
		path = dot + 1;
	}
	return o && json_object_object_get_ex(o, path, &o) ? o : NULL;
}

static long long num(struct json_object *o, const char *path)
{
	struct json_object *v = get(o, path);
	return v ? json_object_get_int64(v) : -999;
}

static const char *str(struct json_object *o, const char *path)
{
	struct json_object *v = get(o, path);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static struct json_object *at(struct json_object *o, const char *path, size_t i)
{
	struct json_object *a = get(o, path);
	return a && json_object_is_type(a, json_type_array) && i < json_object_array_length(a)
		? json_object_array_get_idx(a, i)
		: NULL;
}

static size_t len(struct json_object *o, const char *path)
{
	struct json_object *a = get(o, path);
	return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 999;
}

/* The events that happen to Ann, Bob and Cat. */
static void live(void)
{
	char code[INVITE_CODE_LEN + 1];
	struct support_request rq = { "T-7", "sorry", "op" };
	struct support_result sr;
	enum support_outcome so;
	struct visit_result vr;
	struct claim_result cr;
	struct draw_result dr;
	enum rule_outcome o;
	uint32_t win = 0, miss = 999999999;

	if (rules_visit(l, p, "cat", T0 - 30 * H, &o, &vr) != LD_OK ||
	    rules_visit(l, p, "ann", T0, &o, &vr) != LD_OK ||
	    rules_invite_code(l, p, "ann", T0, NULL, code) != LD_OK ||
	    rules_claim(l, p, "bob", code, "dev-1", T0 + H, &o, &cr) != LD_OK || o != RULE_OK ||
	    rules_claim(l, p, "cat", code, NULL, T0 + 2 * H, &o, &cr) != LD_OK ||
	    o != RULE_NOT_NEW_USER ||
	    rules_draw(l, p, "ann", "ann-draw-1", T0 + 3 * H, fixed, &win, &o, &dr) != LD_OK ||
	    dr.prize != 0 ||
	    rules_draw(l, p, "ann", "ann-draw-2", T0 + 4 * H, fixed, &miss, &o, &dr) != LD_OK ||
	    support_grant(l, p, "ann", 4, &rq, T0 + 5 * H, &so, &sr) != LD_OK)
		bail("the story did not happen: %s", ledger_errmsg(l));
}

static void test_ann(void)
{
	struct json_object *me = story("ann", HISTORY_USER), *sup;

	is_string(str(me, "promotion.id"), "story", "the promotion");
	is_int(json_object_get_boolean(get(me, "promotion.active")), 1, "running");
	is_string(str(me, "user"), "ann", "the user");
	ok(num(me, "balance") == 5 && num(me, "granted") == 7 && num(me, "spent") == 2,
	   "balance 5: 1 visit + 2 inviter + 4 support, 2 rolled");
	is_int(len(me, "grants"), 3, "three grants");
	is_string(str(at(me, "grants", 0), "reason"), "support", "newest first: support");
	is_int(num(at(me, "grants", 0), "amount"), 4, "with its amount");
	is_string(str(at(me, "grants", 0), "text"), HISTORY_SUPPORT_TEXT, "said to be support's");
	ok(!get(at(me, "grants", 0), "ref") && !get(at(me, "grants", 0), "note"),
	   "without the ticket or the operator's note");
	is_string(str(at(me, "grants", 1), "reason"), "inviter", "then the inviter grant");
	ok(!get(at(me, "grants", 1), "ref"), "without the invitee's id");
	is_string(str(at(me, "grants", 2), "at"), "2024-07-08T09:53:20.000+09:00",
		  "the first visit, in Seoul time");
	is_int(len(me, "draws"), 2, "two draws");
	is_string(str(at(me, "draws", 0), "request_id"), "ann-draw-2", "the last draw");
	ok(get(at(me, "draws", 0), "prize") == NULL, "a miss");
	is_string(str(at(me, "draws", 1), "prize.name"), "Coffee", "the first a coffee");
	is_int(len(me, "prizes"), 1, "one prize");
	is_int(len(me, "invites"), 1, "one invite credited");
	is_string(str(at(me, "invites", 0), "invitee"), "***", "bob's, his id masked");
	ok(json_object_get_boolean(get(at(me, "invites", 0), "inviter_granted")),
	   "which granted her");
	ok(num(me, "invites_credited") == 1 && num(me, "invites_granted") == 1, "counted");
	ok(!get(me, "version") && !get(me, "events") && !get(me, "refused_claims"),
	   "the user's view has no support fields");
	json_object_put(me);

	sup = story("ann", HISTORY_SUPPORT);
	is_int(num(sup, "version"), 5, "support sees the version (five changes)");
	is_string(str(at(sup, "grants", 0), "ref"), "T-7", "the support grant's ticket");
	is_string(str(at(sup, "grants", 0), "note"), "sorry (by op)", "and its note");
	is_string(str(at(sup, "grants", 1), "ref"), "bob", "whom the inviter grant was for");
	is_string(str(at(sup, "invites", 0), "invitee"), "bob", "and the invitee unmasked");
	is_int(len(sup, "events"), 3, "and her three events");
	is_string(str(at(sup, "events", 0), "kind"), "notify.win",
		  "newest first: the win's notice");
	is_string(str(at(sup, "events", 1), "kind"), "reward.issue", "its reward");
	is_string(str(at(sup, "events", 2), "kind"), "notify.invite", "and bob's credit");
	is_string(str(at(sup, "events", 1), "state"), "pending", "pending");
	ok(num(at(sup, "events", 1), "attempts") == 0 &&
		   get(at(sup, "events", 1), "last_status") == NULL,
	   "never tried: no last status");
	ok(!get(sup, "invited_by") && len(sup, "refused_claims") == 0, "nobody invited her");
	json_object_put(sup);
}

static void test_bob_and_cat(void)
{
	struct json_object *bob = story("bob", HISTORY_SUPPORT), *cat;

	ok(num(bob, "balance") == 4 && len(bob, "grants") == 2, "bob: visit and invitee grants");
	is_string(str(bob, "invited_by.inviter"), "ann", "invited by ann");
	is_string(str(bob, "invited_by.at"), "2024-07-08T10:53:20.000+09:00",
		  "an hour after her visit");
	is_int(len(bob, "events"), 0, "no events are bob's");
	json_object_put(bob);

	cat = story("cat", HISTORY_SUPPORT);
	is_int(len(cat, "refused_claims"), 1, "cat: one refused claim");
	is_string(str(at(cat, "refused_claims", 0), "reason"), "not_new_user", "not new");
	is_string(str(at(cat, "refused_claims", 0), "inviter"), "ann", "ann's code");
	ok(get(at(cat, "refused_claims", 0), "client") == NULL, "no client");
	ok(num(cat, "balance") == 1 && !get(cat, "invited_by"), "only the visit, not invited");
	json_object_put(cat);

	struct json_object *none = story("nobody", HISTORY_USER);
	ok(num(none, "balance") == 0 && len(none, "grants") == 0 && len(none, "draws") == 0,
	   "someone never seen: an empty story");
	json_object_put(none);
}

int main(void)
{
	struct testdb t;

	testdb_open_promo(&t, "history", def);
	l = t.ledger;
	p = t.promo;
	live();
	test_ann();
	test_bob_and_cat();
	testdb_remove(&t);
	return done_testing();
}
