/*
 * t/unit/outbox.c - lib/outbox.c on a real SQLite file: claims with a
 * lease, marks that hold only under the lease they were made with,
 * release, kinds without a URL, revoked rows, operator retry, the
 * outcomes counted by kind as they are recorded (outbox_stats), and the
 * bounds of the full-jitter backoff.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "outbox.h"
#include "../tap.h"
#include "testdb.h"

#define T0    1720364400000LL
#define LEASE 60000

static struct ledger *l;

static void add(const char *kind, const char *key)
{
	if (db_begin(ledger_db(l)) != LD_OK ||
	    outbox_add(l, kind, key, "p", "u", "{\"x\":1}", 0, NULL, T0) != LD_OK ||
	    db_commit(ledger_db(l)) != LD_OK)
		bail("cannot add '%s': %s", key, ledger_errmsg(l));
}

static const char *state_of(const char *key, int *attempts)
{
	static char st[16];
	struct db_stmt *s;

	st[0] = '\0';
	if (db_query(ledger_db(l), &s, "SELECT state, attempts FROM outbox WHERE key = ?1", "t",
		     key) != LD_OK)
		bail("%s", ledger_errmsg(l));
	if (db_step(s) > 0) {
		snprintf(st, sizeof st, "%s", db_col_text(s, 0));
		*attempts = (int)db_col_int(s, 1);
	}
	db_end(ledger_db(l), s, "cannot read outbox");
	return st;
}

static struct outbox_mark mark(const struct outbox_event *e, enum outbox_verdict v)
{
	struct outbox_mark m = { e->id,
				 e->lease_until,
				 v,
				 v == OUTBOX_DELIVERED ? 200 : 500,
				 v == OUTBOX_DELIVERED ? NULL : "HTTP 500: x",
				 T0 + 5000,
				 e->kind };
	return m;
}

/* The outbox's statistics at now. */
static struct outbox_stats stats_at(int64_t now)
{
	struct outbox_stats st;

	if (outbox_stats(l, now, &st) != LD_OK)
		bail("outbox_stats: %s", ledger_errmsg(l));
	return st;
}

/* reward.issue's counts as "delivered/retried/dead@last delivery". */
static const char *reward_counts(const struct outbox_stats *st)
{
	static char s[128];

	snprintf(s, sizeof s, "%lld/%lld/%lld@%lld", (long long)st->kind[0].delivered,
		 (long long)st->kind[0].retried, (long long)st->kind[0].dead,
		 (long long)st->kind[0].last_delivered_ms);
	return s;
}

/* Jitter at the top and at the bottom of its range. */
static uint32_t top_of(void *state, uint32_t n)
{
	(void)state;
	return n - 1;
}

static uint32_t bottom_of(void *state, uint32_t n)
{
	(void)state;
	(void)n;
	return 0;
}

static void test_backoff(void)
{
	struct ld_dispatch_config d = { .backoff_base_seconds = 1, .backoff_max_seconds = 8 };
	int64_t hi[8] = { 0 }, w;
	int bad = 0;

	for (int a = 1; a <= 6; a++)
		for (int i = 0; i < 2000; i++) {
			int64_t ceil = 1000LL << (a - 1);
			w = outbox_backoff_ms(&d, a, 0, NULL);
			if (ceil > 8000)
				ceil = 8000;
			if (w < 0 || w > ceil)
				bad++;
			if (w > hi[a])
				hi[a] = w;
		}
	is_int(bad, 0, "every wait is within [0, min(cap, base * 2^(attempts-1))]");
	ok(hi[1] > 900 && hi[3] > 3600 && hi[6] > 7200,
	   "and spreads over the whole range (jitter)");
	w = outbox_backoff_ms(&d, 1000, 0, NULL);
	ok(w >= 0 && w <= 8000, "a huge attempt count stays within the cap");
	is_int(outbox_backoff_ms(&d, 1, 30000, NULL) >= 30000, 1,
	       "Retry-After is a minimum, even past the cap");

	/* With the jitter's numbers chosen, each wait is exact. */
	struct ld_rng top = { top_of, NULL }, bottom = { bottom_of, NULL };
	static const int64_t ceil[] = { 0, 1000, 2000, 4000, 8000, 8000 };
	for (int a = 1; a <= 5; a++)
		is_int(outbox_backoff_ms(&d, a, 0, &top), ceil[a],
		       "attempt %d waits at most min(cap, base * 2^%d): %lld ms", a, a - 1,
		       (long long)ceil[a]);
	is_int(outbox_backoff_ms(&d, 3, 0, &bottom), 0, "and at least nothing");
	is_int(outbox_backoff_ms(&d, 3, 2500, &bottom), 2500, "Retry-After raises the floor");
	is_int(outbox_backoff_ms(&d, 3, 2500, &top), 4000, "but a longer draw stands");
	uint64_t s1 = 7, s2 = 7;
	struct ld_rng r1 = ld_rng_seeded(&s1), r2 = ld_rng_seeded(&s2);
	int same = 1;
	for (int i = 0; i < 100; i++)
		same &= outbox_backoff_ms(&d, 4, 0, &r1) == outbox_backoff_ms(&d, 4, 0, &r2);
	ok(same, "a seeded jitter repeats itself");
}

/* The ledger id: made by the migrations, 16 hex digits, in every key;
 * renewed, it differs, and the one before is kept. */
static void test_ledger_id(void)
{
	char old[LEDGER_ID_LEN + 1], now[LEDGER_ID_LEN + 1], key[128], prev[64];
	const char *id;
	int found;

	is_int(ledger_id(l, &id), LD_OK, "the ledger has an id");
	is_int((long long)strlen(id), LEDGER_ID_LEN, "of 16 characters");
	is_int((long long)strspn(id, "0123456789abcdef"), LEDGER_ID_LEN, "hex digits");
	ld_fmt(key, sizeof key, OUTBOX_KEY_DRAW, "lucky-2024", id, 41LL, "reward");
	ok(strncmp(key, "lucky-2024/", 11) == 0 && strncmp(key + 11, id, LEDGER_ID_LEN) == 0 &&
		   strcmp(key + 11 + LEDGER_ID_LEN, "/draw/41/reward") == 0,
	   "a draw's key: promo/ledger/draw/id/what");
	is_int(ledger_renew_id(l, T0, "test", old, now), LD_OK, "renew the id");
	is_int(ledger_id(l, &id), LD_OK, "read it again");
	is_string(id, now, "the new one is the ledger's");
	ok(strcmp(old, now) != 0, "and differs from the old");
	ledger_meta_get(l, "previous_ledger_id", prev, sizeof prev, &found);
	is_string(prev, old, "the old one is kept as previous_ledger_id");
}

int main(void)
{
	struct outbox_event *ev, *ev2;
	struct outbox_mark m[3];
	struct outbox_stats st;
	struct testdb tdb;
	size_t n, n2, stale;
	int64_t due, changed;
	int att = 0;

	if (sodium_init() < 0)
		bail("cannot initialise libsodium");
	testdb_open(&tdb, "outbox");
	l = tdb.ledger;

	add("reward.issue", "k1");
	add("reward.issue", "k2");
	add("notify.win", "k3");
	add("reward.issue", "k4");
	add("reward.issue", "k1"); /* a duplicate key is a no-op */
	outbox_count_due(l, T0, OUTBOX_REWARD | OUTBOX_NOTIFY, &due);
	is_int(due, 4, "4 events due (a duplicate key adds nothing)");
	is_string(outbox_kinds[0], "reward.issue", "the first kind is reward.issue");
	st = stats_at(T0);
	ok(st.due == 4 && st.oldest_due_ms == T0 && st.dead_now == 0,
	   "stats: 4 due, the oldest since T0, none dead");
	is_string(reward_counts(&st), "0/0/0@0", "stats: no outcome yet");
	st = stats_at(T0 - 1);
	ok(st.due == 0 && st.oldest_due_ms == 0, "stats: before T0 none is due");

	is_int(outbox_claim(l, T0, LEASE, OUTBOX_REWARD, 2, &ev, &n), LD_OK, "claim 2 rewards");
	is_int((int64_t)n, 2, "2 claimed");
	ok(n == 2 && ev[0].attempts == 1 && ev[0].lease_until == T0 + LEASE, "attempt 1, leased");
	is_int(outbox_claim(l, T0, LEASE, OUTBOX_REWARD, 10, &ev2, &n2), LD_OK, "claim again");
	ok(n2 == 1 && strcmp(ev2[0].key, "k4") == 0, "only the unleased reward, not the notify");
	outbox_events_free(ev2, n2);

	/* The lease runs out (the dispatcher died): the rows go again. */
	is_int(outbox_claim(l, T0 + LEASE, LEASE, OUTBOX_REWARD, 10, &ev2, &n2), LD_OK,
	       "claim after the lease");
	ok(n2 == 3, "the expired rows and k4's are claimed again (%zu)", n2);
	m[0] = mark(&ev[0], OUTBOX_DELIVERED);
	m[1] = mark(&ev[1], OUTBOX_DEAD);
	is_int(outbox_mark(l, m, 2, T0 + LEASE, &stale), LD_OK, "marks under the old lease");
	is_int((int64_t)stale, 2, "change nothing: both are stale");
	st = stats_at(T0 + LEASE);
	is_string(reward_counts(&st), "0/0/0@0", "stats: stale marks count no outcome");
	is_string(state_of(ev[0].key, &att), "pending", "the row is still pending");
	is_int(att, 2, "with 2 attempts");
	outbox_events_free(ev, n);

	for (size_t i = 0; i < n2; i++) {
		enum outbox_verdict v = strcmp(ev2[i].key, "k1") == 0 ? OUTBOX_DELIVERED
			: strcmp(ev2[i].key, "k2") == 0               ? OUTBOX_DEAD
								      : OUTBOX_RELEASE;
		m[i] = mark(&ev2[i], v);
	}
	is_int(outbox_mark(l, m, n2, T0 + LEASE + 1, &stale), LD_OK,
	       "marks under the current lease");
	is_int((int64_t)stale, 0, "all hold");
	st = stats_at(T0 + LEASE + 1);
	is_string(
		reward_counts(&st), "1/0/1@1720364460001",
		"stats: reward.issue delivered 1 (at the mark's time) and dead 1; a release counts none");
	ok(st.kind[1].delivered == 0 && st.kind[1].dead == 0 && st.kind[2].delivered == 0,
	   "stats: the other kinds count nothing");
	is_int(st.dead_now, 1, "stats: one dead now");
	is_string(state_of("k1", &att), "delivered", "k1 delivered");
	is_string(state_of("k2", &att), "dead", "k2 dead");
	is_string(state_of("k4", &att), "pending", "k4 released: pending");
	is_int(att, 1, "its unsent attempt undone");
	is_int(outbox_mark(l, m, 1, T0 + LEASE + 2, &stale), LD_OK,
	       "marking a delivered row again");
	is_int((int64_t)stale, 1, "changes nothing");
	st = stats_at(T0 + LEASE + 2);
	is_string(reward_counts(&st), "1/0/1@1720364460001", "nor counts anything");
	outbox_events_free(ev2, n2);

	outbox_claim(l, T0 + LEASE + 3, LEASE, OUTBOX_REWARD, 10, &ev, &n);
	ok(n == 1 && strcmp(ev[0].key, "k4") == 0, "a released row is due at once");
	m[0] = mark(&ev[0], OUTBOX_RETRY);
	outbox_mark(l, m, 1, T0 + LEASE + 4, NULL);
	outbox_events_free(ev, n);
	outbox_claim(l, T0 + 4999, LEASE, OUTBOX_REWARD, 10, &ev, &n);
	is_int((int64_t)n, 0, "a retried row waits for its next_at");
	st = stats_at(T0 + 4999);
	is_string(reward_counts(&st), "1/1/1@1720364460001", "stats: the retry is counted");

	db_script(ledger_db(l), "UPDATE outbox SET state = 'revoked' WHERE key = 'k3'",
		  "cannot revoke");
	outbox_claim(l, T0 + 3 * LEASE, LEASE, OUTBOX_NOTIFY, 10, &ev, &n);
	is_int((int64_t)n, 0, "a revoked row is never claimed");

	is_int(outbox_retry(l, 999, NULL, T0, NULL, &changed), LD_ERR_NOTFOUND,
	       "retry of an unknown id: not found");
	is_int(outbox_retry(l, 1, NULL, T0, NULL, &changed), LD_OK, "retry of a delivered row");
	is_int(changed, 0, "changes nothing");
	is_int(outbox_retry(l, 0, NULL, T0 + 7, NULL, &changed), LD_OK, "retry of all dead");
	is_int(changed, 1, "puts k2 back");
	is_string(state_of("k2", &att), "pending", "k2 is pending");
	is_int(att, 0, "with no attempts counted");
	st = stats_at(T0 + 10);
	ok(st.dead_now == 0 && st.kind[0].dead == 1,
	   "stats: none dead now, but the outcome stays counted (a counter)");
	ok(st.due == 1 && st.oldest_due_ms == T0 + 7,
	   "stats: k2 is the one due, since the retry (k4 waits, k3 is revoked)");

	test_backoff();
	test_ledger_id();
	testdb_remove(&tdb);
	return done_testing();
}
