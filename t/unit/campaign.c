/*
 * t/unit/campaign.c - lib/campaign.c on a real SQLite file: the top
 * inviters, counting invites past the cap, the same whether the list is
 * made from those past the cap alone or with every counter; the clients
 * with the most refused claims, with their credited ones; the outbox's
 * backlog and the promotion's dead events.
 */
#include <string.h>

#include <sodium.h>

#include "campaign.h"
#include "db.h"
#include "rules.h"
#include "../tap.h"
#include "testdb.h"

#define NOW 1720400000000LL /* 2024-07-08 09:53 in Seoul */

static const char def[] =
	"{\"id\":\"cam\",\"name\":\"cam\",\"time_zone\":\"Asia/Seoul\","
	"\"first_day\":\"2024-07-08\",\"last_day\":\"2024-07-31\","
	"\"grants\":{\"visit\":1,\"inviter\":1,\"invitee\":1},"
	"\"invites\":{\"max_credited_per_inviter\":2,\"invitee_new_within_hours\":24},"
	"\"abuse\":{\"claims_per_client_per_day\":3},"
	"\"prizes\":[{\"id\":\"coffee\",\"name\":\"Coffee\",\"daily_stock\":10,\"probability\":1}]}";

static struct ledger *l;
static const struct promo *p;

/* n friends claim inviter's code, each from client (may be NULL). */
static void invites(const char *inviter, int n, const char *client)
{
	static int k;
	char code[INVITE_CODE_LEN + 1], uid[32];
	struct claim_result cr;
	enum rule_outcome o;

	if (rules_invite_code(l, p, inviter, NOW, NULL, code) != LD_OK)
		bail("code: %s", ledger_errmsg(l));
	for (int i = 0; i < n; i++) {
		snprintf(uid, sizeof uid, "friend%03d", ++k);
		if (rules_claim(l, p, uid, code, client, NOW + k, &o, &cr) != LD_OK)
			bail("claim: %s", ledger_errmsg(l));
	}
}

/* The inviters of a watch list of limit, as "user=credited/granted ...". */
static void top(int limit, char *buf, size_t n)
{
	struct json_object *o, *a, *v;

	buf[0] = '\0';
	if (campaign_watch_json(l, p, limit, &o) != LD_OK)
		bail("watch: %s", ledger_errmsg(l));
	json_object_object_get_ex(o, "inviters", &a);
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *x = json_object_array_get_idx(a, i);
		size_t len = strlen(buf);
		json_object_object_get_ex(x, "user", &v);
		snprintf(buf + len, n - len, "%s%s=", i ? " " : "", json_object_get_string(v));
		len = strlen(buf);
		json_object_object_get_ex(x, "credited", &v);
		snprintf(buf + len, n - len, "%lld/", (long long)json_object_get_int64(v));
		len = strlen(buf);
		json_object_object_get_ex(x, "granted", &v);
		snprintf(buf + len, n - len, "%lld", (long long)json_object_get_int64(v));
	}
	json_object_put(o);
}

static void test_inviters(void)
{
	char got[400];

	invites("ann", 5, NULL); /* 2 granted, 3 past the cap */
	invites("bob", 3, NULL); /* 2 granted, 1 past */
	invites("cat", 2, NULL); /* 2 granted */
	invites("dan", 1, NULL); /* 1 granted */
	top(2, got, sizeof got);
	is_string(got, "ann=5/2 bob=3/2", "the top 2: both past the cap, found from those alone");
	top(3, got, sizeof got);
	is_string(got, "ann=5/2 bob=3/2 cat=2/2",
		  "the top 3: with cat, at the cap, from every counter");
	top(10, got, sizeof got);
	is_string(got, "ann=5/2 bob=3/2 cat=2/2 dan=1/1", "all four, most first");
	/* a cap lowered below what cat and dan hold would leave them out of a
	 * list made of those past the new cap (documented in campaign.h) */
}

static void test_clients(void)
{
	struct json_object *o, *a, *x, *v;
	const char *c;

	/* the cap: 3 credited claims a day from one client, then refused */
	invites("eve", 5, "10.0.0.1");
	invites("fay", 1, "10.0.0.2");
	if (campaign_watch_json(l, p, 5, &o) != LD_OK)
		bail("watch: %s", ledger_errmsg(l));
	json_object_object_get_ex(o, "clients", &a);
	is_int((int)json_object_array_length(a), 1, "one client has refused claims");
	x = json_object_array_get_idx(a, 0);
	json_object_object_get_ex(x, "client", &v);
	c = json_object_get_string(v);
	is_string(c, "10.0.0.1", "the busy one");
	json_object_object_get_ex(x, "refused", &v);
	is_int((int)json_object_get_int64(v), 2, "2 claims refused");
	json_object_object_get_ex(x, "credited", &v);
	is_int((int)json_object_get_int64(v), 3, "3 credited");
	json_object_object_get_ex(x, "last_day", &v);
	is_string(json_object_get_string(v), "2024-07-08", "on the first day");
	json_object_put(o);
}

static void test_outbox(void)
{
	struct json_object *o, *a, *v;

	/* one event due later, one dead here, one dead elsewhere */
	if (db_script(
		    ledger_db(l),
		    "UPDATE outbox SET next_at = 9999999999999 WHERE id = 1;"
		    "UPDATE outbox SET state = 'dead', last_status = 404, done_at = 1 WHERE id = 2;"
		    "INSERT INTO outbox (key, kind, promo, uid, payload, state, next_at, created_at)"
		    " VALUES ('other/x', 'notify.win', 'other', 'zed', '{}', 'dead', 0, 0)",
		    "set up") != LD_OK)
		bail("%s", ledger_errmsg(l));
	if (campaign_outbox_json(l, p, NOW + 1000000, 10, &o) != LD_OK)
		bail("outbox: %s", ledger_errmsg(l));
	json_object_object_get_ex(o, "due", &v);
	int64_t due = json_object_get_int64(v);
	json_object_object_get_ex(o, "waiting", &v);
	is_int((int)json_object_get_int64(v), 1, "one event waits for a later retry");
	int64_t pending = -1;
	db_int(ledger_db(l), "SELECT count(*) FROM outbox WHERE state = 'pending'", "count",
	       &pending, NULL, "");
	is_int((int)due, (int)pending - 1, "the others pending are due");
	json_object_object_get_ex(o, "dead", &v);
	is_int((int)json_object_get_int64(v), 2, "two dead events, of every promotion");
	json_object_object_get_ex(o, "dead_events", &a);
	is_int((int)json_object_array_length(a), 1, "one of them this promotion's");
	json_object_object_get_ex(json_object_array_get_idx(a, 0), "last_status", &v);
	is_int((int)json_object_get_int64(v), 404, "with its last status");
	json_object_object_get_ex(o, "oldest_due", &v);
	ok(v && strncmp(json_object_get_string(v), "2024-07-08T", 11) == 0,
	   "the oldest due, in the promotion's time: %s", v ? json_object_get_string(v) : "null");
	json_object_put(o);
}

int main(void)
{
	struct testdb t;

	testdb_open_promo(&t, "campaign", def);
	l = t.ledger;
	p = t.promo;
	test_inviters();
	test_clients();
	test_outbox();
	testdb_remove(&t);
	return done_testing();
}
