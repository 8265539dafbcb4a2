/*
 * export.c - CSV reports (see export.h).
 */
#include <errno.h>
#include <string.h>

#include "export.h"
#include "outbox.h"

#define EXPORT_PAGE 1000

void export_csv_field(FILE *out, const char *s)
{
	if (!s)
		s = "";
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

static void record(FILE *out, const char *const *fields, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', out);
		export_csv_field(out, fields[i]);
	}
	fputs("\r\n", out);
}

/* ?3 is the day or NULL for every day; a win's reward.issue event is found
 * by its draw (outbox.draw_id). The wins are found through their partial
 * index, named so that SQLite does not take draws_by_day (migration 013)
 * for its promo and read every draw. (INDEXED BY is SQLite's own: a
 * PostgreSQL backend leaves it out.) */
static const char SQL_WINNERS[] =
	"SELECT d.id, d.uid, d.prize, d.day, d.created_at,"
	" (SELECT state FROM outbox o WHERE o.draw_id = d.id AND o.kind = 'reward.issue')"
	" FROM draws d INDEXED BY draws_wins_by_day WHERE d.promo = ?1 AND d.id > ?2 AND d.prize IS NOT NULL"
	" AND (?3 IS NULL OR d.day = ?3) ORDER BY d.id LIMIT ?4";

enum ld_err export_winners(struct ledger *l, const struct promo *p, const char *day, FILE *out,
			   int64_t *rows)
{
	static const char *const header[] = { "user", "prize_id", "prize_name", "day",
					      "time", "draw_id",  "delivery" };
	struct db *db = ledger_db(l);
	int64_t after = 0;
	enum ld_err e;
	int n;

	*rows = 0;
	record(out, header, 7);
	do {
		struct db_stmt *st;
		if ((e = db_query(db, &st, SQL_WINNERS, "tlti", p->id, after, day, EXPORT_PAGE)) !=
		    LD_OK)
			return e;
		n = 0;
		while (db_step(st) > 0) {
			const char *prize = db_col_text(st, 2);
			const struct promo_prize *z = promo_prize_find(p, prize);
			const char *state = db_col_text(st, 5);
			int64_t at = db_col_int(st, 4);
			char id[24], when[32];
			const char *f[7];

			after = db_col_int(st, 0);
			snprintf(id, sizeof id, "%lld", (long long)after);
			ld_iso_time(at, promo_utc_offset(p, at), when);
			f[0] = db_col_text(st, 1);
			f[1] = prize;
			f[2] = z ? z->name : prize;
			f[3] = db_col_text(st, 3);
			f[4] = when;
			f[5] = id;
			f[6] = state ? state : "missing";
			record(out, f, 7);
			n++;
		}
		if ((e = db_end(db, st, "cannot read draws")) != LD_OK)
			return e;
		*rows += n;
		if (ferror(out))
			return db_error(db, LD_ERR_IO, "cannot write the winners: %s",
					strerror(errno));
	} while (n == EXPORT_PAGE);
	if (fflush(out) != 0 || ferror(out))
		return db_error(db, LD_ERR_IO, "cannot write the winners: %s", strerror(errno));
	return LD_OK;
}
