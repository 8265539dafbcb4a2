/*
 * outbox.c - writing events into the outbox, and the dispatcher's half:
 * claims with a lease, outcomes, backoff, and the operator's list and
 * retry. HTTP itself lives in the dispatcher; this file knows rows only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "operator.h"
#include "outbox.h"

static const char SQL_OUTBOX_ADD[] =
	"INSERT INTO outbox (key, kind, promo, uid, payload, next_at, created_at, draw_id,"
	" invitee) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8) ON CONFLICT (key) DO NOTHING";

enum ld_err outbox_add(struct ledger *l, const char *kind, const char *key, const char *promo,
		       const char *uid, const char *payload, int64_t draw_id, const char *invitee,
		       int64_t now_ms)
{
	return db_exec(ledger_db(l), SQL_OUTBOX_ADD, "cannot add outbox event", "tttttlLt", key,
		       kind, promo, uid, payload, now_ms, draw_id > 0 ? &draw_id : NULL, invitee);
}

/* The kinds a mask admits, as SQL on parameters r (reward) and n
 * (notify), each bound to 1 or 0. */
#define KIND_FILTER(r, n)                                                   \
	" AND (CASE kind WHEN 'reward.issue' THEN CAST(?" #r " AS INTEGER)" \
	" ELSE CAST(?" #n " AS INTEGER) END) = 1"

static const char SQL_OUTBOX_CLAIM[] =
	"UPDATE outbox SET lease_until = ?1, attempts = attempts + 1"
	" WHERE id IN (SELECT id FROM outbox"
	"  WHERE state = 'pending' AND next_at <= ?2 AND lease_until <= ?2" KIND_FILTER(
		4, 5) " ORDER BY next_at LIMIT ?3)"
		      " RETURNING id, key, kind, promo, uid, payload, attempts";
/* On PostgreSQL dispatchers on many hosts claim at once: each skips the
 * rows another is claiming (SKIP LOCKED), and a row claimed since this
 * statement's snapshot is checked again against the outer WHERE. The
 * rows are chosen once, in a materialized CTE: as "id IN (SELECT ...
 * LIMIT n)" the planner may run the subquery again for every outer row
 * (a nested-loop semi-join), and every run locked and returned more
 * rows, so that one claim leased the whole backlog. */
static const char SQL_OUTBOX_CLAIM_PG[] =
	"WITH due AS MATERIALIZED (SELECT id FROM outbox"
	"  WHERE state = 'pending' AND next_at <= ?2 AND lease_until <= ?2" KIND_FILTER(
		4,
		5) " ORDER BY next_at LIMIT ?3 FOR UPDATE SKIP LOCKED)"
		   " UPDATE outbox SET lease_until = ?1, attempts = outbox.attempts + 1 FROM due"
		   " WHERE outbox.id = due.id AND outbox.state = 'pending' AND outbox.next_at <= ?2"
		   " AND outbox.lease_until <= ?2"
		   " RETURNING outbox.id, outbox.key, outbox.kind, outbox.promo, outbox.uid,"
		   " outbox.payload, outbox.attempts";

/* Column i as a string of its own (NULL stays NULL). */
static char *col_dup(struct db_stmt *st, int i)
{
	const char *s = db_col_text(st, i);
	return s ? xstrdup(s) : NULL;
}

enum ld_err outbox_claim(struct ledger *l, int64_t now_ms, int64_t lease_ms, int mask, int max,
			 struct outbox_event **out, size_t *n)
{
	struct db *db = ledger_db(l);
	struct buf b;
	struct db_stmt *st;
	enum ld_err e;

	*out = NULL;
	*n = 0;
	if (max < 1)
		return LD_OK;
	buf_init(&b, (size_t)max * sizeof(struct outbox_event));
	if ((e = db_begin(db)) != LD_OK)
		return e;
	if ((e = db_query(db, &st, db_engine(db) == DB_PG ? SQL_OUTBOX_CLAIM_PG : SQL_OUTBOX_CLAIM,
			  "llill", now_ms + lease_ms, now_ms, max,
			  (int64_t) !!(mask & OUTBOX_REWARD),
			  (int64_t) !!(mask & OUTBOX_NOTIFY))) != LD_OK) {
		db_rollback(db);
		return e;
	}
	while (db_step(st) > 0) {
		struct outbox_event *x = buf_grow(&b, sizeof *x);
		if (!x) /* more rows than LIMIT max: cannot be */
			break;
		x->id = db_col_int(st, 0);
		x->key = col_dup(st, 1);
		x->kind = col_dup(st, 2);
		x->promo = col_dup(st, 3);
		x->uid = col_dup(st, 4);
		x->payload = col_dup(st, 5);
		x->attempts = (int)db_col_int(st, 6);
		x->lease_until = now_ms + lease_ms;
	}
	if ((e = db_end(db, st, "cannot claim outbox events")) != LD_OK)
		db_rollback(db);
	else
		e = db_commit(db);
	*out = buf_take_array(&b, sizeof **out, n);
	if (e != LD_OK) {
		outbox_events_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return e;
}

void outbox_events_free(struct outbox_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ev[i].key);
		free(ev[i].kind);
		free(ev[i].promo);
		free(ev[i].uid);
		free(ev[i].payload);
	}
	free(ev);
}

const char *const outbox_kinds[OUTBOX_KINDS] = { "reward.issue", "notify.win", "notify.invite" };

/* The index of kind in outbox_kinds, or -1. */
static int kind_index(const char *kind)
{
	for (int i = 0; kind && i < OUTBOX_KINDS; i++)
		if (strcmp(kind, outbox_kinds[i]) == 0)
			return i;
	return -1;
}

/* One statement per verdict; each holds only while the lease is ours. */
static const char SQL_MARK_DELIVERED[] =
	"UPDATE outbox SET state = 'delivered', done_at = ?3, last_status = ?4,"
	" last_error = NULL, lease_until = 0"
	" WHERE id = ?1 AND lease_until = ?2 AND state = 'pending'";
static const char SQL_MARK_RETRY[] =
	"UPDATE outbox SET next_at = ?3, last_status = ?4, last_error = ?5, lease_until = 0"
	" WHERE id = ?1 AND lease_until = ?2 AND state = 'pending'";
static const char SQL_MARK_DEAD[] =
	"UPDATE outbox SET state = 'dead', done_at = ?3, last_status = ?4,"
	" last_error = ?5, lease_until = 0"
	" WHERE id = ?1 AND lease_until = ?2 AND state = 'pending'";
static const char SQL_MARK_RELEASE[] =
	"UPDATE outbox SET attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,"
	" lease_until = 0 WHERE id = ?1 AND lease_until = ?2 AND state = 'pending'";

/* The outcomes counted (outbox_outcomes), in the order of enum
 * outbox_verdict; a release is not an outcome. */
#define OUTCOMES 3
static const char *const outcome_names[OUTCOMES] = { "delivered", "retried", "dead" };
_Static_assert(OUTBOX_DELIVERED == 0 && OUTBOX_RETRY == 1 && OUTBOX_DEAD == 2,
	       "outcome_names follows enum outbox_verdict");

/* Adds n outcomes of one kind, the latest at at_ms. On PostgreSQL the
 * row stays locked until the marks commit: dispatchers on other hosts
 * recording the same kind and outcome wait that long for each other. */
static const char SQL_OUTCOMES_ADD[] =
	"INSERT INTO outbox_outcomes (kind, outcome, n, last_at) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT (kind, outcome) DO UPDATE SET n = outbox_outcomes.n + excluded.n,"
	" last_at = CASE WHEN excluded.last_at > outbox_outcomes.last_at"
	" THEN excluded.last_at ELSE outbox_outcomes.last_at END";

/* Records one outcome; *changed tells whether the lease was still ours. */
static enum ld_err mark_one(struct db *db, const struct outbox_mark *m, int64_t now_ms,
			    int *changed)
{
	static const char what[] = "cannot record outbox outcome";
	int64_t status = m->status;
	const int64_t *st = m->status > 0 ? &status : NULL; /* 0: no answer, NULL */
	enum ld_err e = LD_ERR_INVALID;

	switch (m->verdict) {
	case OUTBOX_DELIVERED:
		e = db_exec(db, SQL_MARK_DELIVERED, what, "lllL", m->id, m->lease_until, now_ms,
			    st);
		break;
	case OUTBOX_RETRY:
		e = db_exec(db, SQL_MARK_RETRY, what, "lllLt", m->id, m->lease_until, m->next_at,
			    st, m->error);
		break;
	case OUTBOX_DEAD:
		e = db_exec(db, SQL_MARK_DEAD, what, "lllLt", m->id, m->lease_until, now_ms, st,
			    m->error);
		break;
	case OUTBOX_RELEASE:
		e = db_exec(db, SQL_MARK_RELEASE, what, "ll", m->id, m->lease_until);
		break;
	}
	*changed = e == LD_OK && db_changes(db) > 0;
	return e;
}

enum ld_err outbox_mark(struct ledger *l, const struct outbox_mark *m, size_t n, int64_t now_ms,
			size_t *stale)
{
	struct db *db = ledger_db(l);
	int64_t counted[OUTBOX_KINDS][OUTCOMES] = { { 0 } };
	size_t missed = 0;
	enum ld_err e;
	int changed, kind;

	if (stale)
		*stale = 0;
	if (n == 0)
		return LD_OK;
	if ((e = db_begin(db)) != LD_OK)
		return e;
	for (size_t i = 0; i < n; i++) {
		if ((e = mark_one(db, &m[i], now_ms, &changed)) != LD_OK) {
			db_rollback(db);
			return e;
		}
		missed += !changed;
		if (changed && (kind = kind_index(m[i].kind)) >= 0 && (int)m[i].verdict < OUTCOMES)
			counted[kind][m[i].verdict]++;
	}
	for (int k = 0; k < OUTBOX_KINDS; k++)
		for (int o = 0; o < OUTCOMES; o++)
			if (counted[k][o] &&
			    (e = db_exec(db, SQL_OUTCOMES_ADD, "cannot count outbox outcomes",
					 "ttll", outbox_kinds[k], outcome_names[o], counted[k][o],
					 now_ms)) != LD_OK) {
				db_rollback(db);
				return e;
			}
	if ((e = db_commit(db)) != LD_OK)
		return e;
	if (stale)
		*stale = missed;
	return LD_OK;
}

int64_t outbox_backoff_ms(const struct ld_dispatch_config *d, int attempts, int64_t retry_after_ms,
			  const struct ld_rng *rng)
{
	int64_t cap = (int64_t)d->backoff_max_seconds * 1000;
	int64_t ceil = (int64_t)d->backoff_base_seconds * 1000;
	int64_t wait;

	for (int i = 1; i < attempts && ceil < cap; i++)
		ceil *= 2;
	if (ceil > cap)
		ceil = cap;
	/* ceil <= 604800 s in ms, which fits ld_uniform's bound */
	wait = (int64_t)ld_uniform(rng, (uint32_t)ceil + 1);
	return wait < retry_after_ms ? retry_after_ms : wait;
}

enum ld_err outbox_count_due(struct ledger *l, int64_t now_ms, int mask, int64_t *n)
{
	return db_int(
		ledger_db(l),
		"SELECT count(*) FROM outbox WHERE state = 'pending' AND next_at <= ?1" KIND_FILTER(
			2, 3),
		"cannot count outbox events", n, NULL, "lii", now_ms, !!(mask & OUTBOX_REWARD),
		!!(mask & OUTBOX_NOTIFY));
}

enum ld_err outbox_count_dead(struct ledger *l, int64_t *n)
{
	return db_int(ledger_db(l), "SELECT count(*) FROM outbox WHERE state = 'dead'",
		      "cannot count outbox events", n, NULL, "");
}

/* ?1: now. The due and dead events are counted inside the partial
 * indexes of pending rows (outbox_due, on next_at) and of dead ones
 * (outbox_dead), reading no row: the count steps through the index
 * entries (a third faster without anything else to compute on each),
 * the oldest is the index's first. */
static const char SQL_STATS_OUTCOMES[] = "SELECT kind, outcome, n, last_at FROM outbox_outcomes";
static const char SQL_STATS_DUE[] =
	"SELECT count(*) FROM outbox WHERE state = 'pending' AND next_at <= ?1";
static const char SQL_STATS_OLDEST[] = "SELECT min(next_at) FROM outbox WHERE state = 'pending'";
static const char SQL_STATS_DEAD[] = "SELECT count(*) FROM outbox WHERE state = 'dead'";

enum ld_err outbox_stats(struct ledger *l, int64_t now_ms, struct outbox_stats *out)
{
	static const char what[] = "cannot read outbox statistics";
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	enum ld_err e;

	memset(out, 0, sizeof *out);
	if ((e = db_read_begin(db)) != LD_OK)
		return e;
	if ((e = db_query(db, &st, SQL_STATS_OUTCOMES, "")) == LD_OK) {
		while (db_step(st) > 0) {
			int k = kind_index(db_col_text(st, 0));
			const char *o = db_col_text(st, 1);
			int64_t n = db_col_int(st, 2);

			if (k < 0 || !o)
				continue;
			if (strcmp(o, "delivered") == 0) {
				out->kind[k].delivered = n;
				out->kind[k].last_delivered_ms = db_col_int(st, 3);
			} else if (strcmp(o, "retried") == 0) {
				out->kind[k].retried = n;
			} else if (strcmp(o, "dead") == 0) {
				out->kind[k].dead = n;
			}
		}
		e = db_end(db, st, what);
	}
	if (e == LD_OK)
		e = db_int(db, SQL_STATS_DUE, what, &out->due, NULL, "l", now_ms);
	if (e == LD_OK && out->due > 0) /* the oldest pending event is due */
		e = db_int(db, SQL_STATS_OLDEST, what, &out->oldest_due_ms, NULL, "");
	if (e == LD_OK)
		e = db_int(db, SQL_STATS_DEAD, what, &out->dead_now, NULL, "");
	db_read_end(db);
	return e;
}

#define LIST_COLUMNS                                                    \
	"SELECT id, key, kind, promo, uid, state, last_error, payload," \
	" attempts, last_status, next_at, lease_until, created_at, done_at FROM outbox"

/* ?1: the limit; OUTBOX_DUE also ?2, the time. */
static const char *const SQL_OUTBOX_LIST[] = {
	[OUTBOX_OPEN] = LIST_COLUMNS " WHERE state IN ('pending', 'dead') ORDER BY id LIMIT ?1",
	[OUTBOX_DUE] = LIST_COLUMNS
	" WHERE state = 'pending' AND next_at <= ?2 AND lease_until <= ?2"
	" ORDER BY next_at LIMIT ?1",
	[OUTBOX_DEAD_ONLY] = LIST_COLUMNS " WHERE state = 'dead' ORDER BY id LIMIT ?1",
	[OUTBOX_ALL] = LIST_COLUMNS " ORDER BY id LIMIT ?1",
};

enum ld_err outbox_list(struct ledger *l, enum outbox_filter filter, int64_t now_ms, size_t limit,
			struct outbox_row **out, size_t *n)
{
	/* all of them (limit 0, or past the cap) are at most the cap */
	int all = !limit || limit > OUTBOX_LIST_MAX;
	size_t most = all ? OUTBOX_LIST_MAX : limit;
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	struct buf b;
	enum ld_err e;

	*out = NULL;
	*n = 0;
	buf_init(&b, most * sizeof(struct outbox_row));
	/* one row past the cap tells "all of them" from "too many" */
	if (filter == OUTBOX_DUE)
		e = db_query(db, &st, SQL_OUTBOX_LIST[filter], "ll", (int64_t)most + all, now_ms);
	else
		e = db_query(db, &st, SQL_OUTBOX_LIST[filter], "l", (int64_t)most + all);
	if (e != LD_OK)
		return e;
	while (e == LD_OK && db_step(st) > 0) {
		struct outbox_row *r = buf_grow(&b, sizeof *r);
		if (!r) {
			e = db_error(db, LD_ERR_INVALID,
				     "more than %d outbox events: list them with"
				     " a limit",
				     OUTBOX_LIST_MAX);
			break;
		}
		r->id = db_col_int(st, 0);
		r->key = col_dup(st, 1);
		r->kind = col_dup(st, 2);
		r->promo = col_dup(st, 3);
		r->uid = col_dup(st, 4);
		r->state = col_dup(st, 5);
		r->last_error = col_dup(st, 6);
		r->payload = col_dup(st, 7);
		r->attempts = (int)db_col_int(st, 8);
		r->last_status = (int)db_col_int(st, 9);
		r->next_at = db_col_int(st, 10);
		r->lease_until = db_col_int(st, 11);
		r->created_at = db_col_int(st, 12);
		r->done_at = db_col_int(st, 13);
	}
	enum ld_err end = db_end(db, st, "cannot list outbox events");
	*out = buf_take_array(&b, sizeof **out, n);
	if (e != LD_OK || (e = end) != LD_OK) {
		outbox_rows_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return e;
}

void outbox_rows_free(struct outbox_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].key);
		free(rows[i].kind);
		free(rows[i].promo);
		free(rows[i].uid);
		free(rows[i].state);
		free(rows[i].last_error);
		free(rows[i].payload);
	}
	free(rows);
}

enum ld_err outbox_retry(struct ledger *l, int64_t id, const char *promo, int64_t now_ms,
			 const struct outbox_who *who, int64_t *changed)
{
	struct db *db = ledger_db(l);
	char subject[32], note[64];
	enum ld_err e;
	int found;

	*changed = 0;
	if ((e = db_begin(db)) != LD_OK)
		return e;
	if ((e = db_exec(db,
			 "UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?2,"
			 " lease_until = 0, done_at = NULL"
			 " WHERE state = 'dead' AND (?1 = 0 OR id = ?1)"
			 " AND (CAST(?3 AS TEXT) IS NULL OR promo = ?3)",
			 "cannot retry outbox events", "llt", id, now_ms, promo)) != LD_OK)
		goto fail;
	*changed = db_changes(db);
	if (*changed == 0 && id > 0) {
		int64_t one;
		e = db_int(db,
			   "SELECT 1 FROM outbox WHERE id = ?1"
			   " AND (CAST(?2 AS TEXT) IS NULL OR promo = ?2)",
			   "cannot read outbox event", &one, &found, "lt", id, promo);
		db_rollback(db);
		if (e != LD_OK)
			return e;
		return found
			? LD_OK
			: db_error(db, LD_ERR_NOTFOUND, "no outbox event %lld%s%s", (long long)id,
				   promo ? " in promotion " : "", promo ? promo : "");
	}
	if (*changed > 0 && who) {
		if (id > 0)
			snprintf(subject, sizeof subject, "%lld", (long long)id);
		else
			snprintf(subject, sizeof subject, "dead");
		snprintf(note, sizeof note, "%lld event%s due again", (long long)*changed,
			 *changed == 1 ? "" : "s");
		if ((e = operator_log_add(db, now_ms, who->actor, "outbox.retry", subject,
					  who->ticket, who->note ? who->note : note)) != LD_OK)
			goto fail;
	}
	return db_commit(db);
fail:
	db_rollback(db);
	return e;
}
