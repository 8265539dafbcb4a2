/*
 * stats.h - what operators read about a promotion: the ledger's numbers
 * per local day (stats_read), and a dry run of a promotion file before
 * launch (stats_simulate), which touches no database.
 */
#ifndef LD_STATS_H
#define LD_STATS_H

#include "ledger.h"
#include "promo.h"

/* One local day of a promotion as the ledger has it. wins, stock and left
 * have p->nprizes entries each. */
struct stats_day {
	char day[11];
	int64_t visits;   /* visit grants */
	int64_t invites;  /* invitees credited */
	int64_t draws;
	int64_t *wins;    /* per prize */
	int64_t *stock;   /* the day's stock per prize */
	int64_t *left;    /* stock - taken, per prize */
};

/* Every day of p (p->ndays of them, in order) into *out, which the
 * caller frees with stats_days_free(*out, p->ndays). Read in one
 * snapshot. Returns LD_OK or a database error. */
enum ld_err stats_read(struct ledger *l, const struct promo *p,
		       struct stats_day **out);
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
	double wins;      /* expected (or sampled) wins */
	int64_t stock;    /* the day's stock */
	int out_minute;   /* minute of the day the stock ran out, -1 never */
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
