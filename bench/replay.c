/*
 * replay.c - a whole campaign replayed through lib/, without HTTP: every
 * participant's first visit or invite claim, the invite codes, and every
 * draw until the tickets run out, each one rule call of rules_*(), many
 * of them per commit as the writer process does (--group N participants'
 * calls per transaction, 64 by default; 1: a transaction each) on a
 * file database (WAL) in a temporary directory, with
 * the time passed in as the campaign's own days. Then it checks the
 * invariants with SQL and prints the elapsed time and peak memory.
 *
 * usage: replay [--promo FILE] [--participants N] [--seed S]
 *               [--boost F] [--group N] [--clients N] [--keep] [--db CONNINFO]
 *
 * --db runs it on a PostgreSQL database instead (an empty one: the
 * replay migrates it and refuses one that holds users).
 *
 * Arrivals are spread over the promotion's days (more at the start, a
 * slow decline after). Invites have a power-law fan-out: most
 * participants invite nobody, a few invite many (Pareto, alpha 1.3); an
 * arriving participant claims, when one is open, a random invite of
 * someone who came earlier. Every grant is drawn at once (an inviter
 * comes back to roll the ticket an invite gave). --seed fixes the
 * arrivals and the fan-out; draws use libsodium. --boost F multiplies
 * every prize's probability by F (to show a sell-out when the shipped
 * probabilities leave stock over). --clients N gives every claim a client
 * address out of N, a few of them far busier than the rest (the index is
 * N * u^4 for a uniform u), so that the promotion's per-client cap
 * refuses some claims, as a campaign with a farm or a busy NAT sees; by
 * default claims have no client, as before.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <json-c/json.h>
#include <sodium.h>

#include "ledger.h"
#include "promo.h"
#include "rules.h"

static uint64_t rng_state;

/* xorshift64*: the simulation's deterministic randomness. */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static double rnd01(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void die(const char *what, struct ledger *l)
{
	fprintf(stderr, "fatal: %s%s%s\n", what, l ? ": " : "", l ? ledger_errmsg(l) : "");
	exit(2);
}

struct stats {
	long visits, claims, claim_refused, inviter_grants, codes, draws, wins;
};

/* Rolls every ticket uid holds (balance bal), starting at *t_ms. */
static void draw_all(struct ledger *l, const struct promo *p, const char *uid,
		     struct ld_balance bal, int64_t t_ms, struct stats *s)
{
	char rid[32];

	while (BALANCE(bal) > 0) {
		struct draw_result r;
		enum rule_outcome o;
		snprintf(rid, sizeof rid, "d%08lld", (long long)bal.spent);
		if (rules_draw(l, p, uid, rid, t_ms++, rules_rng_sodium, NULL, &o, &r) != LD_OK)
			die("draw failed", l);
		if (o != RULE_OK) {
			fprintf(stderr, "warning: draw of '%s' refused: %s\n", uid, rule_code(o));
			return;
		}
		s->draws++;
		s->wins += r.prize >= 0;
		bal = r.bal;
	}
}

/* The promotion file with every probability times boost. */
static struct promo *load_promo(const char *path, double boost)
{
	struct json_object *o, *prizes;
	struct promo *p;
	char err[512], *buf;
	const char *s;
	size_t len;

	if (ld_read_file(path, PROMO_FILE_MAX, &buf, &len, err, sizeof err) != LD_OK)
		die(err, NULL);
	if (!(o = ld_json_parse(buf, len, 16, err, sizeof err)))
		die(err, NULL);
	free(buf);
	if (boost != 1.0 && json_object_object_get_ex(o, "prizes", &prizes)) {
		for (size_t i = 0; i < json_object_array_length(prizes); i++) {
			struct json_object *z = json_object_array_get_idx(prizes, i), *pr;
			if (json_object_object_get_ex(z, "probability", &pr))
				json_object_object_add(
					z, "probability",
					json_object_new_double(
						fmin(1.0, json_object_get_double(pr) * boost)));
		}
	}
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (promo_parse(s, strlen(s), &p, err, sizeof err) != LD_OK)
		die(err, NULL);
	json_object_put(o);
	return p;
}

/* Runs a query of one integer over promotion promo (?1); sql is a
 * literal, as the statement cache wants (db.h). */
static int64_t scalar(struct ledger *l, const char *sql, const char *promo)
{
	int64_t v = -1;

	if (db_int(ledger_db(l), sql, "cannot check", &v, NULL, "t", promo) != LD_OK)
		die("cannot check", l);
	return v;
}

/* The same with an integer ?2. */
static int64_t scalar2(struct ledger *l, const char *sql, const char *promo, int64_t x)
{
	int64_t v = -1;

	if (db_int(ledger_db(l), sql, "cannot check", &v, NULL, "tl", promo, x) != LD_OK)
		die("cannot check", l);
	return v;
}

static int failures;

static void check(int ok, const char *what, long long got, long long want)
{
	printf("  %-4s %-58s %lld%s", ok ? "ok" : "FAIL", what, got, want >= 0 ? "" : "\n");
	if (want >= 0)
		printf(" (want %lld)\n", want);
	failures += !ok;
}

/* Wins per day and prize never above that day's stock; returns the
 * campaign's total stock. */
static int64_t check_stock(struct ledger *l, const struct promo *p)
{
	struct db_stmt *st;
	int64_t total = 0, over = 0;

	for (size_t z = 0; z < p->nprizes; z++)
		for (int d = 0; d < p->ndays; d++)
			total += promo_stock(p, &p->prizes[z], d);
	if (db_query(ledger_db(l), &st,
		     "SELECT day, prize, count(*) FROM draws WHERE promo = ?1 AND prize IS NOT NULL"
		     " GROUP BY day, prize",
		     "t", p->id) != LD_OK)
		die("cannot check", l);
	while (db_step(st) > 0) {
		int d = promo_day_index(p, db_col_text(st, 0));
		const struct promo_prize *z = promo_prize_find(p, db_col_text(st, 1));
		if (d < 0 || !z || db_col_int(st, 2) > promo_stock(p, z, d))
			over++;
	}
	if (db_end(ledger_db(l), st, "cannot check") != LD_OK)
		die("cannot check", l);
	check(over == 0, "(day, prize) with more wins than stock", over, 0);
	return total;
}

int main(int argc, char **argv)
{
	const char *promo_path = "promotions/lucky-dice-2024.json";
	long n = 400000;
	long group = 64, clients = 0;
	double boost = 1.0;
	int keep = 0;
	const char *server = NULL;
	char dir[] = "/tmp/ld-replay-XXXXXX", path[64], uid[24], err[512];
	/* A batch program with a throwaway database to itself: a larger page
	 * cache and fewer, larger checkpoints than a worker, and no file lock
	 * taken and released around every transaction. No syncs: a worker
	 * never waits for a checkpoint's fsyncs (the checkpointer process
	 * does), so neither does the replay. The invariant checks read the
	 * whole campaign: on PostgreSQL a statement may take more than the
	 * service's 2 s (its statement_timeout). */
	struct ledger_options lo = { .create = 1, .bulk = 1, .busy_timeout_ms = 600000 };
	struct ledger *l;
	struct promo *p;
	struct stats s = { 0 };
	struct timespec t0, t1;
	struct rusage ru;

	rng_state = 20240708;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--promo") == 0 && i + 1 < argc)
			promo_path = argv[++i];
		else if (strcmp(argv[i], "--participants") == 0 && i + 1 < argc)
			n = atol(argv[++i]);
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			rng_state = strtoull(argv[++i], NULL, 10) | 1;
		else if (strcmp(argv[i], "--boost") == 0 && i + 1 < argc)
			boost = atof(argv[++i]);
		else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc)
			group = atol(argv[++i]);
		else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc)
			clients = atol(argv[++i]);
		else if (strcmp(argv[i], "--keep") == 0)
			keep = 1;
		else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc &&
			 ld_is_conninfo(argv[i + 1]))
			server = argv[++i];
		else {
			fprintf(stderr,
				"usage: replay [--promo FILE] [--participants N]"
				" [--seed S] [--boost F] [--group N] [--clients N] [--keep] [--db CONNINFO]\n");
			return 2;
		}
	}
	if (n < 1 || n > 10000000 || boost <= 0 || group < 1 || clients < 0 || clients > 16000000 ||
	    sodium_init() < 0)
		die("bad arguments", NULL);
	p = load_promo(promo_path, boost);
	if (server) {
		if (ledger_open(server, &lo, &l, err, sizeof err) != LD_OK)
			die(err, NULL);
	} else {
		if (!mkdtemp(dir))
			die("cannot make a temporary directory", NULL);
		snprintf(path, sizeof path, "%s/replay.db", dir);
		if (ledger_open(path, &lo, &l, err, sizeof err) != LD_OK)
			die(err, NULL);
	}
	if (ledger_migrate(l, NULL, NULL) != LD_OK)
		die("cannot set up the ledger", l);
	if (server && scalar(l, "SELECT count(*) FROM balances WHERE promo = ?1", p->id) != 0)
		die("the database already holds this promotion's users: give an empty one", NULL);
	if (ledger_promo_store(l, p, p->day_start_ms[0] - 86400000, NULL, NULL) != LD_OK)
		die("cannot set up the ledger", l);

	/* Arrivals: day weights fall from 1.0 to 0.4 over the campaign. */
	int64_t *t = xmalloc((size_t)n * sizeof *t);
	double wsum = 0, *w = xmalloc((size_t)p->ndays * sizeof *w);
	for (int d = 0; d < p->ndays; d++)
		wsum += w[d] = 1.0 - 0.6 * d / (p->ndays > 1 ? p->ndays - 1 : 1);
	for (long i = 0; i < n; i++) {
		double x = rnd01() * wsum;
		int d = 0;
		while (d < p->ndays - 1 && (x -= w[d]) > 0)
			d++;
		t[i] = p->day_start_ms[d] +
			(int64_t)(rnd01() *
				  (double)(p->day_start_ms[d + 1] - p->day_start_ms[d] - 60000));
	}
	qsort(t, (size_t)n, sizeof *t, cmp_i64);

	/* Open invites: slots of inviter indices; codes per participant. */
	char(*codes)[INVITE_CODE_LEN + 1] = xcalloc((size_t)n, sizeof *codes);
	int32_t *slots = NULL;
	size_t nslots = 0, capslots = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (group > 1 && ledger_batch_begin(l, 0) != LD_OK)
		die("cannot begin a group", l);
	for (long j = 0; j < n; j++) {
		struct ld_balance bal;
		enum rule_outcome o;
		long k = 0;

		snprintf(uid, sizeof uid, "u%07ld", j);
		if (nslots && rnd01() < 0.7) {
			size_t pick = (size_t)(rnd() % nslots);
			int32_t inviter = slots[pick];
			struct claim_result r;
			char iuid[16], client[24];
			slots[pick] = slots[--nslots];
			if (clients) {
				double u = rnd01();
				long c = (long)((double)clients * u * u * u * u);
				snprintf(client, sizeof client, "10.%ld.%ld.%ld", c >> 16 & 255,
					 c >> 8 & 255, c & 255);
			}
			if (rules_claim(l, p, uid, codes[inviter], clients ? client : NULL, t[j],
					&o, &r) != LD_OK)
				die("claim failed", l);
			if (o != RULE_OK) {
				s.claim_refused++;
				if (rules_visit(l, p, uid, t[j], &o, &(struct visit_result){ 0 }) !=
				    LD_OK)
					die("visit failed", l);
				if (ledger_balance(l, p->id, uid, &bal) != LD_OK)
					die("balance failed", l);
			} else {
				s.claims++;
				bal = r.bal;
			}
			if (r.inviter_granted) {
				s.inviter_grants++;
				snprintf(iuid, sizeof iuid, "u%07d", inviter);
				draw_all(l, p, iuid, r.inviter_bal, t[j] + 1, &s);
			}
		} else {
			struct visit_result r;
			if (rules_visit(l, p, uid, t[j], &o, &r) != LD_OK || o != RULE_OK)
				die("visit failed", l);
			s.visits++;
			bal = r.bal;
		}
		/* Fan-out: 85 % invite nobody; the rest a Pareto number of friends. */
		if (rnd01() >= 0.85)
			k = lround(floor(pow(1.0 - rnd01(), -1.0 / 1.3)));
		if (k > 2000)
			k = 2000;
		if (k > 0) {
			if (rules_invite_code(l, p, uid, t[j], NULL, codes[j]) != LD_OK)
				die("invite code failed", l);
			s.codes++;
			if (nslots + (size_t)k > capslots) {
				capslots = (nslots + (size_t)k) * 2;
				slots = xrealloc(slots, capslots * sizeof *slots);
			}
			while (k-- > 0)
				slots[nslots++] = (int32_t)j;
		}
		draw_all(l, p, uid, bal, t[j] + 2, &s);
		if (group > 1 && (j + 1) % group == 0 &&
		    (ledger_batch_end(l, 1) != LD_OK || ledger_batch_begin(l, 0) != LD_OK))
			die("group commit failed", l);
		if (j % 50000 == 0 && j) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			fprintf(stderr, "  %ld participants, %ld draws, %.1f s\n", j, s.draws,
				(double)(t1.tv_sec - t0.tv_sec) +
					(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
		}
	}
	if (group > 1 && ledger_batch_end(l, 1) != LD_OK)
		die("group commit failed", l);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	getrusage(RUSAGE_SELF, &ru);

	printf("replay of '%s' (probabilities x%g), %ld participants, seed fixed,"
	       " %ld participants' calls per commit, %ld client addresses\n",
	       p->id, boost, n, group, clients);
	printf("  %ld visits, %ld credited invite claims (%ld refused), %ld inviter grants,"
	       " %ld invite codes, %ld draws, %ld wins, %zu invites never claimed\n",
	       s.visits, s.claims, s.claim_refused, s.inviter_grants, s.codes, s.draws, s.wins,
	       nslots);
	printf("  elapsed %.1f s (%.0f rule calls/s), peak memory %ld MB\n", secs,
	       (double)(s.visits + s.claims + s.claim_refused * 2 + s.codes + s.draws) / secs,
	       ru.ru_maxrss / 1024);
	printf("invariants:\n");
	int64_t stock = check_stock(l, p);
	int64_t winners = scalar(
		l, "SELECT count(*) FROM draws WHERE promo = ?1 AND prize IS NOT NULL", p->id);
	if (winners == stock)
		check(1, "total winners = total stock (sold out)", winners, stock);
	else
		check(winners < stock, "total winners <= total stock (demand fell short)", winners,
		      stock);
	check(scalar(l,
		     "SELECT count(*) FROM stock s WHERE promo = ?1 AND taken <>"
		     " (SELECT count(*) FROM draws d WHERE d.promo = s.promo AND d.day = s.day"
		     "  AND d.prize = s.prize)",
		     p->id) == 0,
	      "stock rows that disagree with wins",
	      scalar(l,
		     "SELECT count(*) FROM stock s WHERE promo = ?1 AND taken <>"
		     " (SELECT count(*) FROM draws d WHERE d.promo = s.promo AND d.day = s.day"
		     "  AND d.prize = s.prize)",
		     p->id),
	      0);
	static const char users_bad[] =
		"SELECT count(*) FROM balances b"
		" LEFT JOIN (SELECT uid, sum(amount) AS g FROM grants WHERE promo = ?1 GROUP BY uid) g"
		"  ON g.uid = b.uid"
		" LEFT JOIN (SELECT uid, count(*) AS n FROM draws WHERE promo = ?1 GROUP BY uid) d"
		"  ON d.uid = b.uid"
		" WHERE b.promo = ?1 AND (b.granted <> coalesce(g.g, 0) OR b.spent <> coalesce(d.n, 0)"
		"  OR b.granted - b.spent < 0)";
	int64_t bad = scalar(l, users_bad, p->id);
	check(bad == 0, "users where granted <> grants or spent <> draws", bad, 0);
	bad = scalar(l, "SELECT count(*) FROM balances WHERE promo = ?1 AND granted <> spent",
		     p->id);
	check(bad == 0, "users with tickets left (all were drawn)", bad, 0);
	check(scalar(l, "SELECT count(*) FROM balances WHERE promo = ?1", p->id) == n,
	      "users in the ledger",
	      scalar(l, "SELECT count(*) FROM balances WHERE promo = ?1", p->id), n);
	bad = scalar(l,
		     "SELECT count(*) FROM draws d WHERE promo = ?1 AND prize IS NOT NULL AND"
		     " (SELECT count(*) FROM outbox o WHERE o.draw_id = d.id"
		     "  AND o.kind = 'reward.issue') <> 1",
		     p->id);
	check(bad == 0, "wins without exactly one reward.issue event", bad, 0);
	check(scalar(l, "SELECT count(*) FROM outbox WHERE promo = ?1 AND kind = 'reward.issue'",
		     p->id) == winners,
	      "reward.issue events",
	      scalar(l,
		     "SELECT count(*) FROM outbox WHERE promo = ?1"
		     " AND kind = 'reward.issue'",
		     p->id),
	      winners);
	bad = scalar2(l,
		      "SELECT count(*) FROM (SELECT inviter FROM invites WHERE promo = ?1"
		      " GROUP BY inviter HAVING sum(inviter_granted) > ?2) AS over_cap",
		      p->id, p->max_credited_per_inviter);
	check(bad == 0, "inviters credited past the cap", bad, 0);
	/* no index of invites by inviter (migration 010): counted in one pass */
	bad = scalar(
		l,
		"SELECT count(*) FROM balances b LEFT JOIN (SELECT inviter, count(*) AS n"
		" FROM invites WHERE promo = ?1 AND inviter_granted = 1 GROUP BY inviter) c"
		" ON c.inviter = b.uid WHERE b.promo = ?1 AND b.invites_credited <> coalesce(c.n, 0)",
		p->id);
	check(bad == 0, "inviters whose counter differs from their invites", bad, 0);
	bad = scalar(l,
		     "SELECT count(*) FROM (SELECT uid FROM grants WHERE promo = ?1 AND"
		     " reason = 'visit' GROUP BY uid HAVING count(*) > 1) AS twice",
		     p->id);
	check(bad == 0, "users with more than one visit grant", bad, 0);

	ledger_free(l);
	promo_free(p);
	free(t);
	free(w);
	free(codes);
	free(slots);
	if (server) {
		printf("database: %s\n", "the one given (--db)");
	} else if (!keep) {
		char f[96];
		static const char *const sfx[] = { "", "-wal", "-shm" };
		for (int i = 0; i < 3; i++) {
			snprintf(f, sizeof f, "%s%s", path, sfx[i]);
			unlink(f);
		}
		rmdir(dir);
	} else {
		printf("database kept: %s\n", path);
	}
	printf("%s\n", failures ? "invariants: FAILED" : "invariants: all hold");
	return failures ? 1 : 0;
}
