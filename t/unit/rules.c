/*
 * t/unit/rules.c - lib/rules.c draws on a real SQLite file: the day's
 * stock resets at local midnight of the promotion's zone, paced ("even")
 * stock opens exactly as promo_released says, a request_id replays after
 * the last day, refusals record nothing, the ledger's invariants hold,
 * and with libsodium's rng the win rate matches the probability.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "history.h"
#include "rules.h"
#include "../tap.h"
#include "testdb.h"

#define H (3600 * 1000LL)

/* Three days in Asia/Seoul (UTC+9, no DST): "mid" has 2 a day at
 * midnight with slice [0, 0.5e9), "paced" 100 a day "even" with slice
 * [0.5e9, 0.7e9); the rest [0.7e9, 1e9) is a miss. */
static const char promo_json[] =
	"{\"id\": \"u-draw\", \"name\": \"unit\", \"time_zone\": \"Asia/Seoul\","
	" \"first_day\": \"2024-07-08\", \"last_day\": \"2024-07-10\","
	" \"grants\": {\"visit\": 1000, \"inviter\": 1, \"invitee\": 1},"
	" \"invites\": {\"max_credited_per_inviter\": 30, \"invitee_new_within_hours\": 24},"
	" \"prizes\": ["
	"  {\"id\": \"mid\", \"name\": \"midnight prize\", \"daily_stock\": 2, \"probability\": 0.5},"
	"  {\"id\": \"paced\", \"name\": \"paced prize\", \"daily_stock\": 100, \"probability\": 0.2,"
	"   \"release\": \"even\", \"stock_by_day\": {\"2024-07-10\": 0}}]}";

/* 10,000+ draws at p = 0.3 with stock that never runs out. */
static const char stat_json[] =
	"{\"id\": \"u-stat\", \"name\": \"stat\", \"time_zone\": \"Europe/Berlin\","
	" \"first_day\": \"2024-07-08\", \"last_day\": \"2024-07-08\","
	" \"grants\": {\"visit\": 1000, \"inviter\": 1, \"invitee\": 1},"
	" \"invites\": {\"max_credited_per_inviter\": 30, \"invitee_new_within_hours\": 24},"
	" \"prizes\": [{\"id\": \"w\", \"name\": \"win\", \"daily_stock\": 1000000000,"
	" \"probability\": 0.3}]}";

static struct ledger *l;
static sqlite3 *db; /* a connection of the test's own to the ledger's file,
		     * for looking at SQLite itself */

static uint32_t fixed_rng(void *arg)
{
	return *(const uint32_t *)arg;
}

/* The single integer a query answers (-1 when no row). */
static long long q(const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		bail("cannot prepare '%s': %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static struct promo *parse(const char *json)
{
	struct promo *p;
	char err[256];

	if (promo_parse(json, strlen(json), &p, err, sizeof err) != LD_OK)
		bail("promotion does not parse: %s", err);
	return p;
}

/* UTC ms of a wall-clock time at a fixed UTC offset (hours). */
static int64_t at(int y, int mo, int d, int h, int mi, int s, int ms, int off_h)
{
	return (ld_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - off_h * 3600) *
		1000LL +
		ms;
}

static void give(const struct promo *p, const char *uid, int64_t now)
{
	struct visit_result vr;
	enum rule_outcome o;

	if (rules_visit(l, p, uid, now, &o, &vr) != LD_OK || o != RULE_OK)
		bail("visit of '%s' failed: %s", uid, ledger_errmsg(l));
}

/* One draw with r fixed; returns the prize index (-1 miss), -2 on a
 * failure or a refusal (outcome in *out when out is not NULL). */
static int draw(const struct promo *p, const char *uid, const char *rid, int64_t now, uint32_t r,
		struct draw_result *res, enum rule_outcome *out)
{
	struct draw_result tmp;
	enum rule_outcome o;

	if (!res)
		res = &tmp;
	if (rules_draw(l, p, uid, rid, now, fixed_rng, &r, &o, res) != LD_OK) {
		diag("rules_draw: %s", ledger_errmsg(l));
		return -2;
	}
	if (out)
		*out = o;
	return o == RULE_OK ? res->prize : -2;
}

/* n draws by uid at now with r fixed, request ids "tag-<i>"; wins of
 * prize index want. */
static int draws(const struct promo *p, const char *uid, const char *tag, int n, int64_t now,
		 uint32_t r, int want)
{
	char rid[64];
	int wins = 0;

	for (int i = 0; i < n; i++) {
		snprintf(rid, sizeof rid, "%s-%04d", tag, i);
		wins += draw(p, uid, rid, now, r, NULL, NULL) == want;
	}
	return wins;
}

static void test_midnight(const struct promo *p)
{
	int64_t d0 = at(2024, 7, 8, 0, 0, 0, 0, 9), d1 = at(2024, 7, 9, 0, 0, 0, 0, 9);
	struct draw_result r;

	is_int(p->day_start_ms[0], d0, "day 0 starts at 2024-07-08 00:00 KST");
	is_int(p->day_start_ms[1], d1, "day 1 starts at 2024-07-09 00:00 KST (15:00 UTC before)");
	give(p, "alice", d0);
	/* 23:59:59.999 local of day 0: three rolls on "mid" (stock 2). */
	is_int(draws(p, "alice", "late", 3, d1 - 1, 0, 0), 2,
	       "at 23:59:59.999 three rolls on a stock of 2 win twice");
	is_int(q("SELECT taken FROM stock WHERE day='2024-07-08' AND prize='mid'"), 2,
	       "day 2024-07-08 has taken 2");
	is_int(q("SELECT count(*) FROM draws WHERE request_id='late-0002' AND picked='mid'"
		 " AND prize IS NULL AND stock_left=0 AND day='2024-07-08'"),
	       1, "the third is recorded as picked mid, a miss, 0 left, on day 07-08");
	/* 00:00:00.000 of day 1: a fresh stock. */
	is_int(draw(p, "alice", "early-0", d1, 499999999, &r, NULL), 0,
	       "at 00:00:00.000 the next day the same roll wins again");
	is_int(q("SELECT count(*) FROM draws WHERE id IN (SELECT max(id) FROM draws)"
		 " AND day='2024-07-09' AND prize='mid' AND stock_left=1 AND rand=499999999"),
	       1, "recorded on 2024-07-09 with rand 499999999 and 1 left");
	is_int(draw(p, "alice", "early-1", d1, 500000000, &r, NULL), -1,
	       "500000000 picks paced, which has nothing open at 00:00: a miss");
}

static void test_paced(const struct promo *p)
{
	int64_t d1 = at(2024, 7, 9, 0, 0, 0, 0, 9);
	const struct promo_prize *z = &p->prizes[1];
	uint32_t rz = 600000000; /* in paced's slice */
	int64_t t6 = d1 + 6 * H, t12 = d1 + 12 * H, tend = d1 + 24 * H - 1;
	int total;

	give(p, "bob", d1);
	is_int(promo_released(p, z, 1, d1), 0, "paced: 0 open at 00:00");
	is_int(draw(p, "bob", "p0-0000", d1, rz, NULL, NULL), -1,
	       "a paced prize rolled at 00:00 is a miss");
	is_int(promo_released(p, z, 1, t6), 25, "paced: 25 of 100 open at 06:00");
	is_int(draws(p, "bob", "p6", 40, t6, rz, 1), 25, "40 rolls at 06:00 win exactly 25");
	is_int(promo_released(p, z, 1, t12), 50, "paced: 50 open at noon");
	is_int(draws(p, "bob", "p12", 40, t12, rz, 1), 25, "40 rolls at noon win 25 more");
	is_int(promo_released(p, z, 1, tend), 99, "paced: 99 open at 23:59:59.999");
	total = draws(p, "bob", "pend", 60, tend, rz, 1);
	is_int(total, 49, "60 rolls at 23:59:59.999 win the 49 left open");
	is_int(q("SELECT taken FROM stock WHERE day='2024-07-09' AND prize='paced'"), 99,
	       "stock taken for paced on 07-09 is 99");
	is_int(q("SELECT stock_left FROM draws WHERE request_id='pend-0059'"), 1,
	       "the last miss records 1 left of the day's 100 (not yet open)");
	/* stock_by_day gives the last day 0 */
	is_int(promo_released(p, z, 2, at(2024, 7, 10, 23, 0, 0, 0, 9)), 0,
	       "stock_by_day 0 on 07-10: nothing opens");
	is_int(draw(p, "bob", "last-day", at(2024, 7, 10, 23, 0, 0, 0, 9), rz, NULL, NULL), -1,
	       "a paced roll on a day with stock 0 is a miss");
}

static void test_replay_and_refusals(const struct promo *p)
{
	int64_t last = at(2024, 7, 10, 12, 0, 0, 0, 9), after = at(2024, 7, 11, 0, 0, 0, 0, 9);
	long long before_draws, before_spent;
	struct draw_result a, b;
	enum rule_outcome o;

	give(p, "carol", last);
	is_int(draw(p, "carol", "replay-me", last, 123, &a, NULL), 0,
	       "carol wins mid on the last day");
	before_spent = q("SELECT spent FROM balances WHERE uid='carol'");
	is_int(draw(p, "carol", "replay-me", after, 900000000, &b, &o), 0,
	       "the same request_id after the last day answers the recorded win");
	ok(b.replay && b.id == a.id && b.rand == 123 && b.at_ms == last,
	   "replay: same id, rand and time, flagged as a replay");
	is_int(b.bal.spent, a.bal.spent, "replay shows the same balance");
	is_int(q("SELECT spent FROM balances WHERE uid='carol'"), before_spent,
	       "replay spent nothing");
	is_string(b.prize_id, "mid", "the replay names the prize won");
	{
		/* the file reloaded without "mid": the replay still says it won */
		char *json = strdup(promo_json), *at_mid = strstr(json, "\"mid\"");
		memcpy(at_mid, "\"old\"", 5);
		struct promo *p2 = parse(json);
		is_int(draw(p2, "carol", "replay-me", after, 900000000, &b, &o), -1,
		       "a prize since removed from the file has no index");
		ok(o == RULE_OK && b.replay && strcmp(b.prize_id, "mid") == 0,
		   "but the replay still reports the win of 'mid'");
		promo_free(p2);
		free(json);
	}
	before_draws = q("SELECT count(*) FROM draws");
	draw(p, "carol", "too-late1", after, 123, NULL, &o);
	is_int(o, RULE_NOT_ACTIVE, "a new request_id after the last day: not active");
	draw(p, "carol", "too-early", at(2024, 7, 7, 23, 59, 59, 999, 9), 123, NULL, &o);
	is_int(o, RULE_NOT_ACTIVE, "a draw before the first day: not active");
	draw(p, "nobody", "no-ticket", last, 123, NULL, &o);
	is_int(o, RULE_NO_TICKETS, "a user who never visited: no tickets");
	is_int(q("SELECT count(*) FROM draws"), before_draws, "refusals record no draw");
	is_int(q("SELECT count(*) FROM balances WHERE uid='nobody'"), 0,
	       "and no balance row for the ticketless user");
	is_int(q("SELECT count(*) FROM balances WHERE spent > granted OR spent < 0"), 0,
	       "no balance below zero");
}

static void test_invariants(void)
{
	is_int(q("SELECT count(*) FROM (SELECT day, prize, count(*) n FROM draws"
		 " WHERE prize IS NOT NULL GROUP BY day, prize) d"
		 " LEFT JOIN stock s ON s.day = d.day AND s.prize = d.prize"
		 " WHERE s.taken IS NOT d.n"),
	       0, "wins per day and prize equal the stock taken");
	is_int(q("SELECT count(*) FROM stock s WHERE taken <> (SELECT count(*) FROM draws d"
		 " WHERE d.promo = s.promo AND d.day = s.day AND d.prize = s.prize)"),
	       0, "every stock row counts exactly the wins of its day");
	is_int(q("SELECT count(*) FROM stock WHERE prize='mid' AND taken > 2"), 0,
	       "no day took more than mid's stock of 2");
	is_int(q("SELECT count(*) FROM draws WHERE prize IS NOT NULL"),
	       q("SELECT count(*) FROM outbox WHERE kind='reward.issue'"),
	       "one reward.issue per win");
	is_int(q("SELECT count(*) FROM draws WHERE prize IS NOT NULL"),
	       q("SELECT count(*) FROM outbox WHERE kind='notify.win'"), "one notify.win per win");
	is_int(q("SELECT count(*) FROM balances b WHERE spent <>"
		 " (SELECT count(*) FROM draws d WHERE d.promo=b.promo AND d.uid=b.uid)"),
	       0, "every user's spent equals their draws");
	is_int(q("SELECT count(*) FROM draws WHERE rand < 0 OR rand >= 1000000000"), 0,
	       "every recorded rand is in [0, 1e9)");
}

/* ≥ 10,000 draws with libsodium's rng at p = 0.3. */
static void test_statistics(void)
{
	struct promo *p = parse(stat_json);
	int64_t noon = at(2024, 7, 8, 12, 0, 0, 0, 2);
	const int users = 12, per = 1000, n = users * per;
	const double prob = 0.3;
	struct draw_result r;
	enum rule_outcome o;
	char uid[16], rid[32];
	int wins = 0, bad = 0;

	for (int u = 0; u < users; u++) {
		snprintf(uid, sizeof uid, "s%02d", u);
		give(p, uid, noon);
		for (int i = 0; i < per; i++) {
			snprintf(rid, sizeof rid, "stat-%05d", i);
			if (rules_draw(l, p, uid, rid, noon, rules_rng_sodium, NULL, &o, &r) !=
				    LD_OK ||
			    o != RULE_OK)
				bad++;
			wins += r.prize == 0;
		}
	}
	double sd = sqrt(prob * (1 - prob) / n), rate = (double)wins / n;
	is_int(bad, 0, "%d draws with libsodium's rng all succeed", n);
	diag("win rate %.4f over %d draws (p %.2f, sd %.4f, %.2f sd away)", rate, n, prob, sd,
	     fabs(rate - prob) / sd);
	ok(fabs(rate - prob) <= 4 * sd, "win rate %.4f is within 4 sd (%.4f) of %.2f", rate, 4 * sd,
	   prob);
	ok(draw(p, "s00", "stat-00000", noon, 0, &r, NULL) >= -1 && r.replay,
	   "a user out of tickets still gets an old request_id replayed");
	draw(p, "s00", "stat-extra", noon, 0, NULL, &o);
	is_int(o, RULE_NO_TICKETS, "after 1000 draws on 1000 tickets: no tickets");
	is_int(q("SELECT count(*) FROM draws WHERE promo='u-stat' AND uid='s00'"), per,
	       "and the refused draw was not recorded");
	promo_free(p);
}

/* Migrations 005 to 007 on a database made by migrations 1-4 with
 * invites in it: the inviter's counter is the count of their invites that
 * granted; one index, also the one of a user's grants, still refuses a
 * second visit or invitee grant and nothing else. */
static void test_migration_005(const char *dir)
{
	struct ledger_options lo = { 0 };
	struct ledger *old;
	char path[320], err[256];

	snprintf(path, sizeof path, "%s/old.db", dir);
	testdb_old(
		path, 4,
		"INSERT INTO balances (promo, uid, granted, first_seen) VALUES"
		" ('p','inviter',3,0), ('p','capped',1,0), ('p','other',1,0), ('q','inviter',1,0);"
		"INSERT INTO invites (promo, invitee, inviter, code, inviter_granted, created_at, day)"
		" VALUES ('p','a','inviter','c',1,0,'d'), ('p','b','inviter','c',1,0,'d'),"
		" ('p','c','inviter','c',0,0,'d'), ('p','d','capped','k',0,0,'d'),"
		" ('q','e','inviter','z',1,0,'d');");
	if (ledger_open(path, &lo, &old, err, sizeof err) != LD_OK)
		bail("%s", err);
	is_int(ledger_migrate(old, NULL, NULL), LD_OK,
	       "migration 005 applies to a version 4 database");
	sqlite3 *db0 = db;
	db = testdb_raw(path);
	is_int(q("SELECT invites_credited FROM balances WHERE promo='p' AND uid='inviter'"), 2,
	       "an inviter's counter is their invites that granted (not the one past the cap)");
	is_int(q("SELECT invites_credited FROM balances WHERE promo='p' AND uid='capped'"), 0,
	       "an invite that did not grant is not counted");
	is_int(q("SELECT invites_credited FROM balances WHERE promo='q' AND uid='inviter'"), 1,
	       "counted per promotion");
	is_int(q("SELECT invites_credited FROM balances WHERE uid='other'"), 0,
	       "a user who invited nobody has 0");
	/* 006 and 007: one index keeps a user to one visit and one invitee
	 * grant; other grants repeat freely (their own indexes aside) */
	static const char grant[] = "INSERT INTO grants (promo, uid, reason, amount, ref,"
				    " created_at, day) VALUES ('p', 'x', '%s', 1, %s, 0, 'd')";
	char sql[256];
	const char *cases[][3] = { { "visit", "NULL", "0" },    { "visit", "NULL", "19" },
				   { "invitee", "'a'", "0" },   { "invitee", "'b'", "19" },
				   { "inviter", "'c'", "0" },   { "inviter", "'d'", "0" },
				   { "support", "'T-1'", "0" }, { "support", "'T-2'", "0" },
				   { "support", "'T-2'", "19" } };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(sql, sizeof sql, grant, cases[i][0], cases[i][1]);
		int rc = sqlite3_exec(db, sql, NULL, NULL, NULL) & 0xff;
		is_int(rc, atoi(cases[i][2]), "after 007, grant %zu (%s): %s", i + 1, cases[i][0],
		       rc ? "refused as a duplicate" : "stored");
	}
	is_int(q("SELECT count(*) FROM sqlite_master WHERE name IN"
		 " ('grants_one_visit', 'grants_one_invitee', 'grants_once_per_user')"),
	       0, "the old indexes are gone");
	is_int(q("SELECT count(*) FROM grants WHERE promo = 'p' AND uid = 'x'"), 6,
	       "a user's grants: the six stored");
	is_int(q("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'grants'"),
	       4, "grants has four indexes: by user, inviter per invitee, per ticket, by day");
	char *plan = NULL;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db,
			       "EXPLAIN QUERY PLAN SELECT amount FROM grants"
			       " WHERE promo = 'p' AND uid = 'x'",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		plan = strdup((const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
	ok(plan && strstr(plan, "USING INDEX grants_by_user (promo=? AND uid=?)"),
	   "a user's grants are found through grants_by_user (%s)", plan ? plan : "no plan");
	free(plan);
	sqlite3_close(db);
	db = db0;
	ledger_free(old);
	unlink(path);
}

/* Number of OpenEphemeral steps (temporary b-trees) in sql's program. */
static int ephemerals(const char *sql)
{
	sqlite3_stmt *st;
	int n = 0;
	char explain[512];

	snprintf(explain, sizeof explain, "EXPLAIN %s", sql);
	if (sqlite3_prepare_v2(db, explain, -1, &st, NULL) != SQLITE_OK)
		bail("cannot prepare '%s': %s", explain, sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW)
		n += strcmp((const char *)sqlite3_column_text(st, 1), "OpenEphemeral") == 0;
	sqlite3_finalize(st);
	return n;
}

/* Migrations 008 and 009 on a database at version 7 with a grant and an
 * event in it: the rows come through unchanged, the rules are the same,
 * the inserts of a claim no longer make temporary b-trees for them, and
 * the outbox has no index by user. */
static void test_migration_008(const char *dir)
{
	static const char grant_row[] =
		"SELECT id || promo || uid || reason || amount ||"
		" ifnull(ref, '-') || ifnull(note, '-') || created_at || day FROM grants";
	static const char event_row[] =
		"SELECT id || key || kind || promo || uid || payload ||"
		" state || attempts || next_at || lease_until || ifnull(last_status, '-') ||"
		" ifnull(last_error, '-') || created_at || ifnull(done_at, '-') FROM outbox";
	static const char add_grant[] =
		"INSERT INTO grants (promo, uid, reason, amount, ref,"
		" created_at, day) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING";
	static const char add_event[] =
		"INSERT INTO outbox (key, kind, promo, uid, payload,"
		" next_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (key) DO NOTHING";
	struct ledger_options lo = { 0 };
	struct ledger *old;
	char path[320], err[256], before[2][256];
	const char *sel[2] = { grant_row, event_row };
	sqlite3 *raw, *db0 = db;
	int i;

	snprintf(path, sizeof path, "%s/old7.db", dir);
	testdb_old(
		path, 7,
		"INSERT INTO grants (id, promo, uid, reason, amount, ref, note, created_at, day)"
		" VALUES (41, 'p', 'u', 'support', 5, 'T-9', 'a note', 17, '2026-12-01');"
		"INSERT INTO outbox (id, key, kind, promo, uid, payload, state, attempts, next_at,"
		" lease_until, last_status, last_error, created_at, done_at) VALUES (7, 'p/draw/3/reward',"
		" 'reward.issue', 'p', 'u', '{}', 'dead', 9, 100, 200, 503, 'gave up', 50, 300);");
	raw = testdb_raw(path);
	for (i = 0; i < 2; i++)
		testdb_text(raw, sel[i], before[i], sizeof before[i]);
	sqlite3_close(raw);
	if (ledger_open(path, &lo, &old, err, sizeof err) != LD_OK)
		bail("%s", err);
	is_int(ledger_migrate(old, NULL, NULL), LD_OK,
	       "migration 008 applies to a version 7 database");
	db = testdb_raw(path);
	for (i = 0; i < 2; i++) {
		char after[256];
		testdb_text(db, sel[i], after, sizeof after);
		ok(before[i][0] && strcmp(before[i], after) == 0, "%s row kept as it was: %s",
		   i ? "the outbox" : "the grants", after);
	}
	is_int(ephemerals(add_grant), 0, "adding a grant makes no temporary b-tree");
	is_int(ephemerals(add_event), 0, "adding an event makes no temporary b-tree");
	is_int(ephemerals("UPDATE outbox SET state = 'delivered' WHERE id = 7"), 0,
	       "neither does the dispatcher's update");
	is_int(sqlite3_exec(db,
			    "INSERT INTO grants (promo, uid, reason, amount, created_at, day)"
			    " VALUES ('p', 'u', 'bonus', 1, 0, 'd')",
			    NULL, NULL, NULL) &
		       0xff,
	       SQLITE_CONSTRAINT, "a grant of an unknown reason is refused");
	is_int(sqlite3_exec(db,
			    "INSERT INTO grants (promo, uid, reason, amount, ref, created_at, day)"
			    " VALUES ('p', 'u', 'inviter', 1, 'u', 0, 'd')",
			    NULL, NULL, NULL) &
		       0xff,
	       SQLITE_CONSTRAINT, "a self-invite grant is refused");
	is_int(sqlite3_exec(db,
			    "INSERT INTO outbox (key, kind, promo, uid, payload, next_at,"
			    " created_at) VALUES ('k', 'notify.other', 'p', 'u', '{}', 0, 0)",
			    NULL, NULL, NULL) &
		       0xff,
	       SQLITE_CONSTRAINT, "an event of an unknown kind is refused");
	is_int(sqlite3_exec(db, "UPDATE outbox SET state = 'lost' WHERE id = 7", NULL, NULL, NULL) &
		       0xff,
	       SQLITE_CONSTRAINT, "an unknown state is refused");
	is_int(sqlite3_exec(db,
			    "INSERT INTO outbox (key, kind, promo, uid, payload, next_at,"
			    " created_at) VALUES ('k2', 'notify.invite', 'p', 'u', '{}', 0, 0)",
			    NULL, NULL, NULL),
	       SQLITE_OK, "a known kind is stored, pending");
	is_int(q("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN"
		 " ('grants_by_user', 'grants_one_inviter_per_invitee', 'grants_one_per_ticket',"
		 " 'outbox_due', 'outbox_dead')"),
	       5, "the indexes are made again");
	is_int(q("SELECT count(*) FROM sqlite_master WHERE name = 'outbox_by_user'"), 0,
	       "but for outbox_by_user, which 009 drops");
	is_int(q("SELECT count(*) FROM sqlite_master WHERE name = 'invites_by_inviter_granted'"), 0,
	       "010 drops the index of invites by inviter");
	is_int(q("SELECT count(*) FROM sqlite_master WHERE name = 'invites_past_cap_by_inviter'"
		 " AND sql LIKE '%WHERE inviter_granted = 0'"),
	       1, "and indexes only the invites past the cap");
	is_int(q("SELECT count(*) FROM outbox WHERE state = 'pending' AND next_at <= 0"), 1,
	       "the due events are found");
	is_int(q("SELECT count(*) FROM sqlite_master WHERE name LIKE '%_008'"), 0,
	       "no table is left under its temporary name");
	sqlite3_close(db);
	db = db0;
	ledger_free(old);
	unlink(path);
}

/* Invite codes from a generator the test chooses: the same seed gives
 * the same code, a code taken already makes the rule draw another, and
 * a generator that only ever repeats itself makes it give up. */
static uint32_t zero(void *state, uint32_t n)
{
	(void)state;
	(void)n;
	return 0;
}

static void test_invite_codes(const struct promo *p)
{
	static const char abc[] = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
	char a[INVITE_CODE_LEN + 1], b[INVITE_CODE_LEN + 1], want[2][INVITE_CODE_LEN + 1];
	uint64_t sa = 99, sb = 99, sw = 99;
	struct ld_rng ra = ld_rng_seeded(&sa), rb = ld_rng_seeded(&sb), rw = ld_rng_seeded(&sw);
	struct ld_rng z = { zero, NULL };
	int64_t now = at(2024, 7, 8, 12, 0, 0, 0, 9);

	for (int k = 0; k < 2; k++) { /* the seed's first two codes */
		for (int i = 0; i < INVITE_CODE_LEN; i++)
			want[k][i] = abc[ld_uniform(&rw, sizeof abc - 1)];
		want[k][INVITE_CODE_LEN] = '\0';
	}
	is_int(rules_invite_code(l, p, "code-a", now, &ra, a), LD_OK, "a code from seed 99");
	is_string(a, want[0], "is the seed's first code");
	is_int(rules_invite_code(l, p, "code-b", now, &rb, b), LD_OK,
	       "another user, the same seed");
	is_string(b, want[1], "gets the seed's second code: the first was taken");
	is_int(rules_invite_code(l, p, "code-z1", now, &z, a), LD_OK, "a generator of zeros");
	is_string(a, "2222222222", "gives the alphabet's first letter ten times");
	is_int(rules_invite_code(l, p, "code-z2", now, &z, b), LD_ERR_DB,
	       "for a second user every draw collides: the rule gives up");
	is_string(ledger_errmsg(l), "cannot make a unique invite code", "and says so");
	is_int(q("SELECT count(*) FROM invite_codes WHERE uid = 'code-z2'"), 0, "having made none");
}

/* The claim's cap check against the counter: the 31st credited invite of
 * an inviter with a cap of 30 is credited without an inviter grant. */
static void test_inviter_cap(const struct promo *p)
{
	char code[INVITE_CODE_LEN + 1], uid[32];
	struct claim_result cr;
	enum rule_outcome o;
	int64_t now = at(2024, 7, 8, 12, 0, 0, 0, 9);
	int granted = 0;

	if (rules_invite_code(l, p, "capper", now, NULL, code) != LD_OK)
		bail("%s", ledger_errmsg(l));
	for (int i = 0; i < 32; i++) {
		snprintf(uid, sizeof uid, "capped-%02d", i);
		if (rules_claim(l, p, uid, code, NULL, now + i, &o, &cr) != LD_OK || o != RULE_OK)
			bail("claim %d: %s", i, ledger_errmsg(l));
		granted += cr.inviter_granted;
	}
	is_int(granted, 30, "an inviter with a cap of 30 is granted for 30 of 32 invitees");
	is_int(q("SELECT invites_credited FROM balances WHERE uid='capper'"), 30,
	       "and the counter stops at the cap");
	is_int(q("SELECT count(*) FROM invites WHERE inviter='capper'"), 32,
	       "while all 32 invitees are credited");
	is_int(q("SELECT count(*) FROM balances b WHERE invites_credited <> (SELECT count(*)"
		 " FROM invites i WHERE i.promo=b.promo AND i.inviter=b.uid AND i.inviter_granted=1)"),
	       0, "every counter equals the inviter's granting invites");

	/* The history finds the 30 through the inviter's grants and the 2
	 * past the cap through their own index (migration 010). */
	struct json_object *h, *inv, *ev, *v;
	if (history_json(l, p, "capper", now + 100, HISTORY_SUPPORT, &h) != LD_OK)
		bail("history: %s", ledger_errmsg(l));
	json_object_object_get_ex(h, "invites", &inv);
	json_object_object_get_ex(h, "events", &ev);
	is_int(json_object_array_length(inv), 32, "the inviter's history lists all 32 invites");
	int listed_granted = 0, order_ok = 1;
	for (size_t i = 0; i < json_object_array_length(inv); i++) {
		struct json_object *row = json_object_array_get_idx(inv, i);
		char want[32];
		snprintf(want, sizeof want, "capped-%02zu", 31 - i);
		json_object_object_get_ex(row, "invitee", &v);
		order_ok &= strcmp(json_object_get_string(v), want) == 0;
		json_object_object_get_ex(row, "inviter_granted", &v);
		listed_granted += json_object_get_boolean(v) && i >= 2;
	}
	ok(order_ok, "newest first");
	is_int(listed_granted, 30,
	       "the 30 oldest granted the inviter a ticket, the 2 newest did not");
	json_object_object_get_ex(h, "invites_granted", &v);
	is_int(json_object_get_int(v), 30, "invites_granted counts them");
	size_t notes = 0;
	for (size_t i = 0; i < json_object_array_length(ev); i++) {
		json_object_object_get_ex(json_object_array_get_idx(ev, i), "kind", &v);
		notes += strcmp(json_object_get_string(v), "notify.invite") == 0;
	}
	is_int(notes, 30, "and its events are the 30 invite notifications");
	json_object_put(h);
}

int main(void)
{
	struct testdb tdb;
	struct promo *p;

	if (sodium_init() < 0)
		bail("cannot initialise libsodium");
	testdb_open(&tdb, "rules");
	l = tdb.ledger;
	db = testdb_raw(tdb.path);
	/* ledger_open turned SQLite's allocation statistics off (a global
	 * mutex on every malloc): with them on, a prepared statement shows. */
	is_int(sqlite3_memory_used(), 0, "SQLite keeps no allocation statistics");
	p = parse(promo_json);
	is_int(p->prizes[0].hi, 500000000, "mid's slice ends at 0.5e9");
	is_int(p->prizes[1].lo, 500000000, "paced's slice starts where mid's ends");
	is_int(promo_pick(p, 499999999), 0, "499999999 picks the first prize");
	is_int(promo_pick(p, 699999999), 1, "699999999 picks the second");
	is_int(promo_pick(p, 700000000), -1, "700000000 is a miss");

	test_midnight(p);
	test_paced(p);
	test_replay_and_refusals(p);
	test_invariants();
	test_inviter_cap(p);
	test_invite_codes(p);
	test_migration_005(tdb.dir);
	test_migration_008(tdb.dir);
	test_statistics();

	promo_free(p);
	sqlite3_close(db);
	testdb_remove(&tdb);
	return done_testing();
}
