/*
 * grants.c - recording grants and changing balances (see grants.h).
 */
#include "grants.h"

static const char SQL_GRANT[] =
	"INSERT INTO grants (promo, uid, reason, amount, ref, note, created_at, day)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING";

enum ld_err grant_record(struct db *db, const struct grant *g, int *inserted)
{
	enum ld_err e = db_exec(db, SQL_GRANT, "cannot record grant", "tttlttlt", g->promo, g->uid,
				g->reason, g->amount, g->ref, g->note, g->now_ms, g->day);

	*inserted = e == LD_OK && db_changes(db) > 0;
	return e;
}

static const char SQL_BALANCE_ADD[] =
	"INSERT INTO balances (promo, uid, first_seen, granted, version)"
	" VALUES (?1, ?2, ?4, ?3, 1) ON CONFLICT (promo, uid) DO UPDATE"
	" SET granted = balances.granted + excluded.granted, version = balances.version + 1";
/* An upsert's new row is checked before its conflict is: a negative
 * amount in it would fail the CHECK even where the row exists. */
static const char SQL_BALANCE_TAKE[] =
	"UPDATE balances SET granted = granted + ?3, version = version + 1"
	" WHERE promo = ?1 AND uid = ?2";

enum ld_err grant_balance_add(struct ledger *l, const char *promo, const char *uid, int64_t amount,
			      int64_t now_ms, struct ld_balance *bal)
{
	struct db *db = ledger_db(l);
	enum ld_err e;
	int changed;

	if (amount >= 0)
		e = db_exec(db, SQL_BALANCE_ADD, "cannot update balance", "ttll", promo, uid,
			    amount, now_ms);
	else
		e = db_exec(db, SQL_BALANCE_TAKE, "cannot update balance", "ttl", promo, uid,
			    amount);
	if (e != LD_OK || (e = ledger_balance_changed(l, promo, uid, bal, &changed)) != LD_OK)
		return e;
	/* an upsert always changes its row; an update, when the row exists */
	return changed ? LD_OK
		       : db_error(db, LD_ERR_DB, "cannot update balance: '%s' has none in '%s'",
				  uid, promo);
}

enum ld_err grant_add(struct ledger *l, const struct grant *g, int *inserted,
		      struct ld_balance *bal)
{
	enum ld_err e = grant_record(ledger_db(l), g, inserted);

	if (e != LD_OK || !*inserted)
		return e;
	return grant_balance_add(l, g->promo, g->uid, g->amount, g->now_ms, bal);
}
