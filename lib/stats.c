/*
 * stats.c - a promotion's numbers per local day from the ledger, and the
 * dry run of a promotion file (the model is described in stats.h).
 */
#include <stdlib.h>
#include <string.h>

#include "stats.h"

static const char SQL_VISITS[] =
	"SELECT day, count(*) FROM grants WHERE promo = ?1 AND reason = 'visit' GROUP BY day";
static const char SQL_INVITES[] =
	"SELECT day, count(*) FROM invites WHERE promo = ?1 GROUP BY day";
static const char SQL_DRAWS[] =
	"SELECT day, count(*) FROM draws WHERE promo = ?1 GROUP BY day";
static const char SQL_WINS[] =
	"SELECT day, count(*), prize FROM draws WHERE promo = ?1 AND prize IS NOT NULL"
	" GROUP BY day, prize";
static const char SQL_TAKEN[] =
	"SELECT day, taken, prize FROM stock WHERE promo = ?1";

enum stat_col { COL_VISITS, COL_INVITES, COL_DRAWS, COL_WINS, COL_TAKEN };

/* Runs one "day, n[, prize]" query for p and adds n where it belongs.
 * Rows of days outside the promotion or of prizes no longer in its file
 * are skipped. */
static enum ld_err add_rows(struct db *db, const struct promo *p, const char *sql,
			    enum stat_col col, struct stats_day *days)
{
	struct db_stmt *st;
	enum ld_err e;

	if ((e = db_query(db, &st, sql, "t", p->id)) != LD_OK)
		return e;
	while (db_step(st) > 0) {
		const char *day = db_col_text(st, 0);
		int d = day ? promo_day_index(p, day) : -1;
		int64_t n = db_col_int(st, 1);
		const struct promo_prize *z = NULL;

		if (d < 0)
			continue;
		if (col >= COL_WINS) {
			const char *id = db_col_text(st, 2);
			if (!id || !(z = promo_prize_find(p, id)))
				continue;
		}
		switch (col) {
		case COL_VISITS: days[d].visits += n; break;
		case COL_INVITES: days[d].invites += n; break;
		case COL_DRAWS: days[d].draws += n; break;
		case COL_WINS: days[d].wins[z - p->prizes] += n; break;
		case COL_TAKEN: days[d].left[z - p->prizes] -= n; break;
		}
	}
	return db_end(db, st, "cannot read stats");
}

enum ld_err stats_read(struct ledger *l, const struct promo *p, struct stats_day **out)
{
	static const char *const sqls[] = { SQL_VISITS, SQL_INVITES, SQL_DRAWS, SQL_WINS,
					    SQL_TAKEN };
	struct stats_day *days = xcalloc((size_t)p->ndays, sizeof *days);
	struct db *db = ledger_db(l);
	enum ld_err e;

	*out = NULL;
	for (int d = 0; d < p->ndays; d++) {
		promo_day_name(p, d, days[d].day);
		days[d].wins = xcalloc(p->nprizes + 1, sizeof(int64_t));
		days[d].stock = xcalloc(p->nprizes + 1, sizeof(int64_t));
		days[d].left = xcalloc(p->nprizes + 1, sizeof(int64_t));
		for (size_t i = 0; i < p->nprizes; i++)
			days[d].stock[i] = days[d].left[i] = promo_stock(p, &p->prizes[i], d);
	}
	/* one read snapshot for all five queries */
	e = db_read_begin(db);
	for (int c = COL_VISITS; e == LD_OK && c <= COL_TAKEN; c++)
		e = add_rows(db, p, sqls[c], (enum stat_col)c, days);
	db_read_end(db);
	if (e != LD_OK) {
		stats_days_free(days, p->ndays);
		return e;
	}
	*out = days;
	return LD_OK;
}

void stats_days_free(struct stats_day *days, int n)
{
	if (!days)
		return;
	for (int d = 0; d < n; d++) {
		free(days[d].wins);
		free(days[d].stock);
		free(days[d].left);
	}
	free(days);
}

static const char SQL_STOCK_DAY[] = "SELECT prize, taken FROM stock WHERE promo = ?1 AND day = ?2";
/* The day's last win of the prize: the one that took the last of it once
 * none is left. The index of wins by day ends with the draw's id. */
static const char SQL_LAST_WIN[] =
	"SELECT created_at FROM draws WHERE id = (SELECT max(id) FROM draws"
	" WHERE promo = ?1 AND day = ?2 AND prize = ?3)";

enum ld_err stats_stock_day(struct ledger *l, const struct promo *p, int d,
			    struct stats_stock *out)
{
	static const char what[] = "cannot read the stock";
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	char day[11];
	enum ld_err e;

	promo_day_name(p, d, day);
	for (size_t i = 0; i < p->nprizes; i++) {
		int64_t stock = promo_stock(p, &p->prizes[i], d);
		out[i] = (struct stats_stock){ .stock = stock, .left = stock };
	}
	if ((e = db_read_begin(db)) != LD_OK)
		return e;
	if ((e = db_query(db, &st, SQL_STOCK_DAY, "tt", p->id, day)) == LD_OK) {
		while (db_step(st) > 0) {
			const char *id = db_col_text(st, 0);
			const struct promo_prize *z = id ? promo_prize_find(p, id) : NULL;
			if (z)
				out[z - p->prizes].left -= db_col_int(st, 1);
		}
		e = db_end(db, st, what);
	}
	for (size_t i = 0; e == LD_OK && i < p->nprizes; i++)
		if (out[i].stock > 0 && out[i].left <= 0)
			e = db_int(db, SQL_LAST_WIN, what, &out[i].sold_out_ms, NULL, "ttt", p->id,
				   day, p->prizes[i].id);
	db_read_end(db);
	return e;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The instant that ends part k of n of day d. */
static int64_t slot_end(const struct promo *p, int d, int k, int n)
{
	int64_t start = p->day_start_ms[d], len = p->day_start_ms[d + 1] - start;
	return start + (int64_t)((__int128)len * k / n);
}

/* Expected values, minute by minute. */
static void sim_expect(const struct promo *p, int d, struct sim_day *sd)
{
	for (size_t i = 0; i < p->nprizes; i++) {
		const struct promo_prize *z = &p->prizes[i];
		struct sim_prize_day *pz = &sd->prize[i];
		double won = 0, rate = sd->draws * ((double)(z->hi - z->lo) / PROMO_SCALE) / SIM_SLOTS;

		for (int m = 0; m < SIM_SLOTS; m++) {
			/* the expectation uses the unrounded share of paced stock */
			double open = z->release == RELEASE_EVEN ?
				(double)pz->stock * (m + 1) / SIM_SLOTS : (double)pz->stock;
			double w = won + rate < open ? won + rate : open;

			if (w < won) /* open never shrinks; guard rounding */
				w = won;
			pz->hour_wins[m / 60] += w - won;
			won = w;
			if (pz->out_minute < 0 && pz->stock > 0 && won >= (double)pz->stock - 1e-9)
				pz->out_minute = m;
		}
		pz->wins = won;
	}
}

/* One sampled run of the day's draws in time order. */
static void sim_sample(const struct promo *p, int d, struct sim_day *sd,
		       const struct ld_rng *rng)
{
	int64_t n = (int64_t)(sd->draws + 0.5), start = p->day_start_ms[d];
	int64_t len = p->day_start_ms[d + 1] - start;
	int64_t *at = xcalloc((size_t)n + 1, sizeof *at);
	int64_t *taken = xcalloc(p->nprizes + 1, sizeof *taken);

	for (int64_t k = 0; k < n; k++)
		at[k] = start + (int64_t)ld_uniform(rng, (uint32_t)len);
	qsort(at, (size_t)n, sizeof *at, cmp_i64);
	for (int64_t k = 0; k < n; k++) {
		int i = promo_pick(p, ld_uniform(rng, PROMO_SCALE));
		struct sim_prize_day *pz;

		if (i < 0 || taken[i] >= promo_released(p, &p->prizes[i], d, at[k]))
			continue;
		pz = &sd->prize[i];
		taken[i]++;
		pz->wins += 1;
		pz->hour_wins[(at[k] - start) * 24 / len] += 1;
		if (taken[i] == pz->stock)
			pz->out_minute = (int)((at[k] - start) * SIM_SLOTS / len);
	}
	free(taken);
	free(at);
}

enum ld_err stats_simulate(const struct promo *p, const struct sim_options *o,
			   struct sim_result *r)
{
	uint64_t seed = o->seed;
	struct ld_rng rng = ld_rng_seeded(&seed);

	memset(r, 0, sizeof *r);
	if (o->participants < 0 || o->participants > 1000000000 || !(o->invited >= 0) ||
	    o->invited > 1 || o->draws_per_user > 1000)
		return LD_ERR_INVALID;
	r->draws_per_user = o->draws_per_user >= 0 ? o->draws_per_user :
		(double)p->grant_visit + o->invited * (double)(p->grant_invitee + p->grant_inviter);
	r->ndays = p->ndays;
	r->nprizes = p->nprizes;
	r->days = xcalloc((size_t)p->ndays, sizeof *r->days);
	r->total_wins = xcalloc(p->nprizes + 1, sizeof(double));
	r->total_stock = xcalloc(p->nprizes + 1, sizeof(int64_t));
	for (int d = 0; d < p->ndays; d++) {
		struct sim_day *sd = &r->days[d];

		promo_day_name(p, d, sd->day);
		sd->participants = (double)(o->participants / p->ndays +
					    (d < o->participants % p->ndays));
		sd->draws = sd->participants * r->draws_per_user;
		for (int h = 0; h < 24; h++)
			sd->hour_draws[h] = sd->draws / 24;
		sd->prize = xcalloc(p->nprizes + 1, sizeof *sd->prize);
		for (size_t i = 0; i < p->nprizes; i++) {
			sd->prize[i].stock = promo_stock(p, &p->prizes[i], d);
			sd->prize[i].out_minute = -1;
			for (int h = 0; h < 24; h++)
				sd->prize[i].hour_open[h] = promo_released(p, &p->prizes[i], d,
									   slot_end(p, d, h + 1, 24));
		}
		if (o->seed)
			sim_sample(p, d, sd, &rng);
		else
			sim_expect(p, d, sd);
		r->total_draws += sd->draws;
		for (size_t i = 0; i < p->nprizes; i++) {
			r->total_wins[i] += sd->prize[i].wins;
			r->total_stock[i] += sd->prize[i].stock;
		}
	}
	return LD_OK;
}

void stats_sim_release(struct sim_result *r)
{
	for (int d = 0; r->days && d < r->ndays; d++)
		free(r->days[d].prize);
	free(r->days);
	free(r->total_wins);
	free(r->total_stock);
	memset(r, 0, sizeof *r);
}
