/*
 * cmd_stats.c - stats PROMO [--json] (the ledger per local day) and
 * promo simulate FILE (a dry run of a promotion file; see the model in
 * lib/stats.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ctl.h"
#include "stats.h"

/* v with thousands separators ("128,401") in buf. */
static const char *num(int64_t v, char buf[32])
{
	char tmp[32];
	int n, j = 0, neg = v < 0;

	n = snprintf(tmp, sizeof tmp, "%lld", (long long)(neg ? -v : v));
	if (neg)
		buf[j++] = '-';
	for (int i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[j++] = ',';
		buf[j++] = tmp[i];
	}
	buf[j] = '\0';
	return buf;
}

/* "a/b" with separators, for table cells. */
static const char *pair(int64_t a, int64_t b, char buf[72])
{
	char x[32], y[32];

	snprintf(buf, 72, "%s/%s", num(a, x), num(b, y));
	return buf;
}

static void stats_table(const struct promo *p, const struct stats_day *days)
{
	int64_t tv = 0, ti = 0, td = 0, *tw = xcalloc(p->nprizes + 1, sizeof *tw);
	int64_t *tl = xcalloc(p->nprizes + 1, sizeof *tl);
	char a[32], b[32], c[32], cell[72];

	printf("promotion '%s' (%s..%s, %s); prizes: won/left of the day's stock\n", p->id,
	       p->first_day, p->last_day, p->time_zone);
	printf("%-10s %9s %9s %9s", "day", "visits", "invites", "draws");
	for (size_t i = 0; i < p->nprizes; i++)
		printf(" %17.17s", p->prizes[i].id);
	putchar('\n');
	for (int d = 0; d < p->ndays; d++) {
		printf("%-10s %9s %9s %9s", days[d].day, num(days[d].visits, a),
		       num(days[d].invites, b), num(days[d].draws, c));
		for (size_t i = 0; i < p->nprizes; i++) {
			printf(" %17s", pair(days[d].wins[i], days[d].left[i], cell));
			tw[i] += days[d].wins[i];
			tl[i] += days[d].left[i];
		}
		putchar('\n');
		tv += days[d].visits;
		ti += days[d].invites;
		td += days[d].draws;
	}
	printf("%-10s %9s %9s %9s", "total", num(tv, a), num(ti, b), num(td, c));
	for (size_t i = 0; i < p->nprizes; i++)
		printf(" %17s", pair(tw[i], tl[i], cell));
	putchar('\n');
	free(tw);
	free(tl);
}

/* stats PROMO [--json]: per local day visits, invites credited, draws,
 * wins and stock left per prize. */
static int stats_run(struct ctl *c, const struct ctl_call *call)
{
	const struct promo *p = ctl_promo(c, call->argv[0]);
	int64_t now = ld_now_ms();
	struct stats_day *days;

	if (stats_read(c->ledger, p, now, -1, &days, NULL) != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	if (ctl_flag(call, "json"))
		ctl_print_json(stats_json(p, days, now));
	else
		stats_table(p, days);
	stats_days_free(days, p->ndays);
	return 0;
}

static void out_time(int minute, char buf[8])
{
	if (minute < 0)
		snprintf(buf, 8, "-");
	else
		snprintf(buf, 8, "%02d:%02d", minute / 60 % 100, minute % 60);
}

/* The per-hour rows of the paced prizes of one simulated day. */
static void sim_hours(const struct promo *p, const struct sim_day *sd)
{
	char a[32], cell[72];

	printf("    %-5s %9s", "hour", "draws");
	for (size_t i = 0; i < p->nprizes; i++)
		if (p->prizes[i].release == RELEASE_EVEN)
			printf(" %17.17s", p->prizes[i].id);
	printf("   (paced: won/open by the hour's end)\n");
	for (int h = 0; h < 24; h++) {
		printf("    %02d:00 %9s", h, num((int64_t)(sd->hour_draws[h] + 0.5), a));
		for (size_t i = 0; i < p->nprizes; i++) {
			double won = 0;
			if (p->prizes[i].release != RELEASE_EVEN)
				continue;
			for (int k = 0; k <= h; k++)
				won += sd->prize[i].hour_wins[k];
			printf(" %17s",
			       pair((int64_t)(won + 0.5), sd->prize[i].hour_open[h], cell));
		}
		putchar('\n');
	}
}

static void sim_print(const struct promo *p, const char *path, const struct sim_options *o,
		      const struct sim_result *r, int hourly)
{
	char a[32], b[32], cell[72], t[8];
	int64_t stock = 0;
	double wins = 0;

	printf("dry run of promotion '%s' from '%s' (nothing is written)\n", p->id, path);
	printf("%d days %s..%s (%s); %s participants, first visits spread evenly over the days\n",
	       p->ndays, p->first_day, p->last_day, p->time_zone, num(o->participants, a));
	if (o->draws_per_user >= 0)
		printf("%.2f draws per participant (--draws-per-user)", r->draws_per_user);
	else
		printf("%.2f draws per participant (visit %lld + %.0f%% invited x (invitee %lld"
		       " + inviter %lld))",
		       r->draws_per_user, (long long)p->grant_visit, o->invited * 100,
		       (long long)p->grant_invitee, (long long)p->grant_inviter);
	printf(", on the day of the first visit; %s\n",
	       o->seed ? "one sampled run" : "expected values");
	printf("%-10s %9s", "day", "draws");
	for (size_t i = 0; i < p->nprizes; i++)
		printf(" %17.17s %5s", p->prizes[i].id, "out");
	printf("\n");
	for (int d = 0; d < r->ndays; d++) {
		const struct sim_day *sd = &r->days[d];
		printf("%-10s %9s", sd->day, num((int64_t)(sd->draws + 0.5), a));
		for (size_t i = 0; i < p->nprizes; i++) {
			out_time(sd->prize[i].out_minute, t);
			printf(" %17s %5s",
			       pair((int64_t)(sd->prize[i].wins + 0.5), sd->prize[i].stock, cell),
			       t);
		}
		putchar('\n');
		if (hourly)
			sim_hours(p, sd);
	}
	printf("%-10s %9s", "total", num((int64_t)(r->total_draws + 0.5), a));
	for (size_t i = 0; i < p->nprizes; i++) {
		printf(" %17s %5s",
		       pair((int64_t)(r->total_wins[i] + 0.5), r->total_stock[i], cell), "");
		stock += r->total_stock[i];
		wins += r->total_wins[i];
	}
	putchar('\n');
	printf("total stock %s; expected wins %s (%.1f%% of the stock)\n", num(stock, a),
	       num((int64_t)(wins + 0.5), b), stock ? 100.0 * wins / (double)stock : 0.0);
}

/* A modelled (fractional) count for JSON, to two decimals. */
static struct json_object *json_count(double v)
{
	char buf[64];

	snprintf(buf, sizeof buf, "%.2f", v);
	return json_object_new_double_s(v, buf);
}

/* The dry run as JSON: the options, each day, the totals. */
static struct json_object *sim_json(const struct promo *p, const struct sim_options *o,
				    const struct sim_result *r, int hourly)
{
	struct json_object *top = json_object_new_object(), *days = json_object_new_array();
	struct json_object *totals = json_object_new_object(), *tp = json_object_new_object();
	int64_t stock = 0;
	double wins = 0;

	json_object_object_add(top, "promotion", json_object_new_string(p->id));
	json_object_object_add(top, "time_zone", json_object_new_string(p->time_zone));
	json_object_object_add(top, "participants", json_object_new_int64(o->participants));
	json_object_object_add(top, "draws_per_user", json_count(r->draws_per_user));
	json_object_object_add(top, "seed",
			       o->seed ? json_object_new_int64((int64_t)o->seed) : NULL);
	for (int d = 0; d < r->ndays; d++) {
		const struct sim_day *sd = &r->days[d];
		struct json_object *day = json_object_new_object(),
				   *prizes = json_object_new_object();
		json_object_object_add(day, "day", json_object_new_string(sd->day));
		json_object_object_add(day, "draws", json_count(sd->draws));
		for (size_t i = 0; i < p->nprizes; i++) {
			struct json_object *z = json_object_new_object();
			char t[8];
			json_object_object_add(z, "wins", json_count(sd->prize[i].wins));
			json_object_object_add(z, "stock",
					       json_object_new_int64(sd->prize[i].stock));
			out_time(sd->prize[i].out_minute, t);
			json_object_object_add(
				z, "out_at",
				sd->prize[i].out_minute < 0 ? NULL : json_object_new_string(t));
			if (hourly && p->prizes[i].release == RELEASE_EVEN) {
				struct json_object *hw = json_object_new_array();
				struct json_object *ho = json_object_new_array();
				for (int h = 0; h < 24; h++) {
					json_object_array_add(
						hw, json_count(sd->prize[i].hour_wins[h]));
					json_object_array_add(
						ho,
						json_object_new_int64(sd->prize[i].hour_open[h]));
				}
				json_object_object_add(z, "hour_wins", hw);
				json_object_object_add(z, "hour_open", ho);
			}
			json_object_object_add(prizes, p->prizes[i].id, z);
		}
		if (hourly) {
			struct json_object *hd = json_object_new_array();
			for (int h = 0; h < 24; h++)
				json_object_array_add(hd, json_count(sd->hour_draws[h]));
			json_object_object_add(day, "hour_draws", hd);
		}
		json_object_object_add(day, "prizes", prizes);
		json_object_array_add(days, day);
	}
	json_object_object_add(top, "days", days);
	for (size_t i = 0; i < p->nprizes; i++) {
		struct json_object *z = json_object_new_object();
		json_object_object_add(z, "wins", json_count(r->total_wins[i]));
		json_object_object_add(z, "stock", json_object_new_int64(r->total_stock[i]));
		json_object_object_add(tp, p->prizes[i].id, z);
		stock += r->total_stock[i];
		wins += r->total_wins[i];
	}
	json_object_object_add(totals, "draws", json_count(r->total_draws));
	json_object_object_add(totals, "wins", json_count(wins));
	json_object_object_add(totals, "stock", json_object_new_int64(stock));
	json_object_object_add(totals, "prizes", tp);
	json_object_object_add(top, "totals", totals);
	return top;
}

/* promo simulate FILE --participants N [--draws-per-user K] [--invited F]
 * [--seed S] [--hourly] [--json]: reads the file only, never the
 * database. */
static int simulate_run(struct ctl *c, const struct ctl_call *call)
{
	struct sim_options o = { -1, -1, 0.5, 0 };
	const char *path = call->argv[0];
	struct sim_result r;
	struct promo *p;

	(void)c;
	o.participants = ctl_number(call, "participants", 0, 1000000000, -1);
	o.draws_per_user = ctl_real(call, "draws-per-user", 0, 1000, -1);
	o.invited = ctl_real(call, "invited", 0, 1, 0.5);
	o.seed = (uint64_t)ctl_number(call, "seed", 1, 1000000000000000LL, 0);
	p = ctl_read_promo(path);
	if (stats_simulate(p, &o, &r) != LD_OK) {
		promo_free(p);
		ctl_die("simulate: options out of range");
	}
	if (ctl_flag(call, "json"))
		ctl_print_json(sim_json(p, &o, &r, ctl_flag(call, "hourly")));
	else
		sim_print(p, path, &o, &r, ctl_flag(call, "hourly"));
	stats_sim_release(&r);
	promo_free(p);
	return 0;
}

/* clang-format off */
const struct ctl_cmd ctl_cmds_stats[] = {
	{ "promo", "simulate", simulate_run, "FILE", 1, 1, 1,
	  "a dry run of a promotion file: wins and stock per day (writes nothing)",
	  "A dry run of the promotion file FILE, before launch: participants' first\n"
	  "visits spread evenly over the days, each rolling all their dice that day\n"
	  "(visit + F x (invitee + inviter) dice, F = --invited), and per day the\n"
	  "draws, the wins/stock of each prize and when it ran out, then the totals.\n"
	  "Expected values, or with --seed one sampled run. Reads no config and no\n"
	  "database.",
	  NULL,
	  { { "participants", "N", "how many people take part", 1 },
	    { "draws-per-user", "K", "dice per participant instead of the model's", 0 },
	    { "invited", "F", "share of participants who came through an invite (0.5)", 0 },
	    { "seed", "S", "sample one run with this seed instead of expected values", 0 },
	    { "hourly", NULL, "also each hour of the paced (\"release\": \"even\") prizes", 0 },
	    CTL_OPT_JSON, { NULL } } },
	{ "stats", NULL, stats_run, "PROMO", 1, 1, 0,
	  "per local day: visits, invites credited, draws, wins and stock left",
	  "Per local day of promotion PROMO: visit grants, invitees credited, draws,\n"
	  "and for each prize won/left of the day's stock, then the totals. --json\n"
	  "adds grants by reason, refused claims by reason and the stock opened so\n"
	  "far. A finished day is counted once and kept in the ledger; the first\n"
	  "run after a campaign counts every day (a few seconds on a large one).",
	  "0 shown; 2 no such promotion, or cannot run (usage, config, database)",
	  { CTL_OPT_JSON, { NULL } } },
	{ NULL },
};
/* clang-format on */
