/*
 * t/unit/migrate.c - every older schema migrates to the latest with its
 * data intact. For each version from 0 (an empty file) to the one before
 * the latest, a database is made by that version's migrations and filled
 * with rows of every table (NULLs, a revoke, events in every state, text
 * that is not ASCII); then ledger_migrate brings it to the latest, and
 * each table must read back as it was, the schema must be whole, the
 * inviters' counter of migration 005 must match their invites, and the
 * rules must go on from the migrated rows.
 *
 * The test makes and reads the old files with SQLite itself: it is the
 * SQLite backend's migrations it checks.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "rules.h"
#include "support.h"
#include "../tap.h"
#include "testdb.h"

/* Rows of every table, in the columns of 001, which every later version
 * still has. */
static const char seed[] =
	"INSERT INTO promotions (id, name, definition, loaded_at) VALUES"
	" ('mig', '이주', '{}', 1720400000000);"
	"INSERT INTO balances (promo, uid, granted, spent, version, first_seen) VALUES"
	" ('mig', 'ann', 7, 2, 6, 1720400000000), ('mig', 'bob', 4, 0, 1, 1720403600000),"
	" ('mig', 'cat', 1, 1, 2, 1720300000000), ('mig', 'dan', 0, 0, 2, 1720400000001);"
	"INSERT INTO grants (id, promo, uid, reason, amount, ref, note, created_at, day) VALUES"
	" (1, 'mig', 'ann', 'visit', 1, NULL, NULL, 1720400000000, '2024-07-08'),"
	" (2, 'mig', 'bob', 'visit', 1, NULL, NULL, 1720403600000, '2024-07-08'),"
	" (3, 'mig', 'bob', 'invitee', 3, 'ann', NULL, 1720403600000, '2024-07-08'),"
	" (4, 'mig', 'ann', 'inviter', 2, 'bob', NULL, 1720403600000, '2024-07-08'),"
	" (5, 'mig', 'ann', 'support', 4, 'T-1', 'sorry (by op)', 1720410000000, '2024-07-08'),"
	" (6, 'mig', 'cat', 'visit', 1, NULL, NULL, 1720300000000, '2024-07-07'),"
	" (7, 'mig', 'dan', 'support', 2, 'T-2', 'oops, \"quoted\" (by op)', 1720400000001, '2024-07-08'),"
	" (8, 'mig', 'dan', 'revoke', -2, 'T-3', 'taken back (by op)', 1720400000002, '2024-07-08');"
	"INSERT INTO invite_codes (code, promo, uid, created_at) VALUES"
	" ('annCODE234', 'mig', 'ann', 1720400000000);"
	"INSERT INTO invites (promo, invitee, inviter, code, inviter_granted, client, created_at, day)"
	" VALUES ('mig', 'bob', 'ann', 'annCODE234', 1, 'dev-1', 1720403600000, '2024-07-08');"
	"INSERT INTO claim_refusals (id, promo, invitee, inviter, code, reason, client, created_at,"
	" day) VALUES (1, 'mig', 'cat', 'ann', 'annCODE234', 'not_new_user', NULL, 1720407200000,"
	" '2024-07-08');"
	"INSERT INTO draws (id, promo, uid, request_id, created_at, day, rand, picked, prize,"
	" stock_left) VALUES"
	" (1, 'mig', 'ann', 'req-00000001', 1720410800000, '2024-07-08', 12, 'coffee', 'coffee', 9),"
	" (2, 'mig', 'ann', 'req-00000002', 1720414400000, '2024-07-08', 999999999, NULL, NULL, NULL),"
	" (3, 'mig', 'cat', 'req-00000003', 1720300000001, '2024-07-07', 5, 'coffee', NULL, 0);"
	"INSERT INTO stock (promo, day, prize, taken) VALUES ('mig', '2024-07-08', 'coffee', 1),"
	" ('mig', '2024-07-07', 'coffee', 10);"
	"INSERT INTO outbox (id, key, kind, promo, uid, payload, state, attempts, next_at,"
	" lease_until, last_status, last_error, created_at, done_at) VALUES"
	" (1, 'mig/invite/bob/notify', 'notify.invite', 'mig', 'ann', '{\"a\":1}', 'delivered', 1,"
	"  1720403600000, 0, 200, NULL, 1720403600000, 1720403700000),"
	" (2, 'mig/draw/1/reward', 'reward.issue', 'mig', 'ann', '{\"b\":2}', 'pending', 3,"
	"  1720420000000, 1720410900000, 503, 'HTTP 503', 1720410800000, NULL),"
	" (3, 'mig/draw/1/notify', 'notify.win', 'mig', 'ann', '{}', 'dead', 12, 1720410800000, 0,"
	"  404, 'HTTP 404: gone', 1720410800000, 1720499999999),"
	" (4, 'mig/draw/9/reward', 'reward.issue', 'mig', 'zed', '{}', 'revoked', 0, 1720410800000,"
	"  0, NULL, 'revoked by ticket R-1', 1720410800000, 1720411000000);";

/* Each table read in full, in order, in the columns of 001. */
static const char *const tables[] = {
	"SELECT group_concat(quote(id) || quote(name) || quote(definition) || quote(loaded_at), '|')"
	" FROM (SELECT * FROM promotions ORDER BY id)",
	"SELECT group_concat(quote(promo) || quote(uid) || quote(granted) || quote(spent) ||"
	" quote(version) || quote(first_seen), '|') FROM (SELECT * FROM balances ORDER BY promo, uid)",
	"SELECT group_concat(quote(id) || quote(promo) || quote(uid) || quote(reason) ||"
	" quote(amount) || quote(ref) || quote(note) || quote(created_at) || quote(day), '|')"
	" FROM (SELECT * FROM grants ORDER BY id)",
	"SELECT group_concat(quote(code) || quote(promo) || quote(uid) || quote(created_at), '|')"
	" FROM (SELECT * FROM invite_codes ORDER BY code)",
	"SELECT group_concat(quote(promo) || quote(invitee) || quote(inviter) || quote(code) ||"
	" quote(inviter_granted) || quote(client) || quote(created_at) || quote(day), '|')"
	" FROM (SELECT * FROM invites ORDER BY promo, invitee)",
	"SELECT group_concat(quote(id) || quote(promo) || quote(invitee) || quote(inviter) ||"
	" quote(code) || quote(reason) || quote(client) || quote(created_at) || quote(day), '|')"
	" FROM (SELECT * FROM claim_refusals ORDER BY id)",
	"SELECT group_concat(quote(id) || quote(promo) || quote(uid) || quote(request_id) ||"
	" quote(created_at) || quote(day) || quote(rand) || quote(picked) || quote(prize) ||"
	" quote(stock_left), '|') FROM (SELECT * FROM draws ORDER BY id)",
	"SELECT group_concat(quote(promo) || quote(day) || quote(prize) || quote(taken), '|')"
	" FROM (SELECT * FROM stock ORDER BY promo, day, prize)",
	"SELECT group_concat(quote(id) || quote(key) || quote(kind) || quote(promo) || quote(uid) ||"
	" quote(payload) || quote(state) || quote(attempts) || quote(next_at) ||"
	" quote(lease_until) || quote(last_status) || quote(last_error) || quote(created_at) ||"
	" quote(done_at), '|') FROM (SELECT * FROM outbox ORDER BY id)",
};
#define NTABLES (sizeof tables / sizeof tables[0])

static const char def[] =
	"{\"id\":\"mig\",\"name\":\"mig\",\"time_zone\":\"Asia/Seoul\","
	"\"first_day\":\"2024-07-07\",\"last_day\":\"2024-07-31\","
	"\"grants\":{\"visit\":1,\"inviter\":2,\"invitee\":3},"
	"\"invites\":{\"max_credited_per_inviter\":30,\"invitee_new_within_hours\":24},"
	"\"prizes\":[{\"id\":\"coffee\",\"name\":\"Coffee\",\"daily_stock\":10,"
	"\"probability\":0.5}]}";

static uint32_t fixed(void *arg)
{
	return *(const uint32_t *)arg;
}

/* After migrating, the rules go on from the migrated rows: ann's visit
 * is not granted again, her recorded draw replays and a new one spends
 * from her balance, her invite code is the one she had, a new invitee is
 * credited to her and bob is not credited twice, a used ticket stays
 * used and dan, revoked to zero, gets a new grant. */
static void rules_go_on(struct ledger *l, const struct promo *p, int v)
{
	struct support_request used = { "T-1", "again", "op" }, fresh = { "T-9", "more", "op" };
	int64_t now = 1720420000000LL; /* 2024-07-08 15:26 in Seoul */
	char code[INVITE_CODE_LEN + 1];
	uint32_t miss = 999999999;
	struct support_result sr;
	enum support_outcome so;
	struct visit_result vr;
	struct draw_result dr;
	struct claim_result cr;
	enum rule_outcome o;
	int good;

	good = rules_visit(l, p, "ann", now, &o, &vr) == LD_OK && !vr.granted &&
		BALANCE(vr.bal) == 5 && vr.bal.version == 6;
	good = good &&
		rules_draw(l, p, "ann", "req-00000001", now, fixed, &miss, &o, &dr) == LD_OK &&
		dr.replay && dr.id == 1 && dr.prize == 0;
	good = good &&
		rules_draw(l, p, "ann", "req-00000009", now, fixed, &miss, &o, &dr) == LD_OK &&
		!dr.replay && dr.prize == -1 && dr.id == 4 && BALANCE(dr.bal) == 4;
	good = good && rules_invite_code(l, p, "ann", now, NULL, code) == LD_OK &&
		strcmp(code, "annCODE234") == 0;
	good = good && rules_claim(l, p, "eve", code, NULL, now, &o, &cr) == LD_OK &&
		o == RULE_OK && cr.inviter_granted && BALANCE(cr.inviter_bal) == 6;
	good = good && rules_claim(l, p, "bob", code, NULL, now, &o, &cr) == LD_OK &&
		o == RULE_ALREADY_CREDITED;
	good = good && support_grant(l, p, "ann", 1, &used, now, &so, &sr) == LD_OK &&
		so == SUPPORT_ALREADY;
	good = good && support_grant(l, p, "dan", 1, &fresh, now, &so, &sr) == LD_OK &&
		so == SUPPORT_DONE && BALANCE(sr.bal) == 1;
	ok(good, "version %d: the rules go on from its rows%s%s", v, good ? "" : ": ",
	   good ? "" : ledger_errmsg(l));
}

int main(void)
{
	int latest = ld_migrations[ld_nmigrations - 1].version;
	struct testdb t;
	char err[256];

	testdb_open_promo(&t, "migrate", def); /* for its directory and promotion */
	for (int i = 0; i < ld_nmigrations; i++)
		if (ld_migrations[i].version != i + 1)
			bail("migration %d is numbered %d", i + 1, ld_migrations[i].version);

	for (int v = 0; v < latest; v++) {
		struct ledger_options lo = { 0 };
		char path[320], before[NTABLES][4096], after[4096], check[64];
		struct ledger *l;
		int from = -1, to = -1, same = 1;
		sqlite3 *h;

		snprintf(path, sizeof path, "%s/v%d.db", t.dir, v);
		testdb_old(path, v, v > 0 ? seed : NULL);
		h = testdb_raw(path);
		for (size_t i = 0; i < NTABLES && v > 0; i++)
			testdb_text(h, tables[i], before[i], sizeof before[i]);
		sqlite3_close(h);

		if (ledger_open(path, &lo, &l, err, sizeof err) != LD_OK)
			bail("%s", err);
		is_int(ledger_migrate(l, &from, &to), LD_OK, "version %d migrates", v);
		ok(from == v && to == latest, "from %d to %d (%d, %d)", v, latest, from, to);
		is_int(ledger_check_schema(l), LD_OK, "version %d: the schema is the latest", v);

		h = testdb_raw(path);
		testdb_text(h, "PRAGMA integrity_check", check, sizeof check);
		is_string(check, "ok", "version %d: the file is whole", v);
		if (v == 0) {
			sqlite3_close(h);
			ledger_free(l);
			continue;
		}
		for (size_t i = 0; i < NTABLES; i++) {
			testdb_text(h, tables[i], after, sizeof after);
			if (strcmp(before[i], after) != 0 || !before[i][0]) {
				same = 0;
				diag("table %zu before: %s", i, before[i]);
				diag("table %zu after:  %s", i, after);
			}
		}
		ok(same, "version %d: every row of every table is as it was", v);
		testdb_text(h,
			    "SELECT group_concat(uid || '=' || invites_credited, ',')"
			    " FROM (SELECT * FROM balances ORDER BY uid)",
			    after, sizeof after);
		is_string(after, v < 5 ? "ann=1,bob=0,cat=0,dan=0" : "ann=0,bob=0,cat=0,dan=0",
			  "version %d: the inviters' counter (005 counts the invites before it)",
			  v);
		if (v < 11) { /* made before 011: its columns and tables are 011's to fill */
			testdb_text(
				h,
				"SELECT group_concat(id || '=' || coalesce(draw_id, '-') || '/' ||"
				" coalesce(invitee, '-'), ',') FROM (SELECT * FROM outbox ORDER BY id)",
				after, sizeof after);
			is_string(after, "1=-/bob,2=1/-,3=1/-,4=9/-",
				  "version %d: each event's draw or invitee, from its key (011)",
				  v);
			testdb_text(h,
				    "SELECT length(value) || ':' || (SELECT count(*) FROM"
				    " promotion_history) FROM ledger_meta WHERE key = 'ledger_id'",
				    after, sizeof after);
			is_string(after, "16:1",
				  "version %d: a ledger id, and the promotion's first"
				  " history entry (011)",
				  v);
		}
		if (v < 12) { /* made before 012: the outcomes are 012's to count */
			testdb_text(
				h,
				"SELECT group_concat(kind || '/' || outcome || '=' || n || '@' ||"
				" last_at, ',') FROM (SELECT * FROM outbox_outcomes ORDER BY kind,"
				" outcome)",
				after, sizeof after);
			is_string(
				after,
				"notify.invite/delivered=1@1720403700000,"
				"notify.win/dead=1@1720499999999,notify.win/retried=11@0,"
				"reward.issue/retried=3@0",
				"version %d: the dispatchers' outcomes counted from the rows (012)",
				v);
		}
		sqlite3_close(h);
		if (v >= 5) /* made after 005: the counter is the rules' to keep */
			db_script(ledger_db(l),
				  "UPDATE balances SET invites_credited = 1"
				  " WHERE uid = 'ann'",
				  "cannot set the counter");
		rules_go_on(l, t.promo, v);
		ledger_free(l);
	}
	testdb_remove(&t);
	return done_testing();
}
