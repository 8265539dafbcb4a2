/*
 * console-queries.c - what the web console's reads cost in lib/ on a
 * campaign ledger (bench/replay --keep makes one), without HTTP: the
 * days (stats_read) counted from nothing, kept, one day counted as a
 * "today" is on every read (each day of the campaign in turn, so the
 * busiest one shows), and filled within the console's budget; the
 * outbox, the watch lists and a user's story. bench/console runs it
 * beside the HTTP timings. Times are milliseconds of the wall clock.
 *
 * usage: console-queries DB [PROMO] [--runs N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "campaign.h"
#include "history.h"
#include "ledger.h"
#include "stats.h"

static struct ledger *l;
static const struct promo *p;
static int64_t now;

static void die(const char *what)
{
	fprintf(stderr, "fatal: %s: %s\n", what, l ? ledger_errmsg(l) : "");
	exit(2);
}

static double ms_since(int64_t t0)
{
	return (double)(ld_mono_us() - t0) / 1000.0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Prints the median and the largest of n times. */
static void report(const char *what, double *t, int n)
{
	qsort(t, (size_t)n, sizeof *t, cmp_double);
	printf("  %-58s median %7.1f ms   max %7.1f ms   (%d runs)\n", what, t[n / 2], t[n - 1], n);
}

/* One stats_read at now with budget_ms; its time, *pending its pending. */
static double days(int64_t budget_ms, int *pending)
{
	struct stats_day *d;
	int64_t t0 = ld_mono_us();

	if (stats_read(l, p, now, budget_ms, &d, pending) != LD_OK)
		die("stats_read");
	stats_days_free(d, p->ndays);
	return ms_since(t0);
}

static void forget(const char *day)
{
	if (db_exec(ledger_db(l),
		    "DELETE FROM stats_days WHERE promo = ?1"
		    " AND (CAST(?2 AS TEXT) IS NULL OR day = ?2)",
		    "cannot forget", "tt", p->id, day) != LD_OK)
		die("forget");
}

int main(int argc, char **argv)
{
	struct ledger_options lo = { .busy_timeout_ms = 5000 };
	const char *path = NULL, *id = "lucky-dice-2024";
	double t[64], worst = 0;
	char err[512], day[11], busiest[11] = "";
	int runs = 9, pending, reads = 0;
	struct json_object *o, *a;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!path)
			path = argv[i];
		else
			id = argv[i];
	}
	if (!path || runs < 1 || runs > 64 || sodium_init() < 0) {
		fprintf(stderr, "usage: console-queries DB [PROMO] [--runs N (1-64)]\n");
		return 2;
	}
	if (ledger_open(path, &lo, &l, err, sizeof err) != LD_OK) {
		fprintf(stderr, "fatal: %s\n", err);
		return 2;
	}
	if (ledger_migrate(l, NULL, NULL) != LD_OK)
		die("migrate");
	if (!(p = ledger_promo(l, id, ld_now_ms())))
		die("no such promotion");
	/* just after the campaign: every day finished */
	now = p->day_start_ms[p->ndays] + STATS_SETTLE_MS + 1;
	printf("console queries on '%s' (%s), %d days, at the campaign's end\n", path, p->id,
	       p->ndays);

	forget(NULL);
	printf("  %-58s %7.1f ms\n", "days: every finished day counted and kept (no budget)",
	       days(-1, &pending));
	for (int i = 0; i < runs; i++)
		t[i] = days(-1, &pending);
	report("days: every day kept", t, runs);
	/* one day counted at a time, as today's is on every read */
	for (int d = 0; d < p->ndays; d++) {
		double x;
		promo_day_name(p, d, day);
		forget(day);
		if ((x = days(-1, &pending)) > worst) {
			worst = x;
			memcpy(busiest, day, sizeof day);
		}
	}
	printf("  %-58s %7.1f ms   (%s)\n", "days: one day counted, the rest kept: the slowest day",
	       worst, busiest);
	forget(NULL);
	printf("  days: filled within the console's 80 ms budget, read by read:");
	do {
		printf(" %.0f", days(80, &pending));
		reads++;
	} while (pending > 0 && reads < 100);
	printf(" ms (%d reads)\n", reads);

	for (int i = 0; i < runs; i++) {
		int64_t t0 = ld_mono_us();
		if (campaign_outbox_json(l, p, now, 50, &o) != LD_OK)
			die("outbox");
		t[i] = ms_since(t0);
		json_object_put(o);
	}
	report("outbox: backlog, dead events", t, runs);
	for (int i = 0; i < runs; i++) {
		int64_t t0 = ld_mono_us();
		if (campaign_watch_json(l, p, 20, &o) != LD_OK)
			die("watch");
		t[i] = ms_since(t0);
		if (i + 1 < runs)
			json_object_put(o);
	}
	report("watch: top inviters, refused claims by client", t, runs);
	/* the top inviter's story is the longest a user has */
	json_object_object_get_ex(o, "inviters", &a);
	if (json_object_array_length(a) > 0) {
		struct json_object *u;
		char uid[80];
		json_object_object_get_ex(json_object_array_get_idx(a, 0), "user", &u);
		snprintf(uid, sizeof uid, "%s", json_object_get_string(u));
		for (int i = 0; i < runs; i++) {
			struct json_object *h;
			int64_t t0 = ld_mono_us();
			if (history_json(l, p, uid, now, HISTORY_SUPPORT, &h) != LD_OK)
				die("history");
			t[i] = ms_since(t0);
			json_object_put(h);
		}
		report("user: the top inviter's story", t, runs);
	}
	json_object_put(o);
	ledger_free(l);
	return 0;
}
