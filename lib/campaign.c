/*
 * campaign.c - the console's view of a promotion's outbox and of its
 * patterns (see campaign.h).
 */
#include <string.h>

#include "campaign.h"

static struct json_object *text_or_null(struct db_stmt *st, int i)
{
	const char *s = db_col_text(st, i);
	return s ? json_object_new_string(s) : NULL;
}

/* The pending events, each a range of the partial index outbox_due: the
 * due ones, counted up to a limit (a backlog can be every event of a
 * campaign: /metrics counts them all), and the waiting ones (retries,
 * few); the oldest is the index's first entry. */
static const char SQL_DUE[] =
	"SELECT count(*) FROM (SELECT 1 FROM outbox WHERE state = 'pending' AND next_at <= ?1"
	" LIMIT ?2) due";
static const char SQL_WAITING[] =
	"SELECT count(*) FROM outbox WHERE state = 'pending' AND next_at > ?1";
static const char SQL_OLDEST[] = "SELECT min(next_at) FROM outbox WHERE state = 'pending'";
/* Dead events: the partial index outbox_dead, newest first. */
static const char SQL_DEAD[] = "SELECT count(*) FROM outbox WHERE state = 'dead'";
static const char SQL_DEAD_EVENTS[] =
	"SELECT id, kind, uid, attempts, last_status, last_error, done_at FROM outbox"
	" WHERE state = 'dead' AND promo = ?1 ORDER BY id DESC LIMIT ?2";

enum ld_err campaign_outbox_json(struct ledger *l, const struct promo *p, int64_t now_ms, int limit,
				 struct json_object **out)
{
	struct json_object *o = json_object_new_object(), *dead = json_object_new_array();
	struct db *db = ledger_db(l);
	int64_t due = 0, waiting = 0, oldest = 0, ndead = 0;
	struct db_stmt *st;
	enum ld_err e;
	int found;

	*out = NULL;
	if (limit < 1 || limit > CAMPAIGN_LIST_MAX)
		limit = CAMPAIGN_LIST_MAX;
	json_object_object_add(o, "dead_events", dead);
	if ((e = db_read_begin(db)) != LD_OK)
		goto fail;
	if ((e = db_int(db, SQL_DUE, "cannot count outbox events", &due, NULL, "ll", now_ms,
			(int64_t)CAMPAIGN_DUE_MAX + 1)) != LD_OK ||
	    (e = db_int(db, SQL_WAITING, "cannot count outbox events", &waiting, NULL, "l",
			now_ms)) != LD_OK ||
	    (e = db_int(db, SQL_OLDEST, "cannot read outbox events", &oldest, &found, "")) !=
		    LD_OK ||
	    (e = db_int(db, SQL_DEAD, "cannot count outbox events", &ndead, NULL, "")) != LD_OK ||
	    (e = db_query(db, &st, SQL_DEAD_EVENTS, "ti", p->id, limit)) != LD_OK) {
		db_read_end(db);
		goto fail;
	}
	while (db_step(st) > 0) {
		struct json_object *x = json_object_new_object();
		json_object_object_add(x, "id", json_object_new_int64(db_col_int(st, 0)));
		json_object_object_add(x, "kind", text_or_null(st, 1));
		json_object_object_add(x, "user", text_or_null(st, 2));
		json_object_object_add(x, "attempts", json_object_new_int64(db_col_int(st, 3)));
		json_object_object_add(
			x, "last_status",
			db_col_null(st, 4) ? NULL : json_object_new_int64(db_col_int(st, 4)));
		json_object_object_add(x, "last_error", text_or_null(st, 5));
		json_object_object_add(
			x, "at", db_col_null(st, 6) ? NULL : promo_time_json(p, db_col_int(st, 6)));
		json_object_array_add(dead, x);
	}
	e = db_end(db, st, "cannot list dead events");
	db_read_end(db);
	if (e != LD_OK)
		goto fail;
	json_object_object_add(
		o, "due", json_object_new_int64(due > CAMPAIGN_DUE_MAX ? CAMPAIGN_DUE_MAX : due));
	json_object_object_add(o, "due_more", json_object_new_boolean(due > CAMPAIGN_DUE_MAX));
	json_object_object_add(o, "waiting", json_object_new_int64(waiting));
	json_object_object_add(o, "oldest_due",
			       due > 0 && found ? promo_time_json(p, oldest) : NULL);
	json_object_object_add(o, "dead", json_object_new_int64(ndead));
	*out = o;
	return LD_OK;
fail:
	json_object_put(o);
	return e;
}

/*
 * The top inviters without counting every invite. A user's invites that
 * gave them a dice are the balances row's invites_credited (migration
 * 005), which stops at the promotion's cap; the invites past the cap
 * have a partial index of their own. SQL_PAST_CAP ranks the inviters
 * with invites past the cap (their counter plus those): when it finds a
 * whole list, all above the cap, nobody else can be in it - an inviter
 * with no invite past the cap has at most the cap - and that is the
 * answer. Otherwise SQL_INVITERS adds the top of every counter, which
 * reads every balances row of the promotion; anyone in the top by
 * credited invites is in one of its two branches.
 */
static const char SQL_PAST_CAP[] =
	"SELECT pc.inviter, pc.n + coalesce(b.invites_credited, 0) AS credited,"
	" coalesce(b.invites_credited, 0)"
	" FROM (SELECT inviter, count(*) AS n FROM invites INDEXED BY invites_past_cap_by_inviter"
	"  WHERE promo = ?1 AND inviter_granted = 0 GROUP BY inviter) pc"
	" LEFT JOIN balances b ON b.promo = ?1 AND b.uid = pc.inviter"
	" ORDER BY credited DESC, pc.inviter LIMIT ?2";
static const char SQL_INVITERS[] =
	"SELECT uid, max(total) AS credited, max(granted) FROM ("
	" SELECT uid, invites_credited AS total, invites_credited AS granted FROM"
	"  (SELECT uid, invites_credited FROM balances WHERE promo = ?1 AND invites_credited > 0"
	"   ORDER BY invites_credited DESC, uid LIMIT ?2) top"
	" UNION ALL"
	" SELECT pc.inviter, pc.n + coalesce(b.invites_credited, 0), coalesce(b.invites_credited, 0)"
	" FROM (SELECT inviter, count(*) AS n FROM invites INDEXED BY invites_past_cap_by_inviter"
	"  WHERE promo = ?1 AND inviter_granted = 0 GROUP BY inviter) pc"
	" LEFT JOIN balances b ON b.promo = ?1 AND b.uid = pc.inviter"
	") t GROUP BY uid ORDER BY credited DESC, uid LIMIT ?2";

/* The inviters of sql (columns user, credited, granted) into arr; *last
 * gets the smallest "credited" of them. */
static enum ld_err inviters(struct db *db, const char *sql, const struct promo *p, int limit,
			    struct json_object *arr, int64_t *last)
{
	struct db_stmt *st;
	enum ld_err e;

	if ((e = db_query(db, &st, sql, "ti", p->id, limit)) != LD_OK)
		return e;
	while (db_step(st) > 0) {
		struct json_object *x = json_object_new_object();
		json_object_object_add(x, "user", text_or_null(st, 0));
		json_object_object_add(x, "credited",
				       json_object_new_int64(*last = db_col_int(st, 1)));
		json_object_object_add(x, "granted", json_object_new_int64(db_col_int(st, 2)));
		json_object_array_add(arr, x);
	}
	return db_end(db, st, "cannot read inviters");
}

/* Refused claims by client: claim_refusals_by_client, in its order. */
static const char SQL_CLIENTS[] =
	"SELECT client, count(*) AS n, max(day) FROM claim_refusals"
	" WHERE promo = ?1 AND client IS NOT NULL GROUP BY client ORDER BY n DESC, client LIMIT ?2";
/* Credited claims of one client: a range of invites_by_client_day. */
static const char SQL_CLIENT_CREDITED[] =
	"SELECT count(*) FROM invites WHERE promo = ?1 AND client = ?2";

enum ld_err campaign_watch_json(struct ledger *l, const struct promo *p, int limit,
				struct json_object **out)
{
	struct json_object *o = json_object_new_object(), *top = json_object_new_array();
	struct json_object *clients = json_object_new_array();
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	int64_t last = 0;
	enum ld_err e;

	*out = NULL;
	if (limit < 1 || limit > CAMPAIGN_LIST_MAX)
		limit = CAMPAIGN_LIST_MAX;
	json_object_object_add(o, "inviters", top);
	json_object_object_add(o, "clients", clients);
	if ((e = db_read_begin(db)) != LD_OK)
		goto fail;
	if ((e = inviters(db, SQL_PAST_CAP, p, limit, top, &last)) != LD_OK)
		goto fail_read;
	if ((int)json_object_array_length(top) < limit || last <= p->max_credited_per_inviter) {
		json_object_array_del_idx(top, 0, json_object_array_length(top));
		if ((e = inviters(db, SQL_INVITERS, p, limit, top, &last)) != LD_OK)
			goto fail_read;
	}
	if ((e = db_query(db, &st, SQL_CLIENTS, "ti", p->id, limit)) != LD_OK)
		goto fail_read;
	while (db_step(st) > 0) {
		struct json_object *x = json_object_new_object();
		json_object_object_add(x, "client", text_or_null(st, 0));
		json_object_object_add(x, "refused", json_object_new_int64(db_col_int(st, 1)));
		json_object_object_add(x, "last_day", text_or_null(st, 2));
		json_object_array_add(clients, x);
	}
	if ((e = db_end(db, st, "cannot read refused claims")) != LD_OK)
		goto fail_read;
	for (size_t i = 0; i < json_object_array_length(clients); i++) {
		struct json_object *x = json_object_array_get_idx(clients, i), *c;
		int64_t n = 0;

		json_object_object_get_ex(x, "client", &c);
		if ((e = db_int(db, SQL_CLIENT_CREDITED, "cannot count claims", &n, NULL, "tt",
				p->id, json_object_get_string(c))) != LD_OK)
			goto fail_read;
		json_object_object_add(x, "credited", json_object_new_int64(n));
	}
	db_read_end(db);
	*out = o;
	return LD_OK;
fail_read:
	db_read_end(db);
fail:
	json_object_put(o);
	return e;
}
