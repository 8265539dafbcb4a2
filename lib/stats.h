/*
 * stats.h - what operators read about a promotion: the ledger's numbers
 * per local day (stats_read), and a dry run of a promotion file before
 * launch (stats_simulate), which touches no database.
 */
#ifndef LD_STATS_H
#define LD_STATS_H

#include "ledger.h"
#include "promo.h"
#include "rules.h"

/* The reasons of a grant, as the ledger's grants.reason says them. */
enum stats_reason {
	STATS_VISIT,
	STATS_INVITEE,
	STATS_INVITER,
	STATS_SUPPORT,
	STATS_REVOKE,
	STATS_REASONS
};
/* "visit", "invitee", ... (NULL past the end). */
const char *stats_reason_name(enum stats_reason r);

/* The refused claims' reasons: the rules' outcomes (rules.h), indexed by
 * enum rule_outcome; only claim refusals are ever counted. */
#define STATS_OUTCOMES 16

/*
 * One local day of a promotion as the ledger has it. wins, stock, left
 * and open have p->nprizes entries each.
 */
struct stats_day {
	char day[11];
	int finished;    /* over for good (STATS_SETTLE_MS past its end) */
	int pending;     /* finished, not counted yet: its numbers are 0 (the
			   * budget ran out; a later read counts it) */
	int64_t visits;  /* visit grants (= grants[STATS_VISIT]) */
	int64_t invites; /* invitees credited (= grants[STATS_INVITEE]) */
	int64_t draws;
	int64_t grants[STATS_REASONS];   /* grants by reason */
	int64_t dice[STATS_REASONS];     /* dice they gave (a revoke's are negative) */
	int64_t refused[STATS_OUTCOMES]; /* refused claims by the rule's outcome */
	int64_t *wins;                   /* per prize */
	int64_t *stock;                  /* the day's stock per prize */
	int64_t *left;                   /* stock - taken, per prize */
	int64_t *open;                   /* the stock opened by now_ms: all of a past day's,
			   * the share of today's a paced prize has released,
			   * none of a day to come */
};

/*
 * A day is finished STATS_SETTLE_MS after its end: nothing is written
 * under it any more (a transaction that began before midnight has long
 * committed), so its numbers never change again. They are counted once,
 * by the first read that finds them missing, and kept in the ledger's
 * stats_days; a read after that takes them from there and counts only
 * the days not finished, each from its own range of the per-day indexes
 * (migration 011).
 */
#define STATS_SETTLE_MS (10 * 60 * 1000LL)

/*
 * Every day of p (p->ndays of them, in order) at now_ms into *out, which
 * the caller frees with stats_days_free(*out, p->ndays). The days not
 * finished, and the kept numbers of the finished ones, are read in one
 * snapshot. Finished days not kept yet are counted and kept while
 * budget_ms (read on the monotonic clock; < 0: no limit) lasts - a day
 * is begun only when the slowest one counted so far would still end
 * within it, at least one day is counted each time - and those left are
 * marked pending, with zeros, and *pending (may be NULL) says
 * how many. Keeping them is best effort: a ledger that cannot be written
 * (read-only, busy) only means they are counted again next time.
 * Returns LD_OK or a database error.
 */
enum ld_err stats_read(struct ledger *l, const struct promo *p, int64_t now_ms, int64_t budget_ms,
		       struct stats_day **out, int *pending);
void stats_days_free(struct stats_day *days, int n);

/* One prize's stock on one local day, as the ledger has it now. */
struct stats_stock {
	int64_t stock;       /* the day's stock */
	int64_t left;        /* stock - taken */
	int64_t sold_out_ms; /* when the last of it was won (left 0); 0: some is left */
};

/* The stock of each prize of p on day d (0..p->ndays - 1) into out
 * (p->nprizes entries), in one read snapshot: a few rows, and one look
 * at an index for each prize sold out. Returns LD_OK or a database
 * error. */
enum ld_err stats_stock_day(struct ledger *l, const struct promo *p, int d,
			    struct stats_stock *out);

/*
 * The days as JSON (a new object the caller puts): "promotion",
 * "time_zone", "today" (the index of now_ms's day, null outside the
 * days), "pending" (days not counted yet) and "days", an array of
 * "day", "finished", "pending", "visits", "invites", "draws", "grants"
 * (by reason: "count" and "dice"), "refused" (refused claims by reason)
 * and "prizes" (by id: "won", "stock", "left", "open"). What
 * `luckydicectl stats --json` prints and the console draws.
 */
struct json_object;
struct json_object *stats_json(const struct promo *p, const struct stats_day *days, int64_t now_ms);

/*
 * The dry run's model, kept simple on purpose:
 *  - participants' first visits are spread evenly over the days (the
 *    remainder goes to the first days), and a participant rolls all of
 *    their dice on that day, at instants spread evenly over it;
 *  - a share `invited` of participants arrived through an invite, so on
 *    average a participant holds visit + invited * (invitee + inviter)
 *    dice (the inviter's grant counted on the invitee's day); this is
 *    the default draws_per_user;
 *  - prize i is picked with its probability p_i, so the demand for it is
 *    draws * p_i, served from the stock open at that instant: the whole
 *    day's stock from midnight, or for "even" prizes the share of the
 *    day elapsed. Wins = min(stock open, demand so far), minute by minute.
 * With seed != 0 the same model is sampled instead of averaged: each
 * draw gets a random instant of its day and a uniform number in
 * [0, PROMO_SCALE) from a seeded generator (ld_rng_seeded), run through
 * promo_pick against the open stock (repeatable for a given seed).
 */
struct sim_options {
	int64_t participants;
	double draws_per_user; /* < 0: the model's average dice */
	double invited;        /* share of invited participants, 0..1 */
	uint64_t seed;         /* 0: expected values */
};

#define SIM_SLOTS 1440 /* minutes of a day */

struct sim_prize_day {
	double wins;    /* expected (or sampled) wins */
	int64_t stock;  /* the day's stock */
	int out_minute; /* minute of the day the stock ran out, -1 never */
	double hour_wins[24];
	int64_t hour_open[24]; /* stock open at the end of each hour */
};

struct sim_day {
	char day[11];
	double participants, draws;
	double hour_draws[24];
	struct sim_prize_day *prize; /* nprizes */
};

struct sim_result {
	double draws_per_user;
	int ndays;
	size_t nprizes;
	struct sim_day *days;
	double total_draws;
	double *total_wins;   /* per prize */
	int64_t *total_stock; /* per prize */
};

/* Runs the model for p into r (released with stats_sim_release).
 * Returns LD_ERR_INVALID when the options are out of range. */
enum ld_err stats_simulate(const struct promo *p, const struct sim_options *o,
			   struct sim_result *r);
void stats_sim_release(struct sim_result *r);

#endif
