/*
 * promoedit.c - the checks before a promotion is loaded again, the
 * field-by-field difference of two definitions, and a promotion's
 * history (see promoedit.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promoedit.h"

/* Appends "fmt..." to the array of reasons. */
static void reason(struct json_object *arr, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void reason(struct json_object *arr, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	json_object_array_add(arr, json_object_new_string(buf));
}

/* What each day of each prize gave out, against next's stock. */
static enum ld_err check_stock(struct db *db, const struct promo *next, struct json_object *arr)
{
	struct db_stmt *st;
	enum ld_err e;

	if ((e = db_query(db, &st,
			  "SELECT day, prize, taken FROM stock"
			  " WHERE promo = ?1 AND taken > 0 ORDER BY day, prize",
			  "t", next->id)) != LD_OK)
		return e;
	while (db_step(st) > 0) {
		const char *day = db_col_text(st, 0), *prize = db_col_text(st, 1);
		const struct promo_prize *z = promo_prize_find(next, prize);
		int64_t taken = db_col_int(st, 2);
		int d = promo_day_index(next, day);
		int64_t stock = d >= 0 && z ? promo_stock(next, z, d) : 0;

		if (!z || stock >= taken)
			continue; /* a prize removed is told by check_winners */
		if (d < 0)
			reason(arr,
			       "last_day: %s gave out %lld of prize '%s', and is no longer"
			       " one of the days",
			       day, (long long)taken, prize);
		else
			reason(arr,
			       "prizes[%s]: %s gave out %lld, more than the new stock of"
			       " that day (%lld)",
			       prize, day, (long long)taken, (long long)stock);
	}
	return db_end(db, st, "cannot read stock");
}

/* Prizes with winners that next no longer has. */
static enum ld_err check_winners(struct db *db, const struct promo *next, struct json_object *arr)
{
	struct db_stmt *st;
	enum ld_err e;

	if ((e = db_query(db, &st,
			  "SELECT prize, count(*) FROM draws"
			  " WHERE promo = ?1 AND prize IS NOT NULL GROUP BY prize ORDER BY prize",
			  "t", next->id)) != LD_OK)
		return e;
	while (db_step(st) > 0)
		if (!promo_prize_find(next, db_col_text(st, 0)))
			reason(arr, "prizes: '%s' is removed, and it has %lld winners",
			       db_col_text(st, 0), (long long)db_col_int(st, 1));
	return db_end(db, st, "cannot read draws");
}

enum ld_err promo_reload_refusals(struct ledger *l, const struct promo *old,
				  const struct promo *next, int64_t now_ms,
				  struct json_object **out)
{
	struct json_object *arr = json_object_new_array();
	struct db *db = ledger_db(l);
	enum ld_err e;

	*out = NULL;
	if (old && promo_day(old, now_ms) >= 0) {
		if (strcmp(old->time_zone, next->time_zone) != 0)
			reason(arr,
			       "time_zone: the campaign started on %s in %s; another time"
			       " zone moves the boundary of every day already counted",
			       old->first_day, old->time_zone);
		if (strcmp(old->first_day, next->first_day) != 0)
			reason(arr,
			       "first_day: the campaign started on %s; another first day"
			       " renumbers the days already counted",
			       old->first_day);
	}
	if ((e = check_stock(db, next, arr)) != LD_OK ||
	    (e = check_winners(db, next, arr)) != LD_OK) {
		json_object_put(arr);
		return e;
	}
	*out = arr;
	return LD_OK;
}

/* ---- the difference of two definitions ---- */

static void change(struct json_object *arr, const char *field, struct json_object *from,
		   struct json_object *to)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "field", json_object_new_string(field));
	json_object_object_add(o, "from", from ? json_object_get(from) : NULL);
	json_object_object_add(o, "to", to ? json_object_get(to) : NULL);
	json_object_array_add(arr, o);
}

static int same(struct json_object *a, struct json_object *b)
{
	if (!a || !b)
		return a == b;
	return json_object_equal(a, b);
}

/* An array of objects that each have a distinct string "id". */
static int by_id(struct json_object *a)
{
	size_t n = a ? json_object_array_length(a) : 0;

	for (size_t i = 0; i < n; i++) {
		struct json_object *x = json_object_array_get_idx(a, i), *id;
		if (!json_object_is_type(x, json_type_object) ||
		    !json_object_object_get_ex(x, "id", &id) ||
		    !json_object_is_type(id, json_type_string))
			return 0;
	}
	return 1;
}

static struct json_object *find_id(struct json_object *arr, const char *id)
{
	size_t n = arr ? json_object_array_length(arr) : 0;

	for (size_t i = 0; i < n; i++) {
		struct json_object *x = json_object_array_get_idx(arr, i), *v;
		if (json_object_object_get_ex(x, "id", &v) &&
		    strcmp(json_object_get_string(v), id) == 0)
			return x;
	}
	return NULL;
}

static void diff(struct json_object *arr, const char *path, struct json_object *a,
		 struct json_object *b);

/* Objects key by key: a's keys in order, then b's new ones. */
static void diff_objects(struct json_object *arr, const char *path, struct json_object *a,
			 struct json_object *b)
{
	char sub[512];

	json_object_object_foreach(a, ka, va)
	{
		struct json_object *vb = NULL;
		json_object_object_get_ex(b, ka, &vb);
		snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", ka);
		diff(arr, sub, va, vb);
	}
	json_object_object_foreach(b, kb, vb2)
	{
		if (json_object_object_get_ex(a, kb, NULL))
			continue;
		snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", kb);
		diff(arr, sub, NULL, vb2);
	}
}

/* Arrays of objects with ids (the prizes), matched by id. */
static void diff_by_id(struct json_object *arr, const char *path, struct json_object *a,
		       struct json_object *b)
{
	char sub[512];

	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *x = json_object_array_get_idx(a, i), *id;
		json_object_object_get_ex(x, "id", &id);
		snprintf(sub, sizeof sub, "%s[%s]", path, json_object_get_string(id));
		diff(arr, sub, x, find_id(b, json_object_get_string(id)));
	}
	for (size_t i = 0; i < json_object_array_length(b); i++) {
		struct json_object *x = json_object_array_get_idx(b, i), *id;
		json_object_object_get_ex(x, "id", &id);
		if (find_id(a, json_object_get_string(id)))
			continue;
		snprintf(sub, sizeof sub, "%s[%s]", path, json_object_get_string(id));
		diff(arr, sub, NULL, x);
	}
}

static void diff(struct json_object *arr, const char *path, struct json_object *a,
		 struct json_object *b)
{
	if (same(a, b))
		return;
	if (a && b && json_object_is_type(a, json_type_object) &&
	    json_object_is_type(b, json_type_object))
		diff_objects(arr, path, a, b);
	else if (a && b && json_object_is_type(a, json_type_array) &&
		 json_object_is_type(b, json_type_array) && by_id(a) && by_id(b))
		diff_by_id(arr, path, a, b);
	else
		change(arr, *path ? path : "(the whole definition)", a, b);
}

struct json_object *promo_diff(const char *a, const char *b)
{
	struct json_object *arr = json_object_new_array();
	struct json_object *ja = a ? ld_json_parse(a, strlen(a), 32, NULL, 0) : NULL;
	struct json_object *jb = b ? ld_json_parse(b, strlen(b), 32, NULL, 0) : NULL;

	if (a && !ja)
		ja = json_object_new_string(a);
	if (b && !jb)
		jb = json_object_new_string(b);
	diff(arr, "", ja, jb);
	json_object_put(ja);
	json_object_put(jb);
	return arr;
}

/* ---- history ---- */

static struct json_object *text_or_null(struct db_stmt *st, int i)
{
	return db_col_null(st, i) ? NULL : json_object_new_string(db_col_text(st, i));
}

enum ld_err promo_history_json(struct ledger *l, const char *id, struct json_object **out)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
	struct db *db = ledger_db(l);
	struct db_stmt *st;
	char *prev = NULL;
	int version = 0, n = 0;
	enum ld_err e;

	*out = NULL;
	json_object_object_add(o, "promotion", json_object_new_string(id));
	json_object_object_add(o, "versions", arr);
	if ((e = db_query(db, &st,
			  "SELECT at, actor, action, content, note"
			  " FROM promotion_history WHERE promo = ?1 ORDER BY id",
			  "t", id)) != LD_OK) {
		json_object_put(o);
		return e;
	}
	while (db_step(st) > 0) {
		struct json_object *v = json_object_new_object();
		const char *action = db_col_text(st, 2), *content = db_col_text(st, 3);
		char at[32];

		ld_iso_time(db_col_int(st, 0), 0, at);
		json_object_object_add(v, "entry", json_object_new_int(++n));
		json_object_object_add(v, "at", json_object_new_string(at));
		json_object_object_add(v, "by", text_or_null(st, 1));
		json_object_object_add(v, "action", json_object_new_string(action));
		json_object_object_add(v, "note", text_or_null(st, 4));
		if (strcmp(action, "load") == 0 && content) {
			json_object_object_add(v, "version", json_object_new_int(++version));
			json_object_object_add(v, "changes", promo_diff(prev, content));
			json_object_object_add(v, "content", json_object_new_string(content));
			free(prev);
			prev = xstrdup(content);
		}
		json_object_array_add(arr, v);
	}
	free(prev);
	if ((e = db_end(db, st, "cannot read the promotion's history")) == LD_OK && n == 0)
		e = db_error(db, LD_ERR_NOTFOUND, "no history of promotion '%s'", id);
	if (e != LD_OK) {
		json_object_put(o);
		return e;
	}
	*out = o;
	return LD_OK;
}
