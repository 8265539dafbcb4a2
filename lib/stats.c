/*
 * stats.c - a promotion's numbers per local day from the ledger, and the
 * dry run of a promotion file (the model is described in stats.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "stats.h"

static const char *const reasons[STATS_REASONS] = {
	[STATS_VISIT] = "visit",     [STATS_INVITEE] = "invitee", [STATS_INVITER] = "inviter",
	[STATS_SUPPORT] = "support", [STATS_REVOKE] = "revoke",
};

const char *stats_reason_name(enum stats_reason r)
{
	return r < STATS_REASONS ? reasons[r] : NULL;
}

/* What a counted number is of: the kinds of stats_days rows. */
enum kind { K_GRANT, K_DRAW, K_WIN, K_REFUSAL, K_DAY, K_KINDS };
static const char *const kinds[K_KINDS] = { "grant", "draw", "win", "refusal", "day" };

/* One number of one day, as counted or kept. */
struct row {
	int d;
	enum kind kind;
	char key[PRIZE_ID_MAX + 1];
	int64_t n, amount;
};

/* A growing array of rows. */
struct rows {
	struct row *r;
	size_t n, cap;
};

static void rows_add(struct rows *rs, int d, enum kind kind, const char *key, int64_t n,
		     int64_t amount)
{
	struct row *x;

	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 64;
		rs->r = xrealloc(rs->r, rs->cap * sizeof *rs->r);
	}
	x = &rs->r[rs->n++];
	x->d = d;
	x->kind = kind;
	snprintf(x->key, sizeof x->key, "%s", key ? key : "");
	x->n = n;
	x->amount = amount;
}

/* Adds row x to its day. A reason, prize or outcome this program does
 * not know (a prize no longer in the file) is left out. */
static void apply(const struct promo *p, struct stats_day *days, const struct row *x)
{
	struct stats_day *sd = &days[x->d];
	const struct promo_prize *z;

	switch (x->kind) {
	case K_GRANT:
		for (int r = 0; r < STATS_REASONS; r++)
			if (strcmp(x->key, reasons[r]) == 0) {
				sd->grants[r] += x->n;
				sd->dice[r] += x->amount;
			}
		break;
	case K_DRAW: sd->draws += x->n; break;
	case K_WIN:
		if ((z = promo_prize_find(p, x->key)))
			sd->wins[z - p->prizes] += x->n;
		break;
	case K_REFUSAL:
		for (int o = 1; o < STATS_OUTCOMES; o++)
			if (strcmp(x->key, rule_code((enum rule_outcome)o)) == 0)
				sd->refused[o] += x->n;
		break;
	case K_DAY:
	case K_KINDS: break;
	}
}

/*
 * The counts of days from..to (names, inclusive) from the per-day
 * indexes: ?1 the promotion, ?2 and ?3 the days. Each statement's
 * columns are day, key, n, amount. The indexes lead with the day
 * (migration 013 says why): they are named, as SQLite would otherwise
 * take one that leads with the promotion and read all of its rows.
 * (INDEXED BY is SQLite's own: a PostgreSQL backend leaves it out.)
 */
static const char *const SQL_COUNT[] = {
	[K_GRANT] = "SELECT day, reason, count(*), sum(amount) FROM grants INDEXED BY grants_by_day"
		    " WHERE day >= ?2 AND day <= ?3 AND promo = ?1 GROUP BY day, reason",
	[K_DRAW] = "SELECT day, '', count(*), 0 FROM draws INDEXED BY draws_by_day"
		   " WHERE day >= ?2 AND day <= ?3 AND promo = ?1 GROUP BY day",
	[K_WIN] =
		"SELECT day, prize, count(*), 0 FROM draws"
		" WHERE promo = ?1 AND day >= ?2 AND day <= ?3 AND prize IS NOT NULL GROUP BY day, prize",
	[K_REFUSAL] = "SELECT day, reason, count(*), 0 FROM claim_refusals"
		      " INDEXED BY claim_refusals_by_day"
		      " WHERE day >= ?2 AND day <= ?3 AND promo = ?1 GROUP BY day, reason",
};

/* Counts days from..to of p into rs (rows of days outside the promotion
 * are left out). */
static enum ld_err count_days(struct db *db, const struct promo *p, int from, int to,
			      struct rows *rs)
{
	char a[11], b[11];
	enum ld_err e;

	promo_day_name(p, from, a);
	promo_day_name(p, to, b);
	for (int k = K_GRANT; k <= K_REFUSAL; k++) {
		struct db_stmt *st;

		if ((e = db_query(db, &st, SQL_COUNT[k], "ttt", p->id, a, b)) != LD_OK)
			return e;
		while (db_step(st) > 0) {
			const char *day = db_col_text(st, 0);
			int d = day ? promo_day_index(p, day) : -1;

			if (d >= from && d <= to)
				rows_add(rs, d, (enum kind)k, db_col_text(st, 1), db_col_int(st, 2),
					 db_col_int(st, 3));
		}
		if ((e = db_end(db, st, "cannot count the day")) != LD_OK)
			return e;
	}
	return LD_OK;
}

static const char SQL_KEPT[] = "SELECT day, kind, key, n, amount FROM stats_days WHERE promo = ?1";
static const char SQL_KEEP[] =
	"INSERT INTO stats_days (promo, day, kind, key, n, amount) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	" ON CONFLICT (promo, day, kind, key) DO NOTHING";
static const char SQL_TAKEN[] = "SELECT day, taken, prize FROM stock WHERE promo = ?1";

/* The kept numbers of p's finished days into rs; marks each kept day. */
static enum ld_err read_kept(struct db *db, const struct promo *p, const struct stats_day *days,
			     int *kept, struct rows *rs)
{
	struct db_stmt *st;
	enum ld_err e;

	if ((e = db_query(db, &st, SQL_KEPT, "t", p->id)) != LD_OK)
		return e;
	while (db_step(st) > 0) {
		const char *day = db_col_text(st, 0), *kind = db_col_text(st, 1);
		int d = day ? promo_day_index(p, day) : -1, k;

		for (k = 0; k < K_KINDS && !(kind && strcmp(kind, kinds[k]) == 0); k++)
			;
		if (d < 0 || k == K_KINDS || !days[d].finished)
			continue;
		if (k == K_DAY)
			kept[d] = 1;
		else
			rows_add(rs, d, (enum kind)k, db_col_text(st, 2), db_col_int(st, 3),
				 db_col_int(st, 4));
	}
	return db_end(db, st, "cannot read kept stats");
}

/* Subtracts what was taken of each day's stock from left. */
static enum ld_err read_taken(struct db *db, const struct promo *p, struct stats_day *days)
{
	struct db_stmt *st;
	enum ld_err e;

	if ((e = db_query(db, &st, SQL_TAKEN, "t", p->id)) != LD_OK)
		return e;
	while (db_step(st) > 0) {
		const char *day = db_col_text(st, 0), *id = db_col_text(st, 2);
		const struct promo_prize *z = id ? promo_prize_find(p, id) : NULL;
		int d = day ? promo_day_index(p, day) : -1;

		if (d >= 0 && z)
			days[d].left[z - p->prizes] -= db_col_int(st, 1);
	}
	return db_end(db, st, "cannot read stock");
}

/* Keeps the rows of the days counted now (every row of rs from index
 * first on), each day with its 'day' row, in one transaction. */
static enum ld_err keep(struct db *db, const struct promo *p, const struct rows *rs, size_t first,
			const int *counted)
{
	char day[11];
	enum ld_err e;

	if ((e = db_begin(db)) != LD_OK)
		return e;
	for (size_t i = first; i < rs->n; i++) {
		const struct row *x = &rs->r[i];
		promo_day_name(p, x->d, day);
		if ((e = db_exec(db, SQL_KEEP, "cannot keep stats", "ttttll", p->id, day,
				 kinds[x->kind], x->key, x->n, x->amount)) != LD_OK)
			goto fail;
	}
	for (int d = 0; d < p->ndays; d++) {
		if (!counted[d])
			continue;
		promo_day_name(p, d, day);
		if ((e = db_exec(db, SQL_KEEP, "cannot keep stats", "ttttll", p->id, day,
				 kinds[K_DAY], "", (int64_t)0, (int64_t)0)) != LD_OK)
			goto fail;
	}
	return db_commit(db);
fail:
	db_rollback(db);
	return e;
}

static struct stats_day *days_new(const struct promo *p, int64_t now_ms)
{
	struct stats_day *days = xcalloc((size_t)p->ndays, sizeof *days);

	for (int d = 0; d < p->ndays; d++) {
		promo_day_name(p, d, days[d].day);
		days[d].finished = p->day_start_ms[d + 1] + STATS_SETTLE_MS <= now_ms;
		days[d].wins = xcalloc(p->nprizes + 1, sizeof(int64_t));
		days[d].stock = xcalloc(p->nprizes + 1, sizeof(int64_t));
		days[d].left = xcalloc(p->nprizes + 1, sizeof(int64_t));
		days[d].open = xcalloc(p->nprizes + 1, sizeof(int64_t));
		for (size_t i = 0; i < p->nprizes; i++) {
			days[d].stock[i] = days[d].left[i] = promo_stock(p, &p->prizes[i], d);
			days[d].open[i] = promo_released(p, &p->prizes[i], d, now_ms);
		}
	}
	return days;
}

enum ld_err stats_read(struct ledger *l, const struct promo *p, int64_t now_ms, int64_t budget_ms,
		       struct stats_day **out, int *pending)
{
	struct stats_day *days = days_new(p, now_ms);
	int *kept = xcalloc((size_t)p->ndays + 1, sizeof *kept);
	int *counted = xcalloc((size_t)p->ndays + 1, sizeof *counted);
	int64_t t0 = ld_mono_us(), slowest = 0;
	struct db *db = ledger_db(l);
	struct rows rs = { NULL, 0, 0 };
	size_t first_counted;
	int live = 0, npending = 0;
	enum ld_err e;

	*out = NULL;
	if (pending)
		*pending = 0;
	while (live < p->ndays && days[live].finished)
		live++;
	/* one read snapshot: the kept days, the days not finished, the stock,
	 * and the finished days counted now */
	if ((e = db_read_begin(db)) != LD_OK)
		goto fail;
	if ((e = read_kept(db, p, days, kept, &rs)) != LD_OK ||
	    (live < p->ndays && (e = count_days(db, p, live, p->ndays - 1, &rs)) != LD_OK) ||
	    (e = read_taken(db, p, days)) != LD_OK) {
		db_read_end(db);
		goto fail;
	}
	first_counted = rs.n;
	/* a day is begun only when the slowest day so far would still end
	 * within the budget; the first is always begun, so that reads
	 * progress */
	for (int d = 0, any = 0; d < live; d++) {
		int64_t t1 = ld_mono_us();

		if (kept[d])
			continue;
		if (budget_ms >= 0 && any && t1 - t0 + slowest > budget_ms * 1000) {
			days[d].pending = 1;
			npending++;
			continue;
		}
		if ((e = count_days(db, p, d, d, &rs)) != LD_OK) {
			db_read_end(db);
			goto fail;
		}
		counted[d] = any = 1;
		if (ld_mono_us() - t1 > slowest)
			slowest = ld_mono_us() - t1;
	}
	db_read_end(db);
	for (int d = 0; d < live; d++)
		if (counted[d]) {
			/* best effort: see stats.h */
			(void)keep(db, p, &rs, first_counted, counted);
			break;
		}
	for (size_t i = 0; i < rs.n; i++)
		apply(p, days, &rs.r[i]);
	for (int d = 0; d < p->ndays; d++) {
		days[d].visits = days[d].grants[STATS_VISIT];
		days[d].invites = days[d].grants[STATS_INVITEE];
	}
	if (pending)
		*pending = npending;
	free(rs.r);
	free(kept);
	free(counted);
	*out = days;
	return LD_OK;
fail:
	free(rs.r);
	free(kept);
	free(counted);
	stats_days_free(days, p->ndays);
	return e;
}

void stats_days_free(struct stats_day *days, int n)
{
	if (!days)
		return;
	for (int d = 0; d < n; d++) {
		free(days[d].wins);
		free(days[d].stock);
		free(days[d].left);
		free(days[d].open);
	}
	free(days);
}

static const char SQL_STOCK_DAY[] = "SELECT prize, taken FROM stock WHERE promo = ?1 AND day = ?2";
/* The day's last win of the prize: the one that took the last of it once
 * none is left. The index of wins by day ends with the draw's id. */
static const char SQL_LAST_WIN[] =
	"SELECT created_at FROM draws WHERE id = (SELECT max(id) FROM draws"
	" WHERE promo = ?1 AND day = ?2 AND prize = ?3)";

enum ld_err stats_stock_day(struct ledger *l, const struct promo *p, int d, struct stats_stock *out)
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

/* The outcomes a refused claim is recorded with. */
static const enum rule_outcome refusal_outcomes[] = {
	RULE_SELF_INVITE,
	RULE_ALREADY_CREDITED,
	RULE_NOT_NEW_USER,
	RULE_CLAIM_LIMITED,
};

static struct json_object *day_json(const struct promo *p, const struct stats_day *sd)
{
	struct json_object *o = json_object_new_object(), *grants = json_object_new_object();
	struct json_object *refused = json_object_new_object(), *prizes = json_object_new_object();

	json_object_object_add(o, "day", json_object_new_string(sd->day));
	json_object_object_add(o, "finished", json_object_new_boolean(sd->finished));
	json_object_object_add(o, "pending", json_object_new_boolean(sd->pending));
	json_object_object_add(o, "visits", json_object_new_int64(sd->visits));
	json_object_object_add(o, "invites", json_object_new_int64(sd->invites));
	json_object_object_add(o, "draws", json_object_new_int64(sd->draws));
	for (int r = 0; r < STATS_REASONS; r++) {
		struct json_object *g = json_object_new_object();
		json_object_object_add(g, "count", json_object_new_int64(sd->grants[r]));
		json_object_object_add(g, "dice", json_object_new_int64(sd->dice[r]));
		json_object_object_add(grants, reasons[r], g);
	}
	json_object_object_add(o, "grants", grants);
	for (size_t i = 0; i < sizeof refusal_outcomes / sizeof refusal_outcomes[0]; i++)
		json_object_object_add(refused, rule_code(refusal_outcomes[i]),
				       json_object_new_int64(sd->refused[refusal_outcomes[i]]));
	json_object_object_add(o, "refused", refused);
	for (size_t i = 0; i < p->nprizes; i++) {
		struct json_object *z = json_object_new_object();
		json_object_object_add(z, "won", json_object_new_int64(sd->wins[i]));
		json_object_object_add(z, "stock", json_object_new_int64(sd->stock[i]));
		json_object_object_add(z, "left", json_object_new_int64(sd->left[i]));
		json_object_object_add(z, "open", json_object_new_int64(sd->open[i]));
		json_object_object_add(prizes, p->prizes[i].id, z);
	}
	json_object_object_add(o, "prizes", prizes);
	return o;
}

struct json_object *stats_json(const struct promo *p, const struct stats_day *days, int64_t now_ms)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
	int today = promo_day(p, now_ms), pending = 0;

	json_object_object_add(o, "promotion", json_object_new_string(p->id));
	json_object_object_add(o, "time_zone", json_object_new_string(p->time_zone));
	json_object_object_add(o, "today",
			       today >= 0 && today < p->ndays ? json_object_new_int(today) : NULL);
	for (int d = 0; d < p->ndays; d++) {
		pending += days[d].pending;
		json_object_array_add(arr, day_json(p, &days[d]));
	}
	json_object_object_add(o, "pending", json_object_new_int(pending));
	json_object_object_add(o, "days", arr);
	return o;
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
		double won = 0,
		       rate = sd->draws * ((double)(z->hi - z->lo) / PROMO_SCALE) / SIM_SLOTS;

		for (int m = 0; m < SIM_SLOTS; m++) {
			/* the expectation uses the unrounded share of paced stock */
			double open = z->release == RELEASE_EVEN
				? (double)pz->stock * (m + 1) / SIM_SLOTS
				: (double)pz->stock;
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
static void sim_sample(const struct promo *p, int d, struct sim_day *sd, const struct ld_rng *rng)
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

enum ld_err stats_simulate(const struct promo *p, const struct sim_options *o, struct sim_result *r)
{
	uint64_t seed = o->seed;
	struct ld_rng rng = ld_rng_seeded(&seed);

	memset(r, 0, sizeof *r);
	if (o->participants < 0 || o->participants > 1000000000 || !(o->invited >= 0) ||
	    o->invited > 1 || o->draws_per_user > 1000)
		return LD_ERR_INVALID;
	r->draws_per_user = o->draws_per_user >= 0 ? o->draws_per_user
						   : (double)p->grant_visit +
			o->invited * (double)(p->grant_invitee + p->grant_inviter);
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
				sd->prize[i].hour_open[h] = promo_released(
					p, &p->prizes[i], d, slot_end(p, d, h + 1, 24));
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
