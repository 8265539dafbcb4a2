/*
 * t/unit/support.c - lib/support.c on a real SQLite file: a grant is
 * given once per ticket (the same ticket again, even for someone else,
 * changes nothing and says for whom it was), a revoke never takes a
 * balance below zero, both are rows of grants through the rules' own
 * grant path (with the ticket, the note and the balance's version), and
 * a reward that was not delivered is revoked once.
 */
#include <string.h>

#include <sodium.h>

#include "db.h"
#include "grants.h"
#include "rules.h"
#include "../tap.h"
#include "testdb.h"

/* the statements themselves, for their plans */
#include "../../lib/support.c"

#define NOW 1720400000000LL /* 2024-07-08 09:53 in Seoul */

static const char def[] =
	"{\"id\":\"sup\",\"name\":\"sup\",\"time_zone\":\"Asia/Seoul\","
	"\"first_day\":\"2024-07-08\",\"last_day\":\"2024-07-31\","
	"\"grants\":{\"visit\":1,\"inviter\":1,\"invitee\":1},"
	"\"invites\":{\"max_credited_per_inviter\":30,\"invitee_new_within_hours\":24},"
	"\"prizes\":[{\"id\":\"coffee\",\"name\":\"Coffee\",\"daily_stock\":10,"
	"\"probability\":0.5}]}";

static struct ledger *l;
static const struct promo *p;

static struct ld_balance bal(const char *uid)
{
	struct ld_balance b;

	if (ledger_balance(l, "sup", uid, &b) != LD_OK)
		bail("%s", ledger_errmsg(l));
	return b;
}

static int64_t count(const char *sql, const char *arg)
{
	int64_t n = -1;

	if (db_int(ledger_db(l), sql, "cannot count", &n, NULL, "t", arg) != LD_OK)
		bail("%s", ledger_errmsg(l));
	return n;
}

static enum support_outcome act(int revoke, const char *uid, int64_t n, const char *ticket,
				struct support_result *r)
{
	struct support_request rq = { ticket, "lost dice", "alice" };
	enum support_outcome o = -1;
	enum ld_err e = revoke ? support_revoke(l, p, uid, n, &rq, NOW, &o, r)
			       : support_grant(l, p, uid, n, &rq, NOW, &o, r);

	if (e != LD_OK)
		bail("support: %s", ledger_errmsg(l));
	return o;
}

static uint32_t fixed(void *arg)
{
	return *(uint32_t *)arg;
}

static void test_grant_once(void)
{
	struct support_result r;
	struct visit_result vr;
	enum rule_outcome ro;

	rules_visit(l, p, "u", NOW, &ro, &vr);
	is_int(act(0, "u", 5, "T-1", &r), SUPPORT_DONE, "a grant");
	ok(BALANCE(r.bal) == 6 && r.bal.version == 2 && r.amount == 5,
	   "the balance after (6) and a new version (2)");
	is_int(act(0, "u", 5, "T-1", &r), SUPPORT_ALREADY, "the same ticket again");
	ok(strcmp(r.uid, "u") == 0 && r.amount == 5 && BALANCE(r.bal) == 6,
	   "says for whom and how much, balance unchanged");
	is_int(act(0, "v", 3, "T-1", &r), SUPPORT_ALREADY, "the same ticket for someone else");
	is_string(r.uid, "u", "names the first user");
	is_int(bal("v").version, 0, "and gives them nothing");
	is_int(count("SELECT count(*) FROM grants WHERE ref = ?1", "T-1"), 1,
	       "one grants row for the ticket");
	is_int(count("SELECT amount FROM grants WHERE ref = ?1 AND note = 'lost dice (by alice)'",
		     "T-1"),
	       5, "with its amount and the note naming the operator");
	is_int(act(0, "new", 2, "T-2", &r), SUPPORT_DONE, "a grant to someone never seen");
	ok(BALANCE(bal("new")) == 2 &&
		   count("SELECT first_seen FROM balances WHERE uid = ?1", "new") == NOW,
	   "makes their balance, first seen now");
}

static void test_revoke_floor(void)
{
	struct support_result r;

	is_int(act(1, "u", 7, "R-1", &r), SUPPORT_BELOW_ZERO, "revoking 7 of 6");
	ok(BALANCE(r.bal) == 6 && bal("u").version == 2, "changes nothing");
	is_int(count("SELECT count(*) FROM grants WHERE ref = ?1", "R-1"), 0,
	       "and records nothing");
	is_int(act(1, "u", 6, "R-2", &r), SUPPORT_DONE, "revoking all 6");
	ok(BALANCE(r.bal) == 0 && r.amount == -6, "down to 0, a grant of -6");
	is_int(act(1, "u", 1, "R-3", &r), SUPPORT_BELOW_ZERO, "one more: below zero");
	is_int(BALANCE(bal("u")), 0, "still 0");
	is_int(act(1, "u", 6, "R-2", &r), SUPPORT_ALREADY,
	       "the done ticket again answers ALREADY, not below zero");
	is_int(act(1, "nobody", 1, "R-4", &r), SUPPORT_BELOW_ZERO,
	       "revoking from someone without dice");
	is_int(count("SELECT count(*) FROM balances WHERE uid = ?1", "nobody"), 0,
	       "makes no balance for them");

	/* The schema backs the check: taking back more than there is fails
	 * with SQLite's words, even without support's check in front. */
	struct ld_balance b;
	db_begin(ledger_db(l));
	is_int(grant_balance_add(l, "sup", "new", -3, NOW, &b), LD_ERR_DB,
	       "grant_balance_add below zero is refused by the CHECK");
	ok(strstr(ledger_errmsg(l), "CHECK constraint failed") != NULL, "%s", ledger_errmsg(l));
	db_rollback(ledger_db(l));
	is_int(count("SELECT sum(amount) FROM grants WHERE uid = ?1", "u"), 1 + 5 - 6,
	       "the grants of u sum to its balance");
}

static void test_revoke_reward(void)
{
	struct support_request rq = { "RR-1", "fraud", "bob" };
	struct support_result r;
	struct draw_result dr;
	enum support_outcome o;
	enum rule_outcome ro;
	uint32_t win = 1, miss = 999999999;
	int64_t won, missed;

	act(0, "w", 2, "G-9", &r);
	if (rules_draw(l, p, "w", "req-00000001", NOW, fixed, &win, &ro, &dr) != LD_OK ||
	    dr.prize != 0)
		bail("a winning draw: %s", ledger_errmsg(l));
	won = dr.id;
	if (rules_draw(l, p, "w", "req-00000002", NOW, fixed, &miss, &ro, &dr) != LD_OK ||
	    dr.prize != -1)
		bail("a missed draw: %s", ledger_errmsg(l));
	missed = dr.id;
	support_revoke_reward(l, p, won + 100, &rq, NOW, &o, &r);
	is_int(o, SUPPORT_NO_DRAW, "no such draw");
	support_revoke_reward(l, p, missed, &rq, NOW, &o, &r);
	is_int(o, SUPPORT_NO_REWARD, "a miss has no reward");
	is_int(support_revoke_reward(l, p, won, &rq, NOW, &o, &r), LD_OK, "revoke a reward");
	ok(o == SUPPORT_DONE && r.revoked == 2 && strcmp(r.state, "pending") == 0 &&
		   strcmp(r.uid, "w") == 0,
	   "both events of the win, pending before, the winner named");
	is_int(count("SELECT count(*) FROM outbox WHERE state = 'revoked' AND last_error LIKE ?1",
		     "revoked by ticket RR-1: fraud (by bob)"),
	       2, "marked revoked, with the ticket");
	support_revoke_reward(l, p, won, &rq, NOW, &o, &r);
	is_int(o, SUPPORT_ALREADY, "again: already revoked");
}

/* A ticket is found through its own index, not by reading every grant
 * of the promotion (which grants_by_user and grants_by_day would let). */
static void test_plan(const char *path)
{
	sqlite3 *h = testdb_raw(path);
	char sql[400], plan[400] = "";
	sqlite3_stmt *st;

	snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", SQL_TICKET);
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		bail("%s", sqlite3_errmsg(h));
	while (sqlite3_step(st) == SQLITE_ROW)
		snprintf(plan + strlen(plan), sizeof plan - strlen(plan), "%s",
			 (const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
	ok(strstr(plan, "grants_one_per_ticket (promo=? AND reason=? AND ref=?)") != NULL,
	   "a ticket is looked up in its own index: %s", plan);
	sqlite3_close(h);
}

int main(void)
{
	struct testdb t;

	testdb_open_promo(&t, "support", def);
	l = t.ledger;
	p = t.promo;
	test_grant_once();
	test_revoke_floor();
	test_revoke_reward();
	test_plan(t.path);
	testdb_remove(&t);
	return done_testing();
}
