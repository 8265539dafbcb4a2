/*
 * t/unit/stats.c - lib/stats.c: a promotion's numbers per local day read
 * from a real SQLite file after visits, an invite and draws on three
 * days (rows of other days and of prizes no longer in the file are left
 * out): the days not finished counted each time, the finished ones
 * counted once and kept, within a budget (at least one a read); each
 * count a range of its index; one day's stock as /metrics reads it (with
 * when a prize sold out); and the dry run's expected and seeded models.
 */
#include <math.h>
#include <string.h>

#include <sodium.h>

#include "db.h"
#include "rules.h"
#include "support.h"
#include "../tap.h"
#include "testdb.h"

/* the statements themselves, for their plans */
#include "../../lib/stats.c"

static const char def[] =
	"{\"id\":\"st\",\"name\":\"st\",\"time_zone\":\"Asia/Seoul\","
	"\"first_day\":\"2024-07-08\",\"last_day\":\"2024-07-10\","
	"\"grants\":{\"visit\":10,\"inviter\":1,\"invitee\":1},"
	"\"invites\":{\"max_credited_per_inviter\":30,\"invitee_new_within_hours\":24},"
	"\"prizes\":["
	" {\"id\":\"a\",\"name\":\"A\",\"daily_stock\":2,\"probability\":0.5},"
	" {\"id\":\"b\",\"name\":\"B\",\"daily_stock\":5,\"probability\":0.2,"
	"  \"stock_by_day\":{\"2024-07-10\":0}}]}";

#define A 0u         /* picks prize a */
#define B 600000000u /* picks prize b */

static struct ledger *l;
static const struct promo *p;

/* Noon in Seoul of 2024-07-(8 + d), UTC ms. */
static int64_t noon(int d)
{
	return (ld_days_from_civil(2024, 7, 8 + d) * 86400 + 3 * 3600) * 1000LL;
}

static uint32_t fixed(void *arg)
{
	return *(uint32_t *)arg;
}

static void roll(const char *uid, int d, uint32_t r)
{
	static int n;
	struct draw_result dr;
	enum rule_outcome o;
	char rid[32];

	snprintf(rid, sizeof rid, "rid-%08d", ++n);
	if (rules_draw(l, p, uid, rid, noon(d) + n, fixed, &r, &o, &dr) != LD_OK || o != RULE_OK)
		bail("draw: %s", ledger_errmsg(l));
}

static void visit(const char *uid, int d)
{
	struct visit_result vr;
	enum rule_outcome o;

	if (rules_visit(l, p, uid, noon(d), &o, &vr) != LD_OK)
		bail("visit: %s", ledger_errmsg(l));
}

static void live(void)
{
	char code[INVITE_CODE_LEN + 1];
	struct claim_result cr;
	enum rule_outcome o;

	visit("u1", 0);
	visit("u2", 0);
	roll("u1", 0, A);
	roll("u1", 0, A);
	roll("u1", 0, A); /* a's stock of the day is gone: a miss */
	roll("u1", 0, B);
	visit("u3", 1);
	if (rules_invite_code(l, p, "u1", noon(1), NULL, code) != LD_OK ||
	    rules_claim(l, p, "u3", code, NULL, noon(1), &o, &cr) != LD_OK || o != RULE_OK)
		bail("claim: %s", ledger_errmsg(l));
	roll("u3", 1, A);
	roll("u2", 2, B); /* b has no stock on the last day: a miss */
	/* a draw on no day of the promotion, and the win of a prize since
	 * removed from the file, with its stock */
	if (db_script(
		    ledger_db(l),
		    "INSERT INTO draws (promo, uid, request_id, created_at, day, rand, prize)"
		    " VALUES ('st', 'u9', 'old-1', 0, '2024-06-01', 0, 'a'),"
		    " ('st', 'u9', 'old-2', 0, '2024-07-08', 0, 'gone');"
		    "INSERT INTO stock (promo, day, prize, taken) VALUES ('st', '2024-07-08', 'gone', 1)",
		    "cannot add rows") != LD_OK)
		bail("%s", ledger_errmsg(l));
}

static void test_read(void)
{
	struct stats_day *d;

	if (stats_read(l, p, noon(10), -1, &d, NULL) != LD_OK)
		bail("stats_read: %s", ledger_errmsg(l));
	ok(d[0].finished && d[2].finished, "every day is finished after the campaign");
	is_string(d[0].day, "2024-07-08", "day 0 by its local name");
	ok(d[0].visits == 2 && d[1].visits == 1 && d[2].visits == 0,
	   "visits per day: 2, 1, 0 (a claim after a visit is no second visit)");
	ok(d[0].invites == 0 && d[1].invites == 1 && d[2].invites == 0, "one invite, on day 1");
	ok(d[0].draws == 5 && d[1].draws == 1 && d[2].draws == 1,
	   "draws per day: 5 (the removed prize's too), 1, 1; none of another day");
	ok(d[0].wins[0] == 2 && d[0].wins[1] == 1 && d[1].wins[0] == 1 && d[1].wins[1] == 0 &&
		   d[2].wins[0] == 0 && d[2].wins[1] == 0,
	   "wins per day and prize: a 2, b 1; a 1; none");
	ok(d[0].stock[0] == 2 && d[0].stock[1] == 5 && d[2].stock[1] == 0,
	   "the day's stock, as the file says (b: none on the last day)");
	ok(d[0].left[0] == 0 && d[0].left[1] == 4 && d[1].left[0] == 1 && d[1].left[1] == 5 &&
		   d[2].left[0] == 2 && d[2].left[1] == 0,
	   "left: stock minus taken");
	stats_days_free(d, p->ndays);
}

static void test_stock_day(void)
{
	struct stats_stock z[2];

	is_int(stats_stock_day(l, p, 0, z), LD_OK, "the first day's stock");
	ok(z[0].stock == 2 && z[0].left == 0 && z[0].sold_out_ms == noon(0) + 2,
	   "a: 2, none left, sold out by the second draw's win");
	ok(z[1].stock == 5 && z[1].left == 4 && z[1].sold_out_ms == 0,
	   "b: 5, 4 left, not sold out");
	is_int(stats_stock_day(l, p, 2, z), LD_OK, "the last day's stock");
	ok(z[0].stock == 2 && z[0].left == 2 && z[0].sold_out_ms == 0 && z[1].stock == 0 &&
		   z[1].left == 0 && z[1].sold_out_ms == 0,
	   "a: untouched; b: no stock that day is not sold out");
}

static int64_t kept_days(void)
{
	int64_t n = -1;

	if (db_int(ledger_db(l),
		   "SELECT count(*) FROM stats_days WHERE promo = 'st' AND kind = 'day'", "count",
		   &n, NULL, "") != LD_OK)
		bail("%s", ledger_errmsg(l));
	return n;
}

/* The finished days are kept: a row written under one afterwards (which
 * the service never does) no longer shows; the days not finished are
 * counted every time; a budget of 0 counts no finished day. */
static void test_kept(void)
{
	struct support_request rq = { "T-1", "sorry", "ann" };
	struct support_result sr;
	enum support_outcome so;
	struct stats_day *d;
	int pending;

	is_int((int)kept_days(), 3, "the three finished days were kept by the first read");
	if (db_script(ledger_db(l),
		      "INSERT INTO draws (promo, uid, request_id, created_at, day, rand)"
		      " VALUES ('st', 'u9', 'late-1', 0, '2024-07-09', 0)",
		      "late") != LD_OK)
		bail("%s", ledger_errmsg(l));
	stats_read(l, p, noon(10), -1, &d, &pending);
	ok(d[1].draws == 1 && pending == 0,
	   "a kept day is read as kept: the late row is not counted");
	stats_days_free(d, p->ndays);

	/* a support grant and a revoke on the last day, refused claims */
	support_grant(l, p, "u2", 3, &rq, noon(2), &so, &sr);
	rq.ticket = "T-2";
	support_revoke(l, p, "u2", 1, &rq, noon(2) + 1, &so, &sr);
	if (db_script(
		    ledger_db(l),
		    "INSERT INTO claim_refusals (promo, invitee, inviter, code, reason,"
		    " created_at, day) VALUES ('st', 'u1', 'u1', 'c', 'self_invite', 0, '2024-07-10'),"
		    " ('st', 'u4', 'u1', 'c', 'not_new_user', 0, '2024-07-10'),"
		    " ('st', 'u5', 'u1', 'c', 'not_new_user', 0, '2024-07-10')",
		    "refusals") != LD_OK ||
	    db_script(ledger_db(l), "DELETE FROM stats_days", "forget") != LD_OK)
		bail("%s", ledger_errmsg(l));
	/* at noon of the last day: days 0 and 1 finished, 2 counted live */
	is_int(stats_read(l, p, noon(2), 0, &d, &pending), LD_OK, "a read with a budget of 0");
	ok(d[0].finished && d[1].finished && !d[2].finished,
	   "at noon of the last day, two are finished");
	ok(!d[0].pending && d[1].pending && !d[2].pending && pending == 1,
	   "of the two finished days not kept, the first is counted (a read always counts"
	   " one), the other pending");
	ok(d[1].draws == 0 && d[1].visits == 0 && d[0].visits == 2, "a pending day reads 0");
	ok(d[2].grants[STATS_SUPPORT] == 1 && d[2].dice[STATS_SUPPORT] == 3 &&
		   d[2].grants[STATS_REVOKE] == 1 && d[2].dice[STATS_REVOKE] == -1,
	   "today's support grant and revoke, counted live, with their dice");
	ok(d[2].refused[RULE_SELF_INVITE] == 1 && d[2].refused[RULE_NOT_NEW_USER] == 2,
	   "refused claims by reason");
	ok(d[2].open[0] == 2 && d[0].open[0] == 2 && d[2].open[1] == 0,
	   "the stock open: all of a midnight prize's, none where there is none");
	is_int((int)kept_days(), 1, "the day counted was kept");
	stats_days_free(d, p->ndays);

	stats_read(l, p, noon(2), -1, &d, &pending);
	ok(!d[0].pending && pending == 0 && d[0].visits == 2 && d[0].dice[STATS_VISIT] == 20,
	   "without a budget every day is counted: 2 visits of 10 dice on day 0");
	ok(d[1].draws == 2, "day 1 counted again, the late row with it");
	ok(d[1].grants[STATS_INVITEE] == 1 && d[1].grants[STATS_INVITER] == 1 && d[1].invites == 1,
	   "the invite: an invitee and an inviter grant");
	is_int((int)kept_days(), 2, "the two finished days are kept, not the last one");
	stats_days_free(d, p->ndays);
}

/* Each count searches its own index by a range of days, no scan: the
 * grants through their rows, the others from the index alone (grants
 * and refusals with a sort of the day's reasons). */
static void test_plans(const char *path)
{
	static const char *const want[] = {
		[K_GRANT] = "SEARCH grants USING INDEX grants_by_day (day>? AND day<?)",
		[K_DRAW] = "SEARCH draws USING COVERING INDEX draws_by_day (day>? AND day<?)",
		[K_WIN] =
			"SEARCH draws USING COVERING INDEX draws_wins_by_day (promo=? AND day>? AND day<?)",
		[K_REFUSAL] =
			"SEARCH claim_refusals USING COVERING INDEX claim_refusals_by_day (day>? AND day<?)",
	};
	sqlite3 *h = testdb_raw(path);

	for (int k = K_GRANT; k <= K_REFUSAL; k++) {
		char sql[700], plan[700] = "";
		sqlite3_stmt *st;

		snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", SQL_COUNT[k]);
		if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
			bail("%s", sqlite3_errmsg(h));
		while (sqlite3_step(st) == SQLITE_ROW) {
			size_t n = strlen(plan);
			snprintf(plan + n, sizeof plan - n, "%s%s", n ? "; " : "",
				 (const char *)sqlite3_column_text(st, 3));
		}
		sqlite3_finalize(st);
		ok(strstr(plan, want[k]) && !strstr(plan, "SCAN") &&
			   (k == K_GRANT || k == K_REFUSAL || !strstr(plan, "TEMP B-TREE")),
		   "the %s count: %s", kinds[k], plan);
	}
	sqlite3_close(h);
}

static void test_simulate(void)
{
	struct sim_options o = { .participants = 300, .draws_per_user = 2, .invited = 0.5 };
	struct sim_result r, s1, s2;
	int same = 1;

	is_int(stats_simulate(p, &o, &r), LD_OK, "the expected model");
	ok(r.ndays == 3 && fabs(r.days[0].draws - 200) < 1e-9 && fabs(r.total_draws - 600) < 1e-9,
	   "100 participants a day, 2 draws each");
	ok(fabs(r.total_wins[0] - 6) < 1e-9 && fabs(r.total_wins[1] - 10) < 1e-9 &&
		   r.total_stock[0] == 6 && r.total_stock[1] == 10,
	   "demand past the stock: every unit of it is won, no more");
	ok(r.days[0].prize[0].out_minute >= 0 && r.days[2].prize[1].out_minute == -1,
	   "a runs out within the day; b, with no stock on the last day, never 'runs out'");
	stats_sim_release(&r);

	o.seed = 42;
	stats_simulate(p, &o, &s1);
	stats_simulate(p, &o, &s2);
	for (int d = 0; d < 3; d++)
		for (int i = 0; i < 2; i++)
			same &= s1.days[d].prize[i].wins == s2.days[d].prize[i].wins;
	ok(same, "a seed repeats its sampled run");
	ok(s1.total_wins[0] <= 6 && s1.total_wins[1] <= 10, "sampled wins within the stock");
	stats_sim_release(&s1);
	stats_sim_release(&s2);

	o.invited = 1.5;
	is_int(stats_simulate(p, &o, &r), LD_ERR_INVALID, "a share invited past 1 is refused");
}

int main(void)
{
	struct testdb t;

	testdb_open_promo(&t, "stats", def);
	l = t.ledger;
	p = t.promo;
	live();
	test_read();
	test_stock_day();
	test_kept();
	test_plans(t.path);
	test_simulate();
	testdb_remove(&t);
	return done_testing();
}
