/*
 * outbox.c - writing events into the outbox, and the dispatcher's half:
 * claims with a lease, outcomes, backoff, and the operator's list and
 * retry. HTTP itself lives in the dispatcher; this file knows rows only.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "outbox.h"

static const char SQL_OUTBOX_ADD[] =
	"INSERT INTO outbox (key, kind, promo, uid, payload, next_at, created_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (key) DO NOTHING";

enum ld_err outbox_add(struct ledger *l, const char *kind, const char *key,
		       const char *promo, const char *uid, const char *payload,
		       int64_t now_ms)
{
	sqlite3_stmt *st = ledger_stmt(l, SQL_OUTBOX_ADD);
	int rc;

	if (!st)
		return LD_ERR_DB;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, promo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, uid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, payload, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now_ms);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? LD_OK : ledger_fail(l, rc, "cannot add outbox event");
}

/* The kinds a mask admits, as SQL on ?5 (reward) and ?6 (notify). */
#define KIND_FILTER \
	" AND (CASE kind WHEN 'reward.issue' THEN ?5 ELSE ?6 END)"

static const char SQL_OUTBOX_CLAIM[] =
	"UPDATE outbox SET lease_until = ?1, attempts = attempts + 1"
	" WHERE id IN (SELECT id FROM outbox"
	"  WHERE state = 'pending' AND next_at <= ?2 AND lease_until <= ?2"
	KIND_FILTER " ORDER BY next_at LIMIT ?3)"
	" RETURNING id, key, kind, promo, uid, payload, attempts";

static char *col_dup(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	return s ? xstrdup(s) : NULL;
}

enum ld_err outbox_claim(struct ledger *l, int64_t now_ms, int64_t lease_ms,
			 int mask, int max, struct outbox_event **out, size_t *n)
{
	struct outbox_event *ev = NULL;
	size_t cap = 0, len = 0;
	sqlite3_stmt *st;
	enum ld_err e;
	int rc;

	*out = NULL;
	*n = 0;
	if ((e = ledger_begin(l)) != LD_OK)
		return e;
	if (!(st = ledger_stmt(l, SQL_OUTBOX_CLAIM))) {
		ledger_rollback(l);
		return LD_ERR_DB;
	}
	sqlite3_bind_int64(st, 1, now_ms + lease_ms);
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_int(st, 3, max);
	sqlite3_bind_int(st, 5, !!(mask & OUTBOX_REWARD));
	sqlite3_bind_int(st, 6, !!(mask & OUTBOX_NOTIFY));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct outbox_event *x;
		if (len == cap) {
			cap = cap ? cap * 2 : 64;
			ev = xrealloc(ev, cap * sizeof *ev);
		}
		x = &ev[len++];
		x->id = sqlite3_column_int64(st, 0);
		x->key = col_dup(st, 1);
		x->kind = col_dup(st, 2);
		x->promo = col_dup(st, 3);
		x->uid = col_dup(st, 4);
		x->payload = col_dup(st, 5);
		x->attempts = sqlite3_column_int(st, 6);
		x->lease_until = now_ms + lease_ms;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		e = ledger_fail(l, rc, "cannot claim outbox events");
		ledger_rollback(l);
		outbox_events_free(ev, len);
		return e;
	}
	if ((e = ledger_commit(l)) != LD_OK) {
		outbox_events_free(ev, len);
		return e;
	}
	*out = ev;
	*n = len;
	return LD_OK;
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

/* One statement per verdict; each holds only while the lease is ours. */
static const char *const SQL_OUTBOX_MARK[] = {
	[OUTBOX_DELIVERED] =
	"UPDATE outbox SET state = 'delivered', done_at = ?3, last_status = ?4,"
	" last_error = NULL, lease_until = 0"
	" WHERE id = ?1 AND lease_until = ?2 AND state = 'pending'",
	[OUTBOX_RETRY] =
	"UPDATE outbox SET next_at = ?5, last_status = ?4, last_error = ?6, lease_until = 0"
	" WHERE id = ?1 AND lease_until = ?2 AND state = 'pending'",
	[OUTBOX_DEAD] =
	"UPDATE outbox SET state = 'dead', done_at = ?3, last_status = ?4,"
	" last_error = ?6, lease_until = 0"
	" WHERE id = ?1 AND lease_until = ?2 AND state = 'pending'",
	[OUTBOX_RELEASE] =
	"UPDATE outbox SET attempts = max(attempts - 1, 0), lease_until = 0"
	" WHERE id = ?1 AND lease_until = ?2 AND state = 'pending'",
};

enum ld_err outbox_mark(struct ledger *l, const struct outbox_mark *m, size_t n,
			int64_t now_ms, size_t *stale)
{
	size_t missed = 0;
	enum ld_err e;

	if (stale)
		*stale = 0;
	if (n == 0)
		return LD_OK;
	if ((e = ledger_begin(l)) != LD_OK)
		return e;
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *st = ledger_stmt(l, SQL_OUTBOX_MARK[m[i].verdict]);
		int rc;
		if (!st) {
			ledger_rollback(l);
			return LD_ERR_DB;
		}
		sqlite3_bind_int64(st, 1, m[i].id);
		sqlite3_bind_int64(st, 2, m[i].lease_until);
		if (m[i].verdict != OUTBOX_RELEASE) {
			sqlite3_bind_int64(st, 3, now_ms);
			if (m[i].status > 0)
				sqlite3_bind_int(st, 4, m[i].status);
			sqlite3_bind_int64(st, 5, m[i].next_at);
			if (m[i].error)
				sqlite3_bind_text(st, 6, m[i].error, -1, SQLITE_STATIC);
		}
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			e = ledger_fail(l, rc, "cannot record outbox outcome");
			ledger_rollback(l);
			return e;
		}
		if (sqlite3_changes(ledger_sqlite(l)) == 0)
			missed++;
	}
	if ((e = ledger_commit(l)) != LD_OK)
		return e;
	if (stale)
		*stale = missed;
	return LD_OK;
}

int64_t outbox_backoff_ms(const struct ld_dispatch_config *d, int attempts,
			  int64_t retry_after_ms)
{
	int64_t cap = (int64_t)d->backoff_max_seconds * 1000;
	int64_t ceil = (int64_t)d->backoff_base_seconds * 1000;
	int64_t wait;

	for (int i = 1; i < attempts && ceil < cap; i++)
		ceil *= 2;
	if (ceil > cap)
		ceil = cap;
	/* ceil <= 604800 s in ms, which fits randombytes_uniform's bound */
	wait = (int64_t)randombytes_uniform((uint32_t)ceil + 1);
	return wait < retry_after_ms ? retry_after_ms : wait;
}

enum ld_err outbox_count_due(struct ledger *l, int64_t now_ms, int mask, int64_t *n)
{
	sqlite3_stmt *st = ledger_stmt(l,
		"SELECT count(*) FROM outbox WHERE state = 'pending' AND next_at <= ?2"
		KIND_FILTER);
	int rc;

	*n = 0;
	if (!st)
		return LD_ERR_DB;
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_int(st, 5, !!(mask & OUTBOX_REWARD));
	sqlite3_bind_int(st, 6, !!(mask & OUTBOX_NOTIFY));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*n = sqlite3_column_int64(st, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? LD_OK : ledger_fail(l, rc, "cannot count outbox events");
}

static const char *const SQL_OUTBOX_LIST[] = {
	[OUTBOX_OPEN] = "SELECT id, key, kind, promo, uid, state, last_error, payload,"
	" attempts, last_status, next_at, lease_until, created_at, done_at FROM outbox"
	" WHERE state IN ('pending', 'dead') ORDER BY id LIMIT ?1",
	[OUTBOX_DUE] = "SELECT id, key, kind, promo, uid, state, last_error, payload,"
	" attempts, last_status, next_at, lease_until, created_at, done_at FROM outbox"
	" WHERE state = 'pending' AND next_at <= ?2 AND lease_until <= ?2"
	" ORDER BY next_at LIMIT ?1",
	[OUTBOX_DEAD_ONLY] = "SELECT id, key, kind, promo, uid, state, last_error, payload,"
	" attempts, last_status, next_at, lease_until, created_at, done_at FROM outbox"
	" WHERE state = 'dead' ORDER BY id LIMIT ?1",
	[OUTBOX_ALL] = "SELECT id, key, kind, promo, uid, state, last_error, payload,"
	" attempts, last_status, next_at, lease_until, created_at, done_at FROM outbox"
	" ORDER BY id LIMIT ?1",
};

enum ld_err outbox_list(struct ledger *l, enum outbox_filter filter, int64_t now_ms,
			size_t limit, struct outbox_row **out, size_t *n)
{
	sqlite3_stmt *st = ledger_stmt(l, SQL_OUTBOX_LIST[filter]);
	struct outbox_row *rows = NULL;
	size_t cap = 0, len = 0;
	enum ld_err e;
	int rc;

	*out = NULL;
	*n = 0;
	if (!st)
		return LD_ERR_DB;
	sqlite3_bind_int64(st, 1, limit ? (int64_t)limit : -1);
	if (filter == OUTBOX_DUE)
		sqlite3_bind_int64(st, 2, now_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct outbox_row *r;
		if (len == cap) {
			cap = cap ? cap * 2 : 64;
			rows = xrealloc(rows, cap * sizeof *rows);
		}
		r = &rows[len++];
		r->id = sqlite3_column_int64(st, 0);
		r->key = col_dup(st, 1);
		r->kind = col_dup(st, 2);
		r->promo = col_dup(st, 3);
		r->uid = col_dup(st, 4);
		r->state = col_dup(st, 5);
		r->last_error = col_dup(st, 6);
		r->payload = col_dup(st, 7);
		r->attempts = sqlite3_column_int(st, 8);
		r->last_status = sqlite3_column_int(st, 9);
		r->next_at = sqlite3_column_int64(st, 10);
		r->lease_until = sqlite3_column_int64(st, 11);
		r->created_at = sqlite3_column_int64(st, 12);
		r->done_at = sqlite3_column_int64(st, 13);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		e = ledger_fail(l, rc, "cannot list outbox events");
		outbox_rows_free(rows, len);
		return e;
	}
	*out = rows;
	*n = len;
	return LD_OK;
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

enum ld_err outbox_retry(struct ledger *l, int64_t id, int64_t now_ms, int64_t *changed)
{
	sqlite3_stmt *st;
	enum ld_err e;
	int rc;

	*changed = 0;
	if ((e = ledger_begin(l)) != LD_OK)
		return e;
	st = ledger_stmt(l, "UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?2,"
			 " lease_until = 0, done_at = NULL"
			 " WHERE state = 'dead' AND (?1 = 0 OR id = ?1)");
	if (!st) {
		ledger_rollback(l);
		return LD_ERR_DB;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ms);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		e = ledger_fail(l, rc, "cannot retry outbox events");
		ledger_rollback(l);
		return e;
	}
	*changed = sqlite3_changes64(ledger_sqlite(l));
	if (*changed == 0 && id > 0) {
		if (!(st = ledger_stmt(l, "SELECT 1 FROM outbox WHERE id = ?1"))) {
			ledger_rollback(l);
			return LD_ERR_DB;
		}
		sqlite3_bind_int64(st, 1, id);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		ledger_rollback(l);
		if (rc == SQLITE_DONE)
			return LD_ERR_NOTFOUND;
		return rc == SQLITE_ROW ? LD_OK : ledger_fail(l, rc, "cannot read outbox event");
	}
	return ledger_commit(l);
}
