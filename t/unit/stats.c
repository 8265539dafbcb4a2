/*
 * t/unit/stats.c - lib/stats.c: a promotion's numbers per local day read
 * from a real SQLite file after visits, an invite and draws on three
 * days (rows of other days and of prizes no longer in the file are left
 * out), one day's stock as /metrics reads it (with when a prize sold
 * out), and the dry run's expected and seeded models.
 */
#include <math.h>
#include <string.h>

#include <sodium.h>

#include "db.h"
#include "rules.h"
#include "stats.h"
#include "../tap.h"
#include "testdb.h"

static const char def[] =
	"{\"id\":\"st\",\"name\":\"st\",\"time_zone\":\"Asia/Seoul\","
	"\"first_day\":\"2024-07-08\",\"last_day\":\"2024-07-10\","
	"\"grants\":{\"visit\":10,\"inviter\":1,\"invitee\":1},"
	"\"invites\":{\"max_credited_per_inviter\":30,\"invitee_new_within_hours\":24},"
	"\"prizes\":["
	" {\"id\":\"a\",\"name\":\"A\",\"daily_stock\":2,\"probability\":0.5},"
	" {\"id\":\"b\",\"name\":\"B\",\"daily_stock\":5,\"probability\":0.2,"
	"  \"stock_by_day\":{\"2024-07-10\":0}}]}";

#define A 0u          /* picks prize a */
#define B 600000000u  /* picks prize b */

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
	if (db_script(ledger_db(l),
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

	if (stats_read(l, p, &d) != LD_OK)
		bail("stats_read: %s", ledger_errmsg(l));
	is_string(d[0].day, "2024-07-08", "day 0 by its local name");
	ok(d[0].visits == 2 && d[1].visits == 1 && d[2].visits == 0,
	   "visits per day: 2, 1, 0 (a claim after a visit is no second visit)");
	ok(d[0].invites == 0 && d[1].invites == 1 && d[2].invites == 0, "one invite, on day 1");
	ok(d[0].draws == 5 && d[1].draws == 1 && d[2].draws == 1,
	   "draws per day: 5 (the removed prize's too), 1, 1; none of another day");
	ok(d[0].wins[0] == 2 && d[0].wins[1] == 1 && d[1].wins[0] == 1 && d[1].wins[1] == 0 &&
	   d[2].wins[0] == 0 && d[2].wins[1] == 0, "wins per day and prize: a 2, b 1; a 1; none");
	ok(d[0].stock[0] == 2 && d[0].stock[1] == 5 && d[2].stock[1] == 0,
	   "the day's stock, as the file says (b: none on the last day)");
	ok(d[0].left[0] == 0 && d[0].left[1] == 4 && d[1].left[0] == 1 && d[1].left[1] == 5 &&
	   d[2].left[0] == 2 && d[2].left[1] == 0, "left: stock minus taken");
	stats_days_free(d, p->ndays);
}

static void test_stock_day(void)
{
	struct stats_stock z[2];

	is_int(stats_stock_day(l, p, 0, z), LD_OK, "the first day's stock");
	ok(z[0].stock == 2 && z[0].left == 0 && z[0].sold_out_ms == noon(0) + 2,
	   "a: 2, none left, sold out by the second draw's win");
	ok(z[1].stock == 5 && z[1].left == 4 && z[1].sold_out_ms == 0, "b: 5, 4 left, not sold out");
	is_int(stats_stock_day(l, p, 2, z), LD_OK, "the last day's stock");
	ok(z[0].stock == 2 && z[0].left == 2 && z[0].sold_out_ms == 0 &&
	   z[1].stock == 0 && z[1].left == 0 && z[1].sold_out_ms == 0,
	   "a: untouched; b: no stock that day is not sold out");
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
	test_simulate();
	testdb_remove(&t);
	return done_testing();
}
