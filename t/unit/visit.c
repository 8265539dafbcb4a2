/*
 * visit.c - the rules at the edges of a promotion's days: a visit and an
 * invite claim at the last instant before local midnight and at midnight
 * itself, in the promotion's time zone (Asia/Seoul, UTC+9), on a real
 * SQLite file. lib/ takes the time as an argument, so the test picks it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger.h"
#include "rules.h"
#include "../tap.h"
#include "testdb.h"

static const char def[] =
	"{\"id\":\"edge\",\"name\":\"edge\",\"time_zone\":\"Asia/Seoul\","
	"\"first_day\":\"2024-07-08\",\"last_day\":\"2024-07-31\","
	"\"grants\":{\"visit\":1,\"inviter\":1,\"invitee\":1},"
	"\"invites\":{\"max_credited_per_inviter\":30,\"invitee_new_within_hours\":24},"
	"\"prizes\":[]}";

/* 2024-07-07T15:00:00Z = 2024-07-08 00:00 in Seoul; the last day ends at
 * 2024-07-31T15:00:00Z. */
#define FIRST_MS 1720364400000LL
#define END_MS   1722438000000LL

static int visit(struct ledger *l, const struct promo *p, const char *uid, int64_t now)
{
	struct visit_result r;
	enum rule_outcome o;

	if (rules_visit(l, p, uid, now, &o, &r) != LD_OK)
		return -1;
	return o == RULE_OK ? r.granted : 100 + (int)o;
}

int main(void)
{
	char err[256], code[INVITE_CODE_LEN + 1];
	struct testdb db;
	struct claim_result cr;
	enum rule_outcome o;
	struct ledger *l;
	struct promo *p;

	testdb_open(&db, "visit");
	l = db.ledger;
	if (promo_parse(def, sizeof def - 1, &p, err, sizeof err) != LD_OK)
		bail("promo: %s", err);

	is_int(visit(l, p, "a", FIRST_MS - 1), 100 + RULE_NOT_ACTIVE,
	       "a visit at 23:59:59.999 Seoul before the first day is not active");
	is_int(visit(l, p, "a", FIRST_MS), 1,
	       "a visit at 00:00:00.000 Seoul of the first day is granted");
	is_int(visit(l, p, "a", FIRST_MS + 1), 0, "a second visit grants nothing");
	is_int(visit(l, p, "b", END_MS - 1), 1,
	       "a visit at 23:59:59.999 Seoul of the last day is granted");
	is_int(visit(l, p, "c", END_MS), 100 + RULE_NOT_ACTIVE,
	       "a visit at 00:00 Seoul after the last day is not active");
	is_int(visit(l, p, "e", FIRST_MS + 5 * 3600000LL), 1,
	       "2024-07-07T20:00Z is a UTC day before the first day but Seoul's first day: granted");

	ok(rules_invite_code(l, p, "a", END_MS + 1000, NULL, code) == LD_OK &&
		   strlen(code) == INVITE_CODE_LEN,
	   "an invite code can be had after the last day");
	ok(rules_claim(l, p, "d", code, NULL, END_MS, &o, &cr) == LD_OK && o == RULE_NOT_ACTIVE,
	   "a claim at midnight after the last day is not active");
	ok(rules_claim(l, p, "d", code, NULL, END_MS - 1, &o, &cr) == LD_OK && o == RULE_OK &&
		   cr.granted,
	   "a claim at the last millisecond of the last day is credited");

	promo_free(p);
	testdb_remove(&db);
	return done_testing();
}
