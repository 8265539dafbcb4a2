/*
 * outbox.c - writing events into the outbox. Delivery (leases, retries,
 * outcomes) lives with the dispatcher's half of this file.
 */
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
