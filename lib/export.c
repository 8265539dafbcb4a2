/*
 * export.c - CSV reports (see export.h).
 */
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
 * by its key (outbox.h). */
static const char SQL_WINNERS[] =
	"SELECT d.id, d.uid, d.prize, d.day, d.created_at,"
	" (SELECT state FROM outbox o WHERE o.key = " OUTBOX_SQL_KEY_DRAW("reward") ")"
	" FROM draws d WHERE d.promo = ?1 AND d.id > ?2 AND d.prize IS NOT NULL"
	" AND (?3 IS NULL OR d.day = ?3) ORDER BY d.id LIMIT ?4";

enum ld_err export_winners(struct ledger *l, const struct promo *p, const char *day,
			   FILE *out, int64_t *rows)
{
	static const char *const header[] = {
		"user", "prize_id", "prize_name", "day", "time", "draw_id", "delivery" };
	int64_t after = 0;
	int n, rc;

	*rows = 0;
	record(out, header, 7);
	do {
		sqlite3_stmt *st = ledger_stmt(l, SQL_WINNERS);
		if (!st)
			return LD_ERR_DB;
		sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, after);
		if (day)
			sqlite3_bind_text(st, 3, day, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, EXPORT_PAGE);
		n = 0;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *prize = (const char *)sqlite3_column_text(st, 2);
			const struct promo_prize *z = promo_prize_find(p, prize);
			const char *state = (const char *)sqlite3_column_text(st, 5);
			int64_t at = sqlite3_column_int64(st, 4);
			char id[24], when[32];
			const char *f[7];

			after = sqlite3_column_int64(st, 0);
			snprintf(id, sizeof id, "%lld", (long long)after);
			ld_iso_time(at, promo_utc_offset(p, at), when);
			f[0] = (const char *)sqlite3_column_text(st, 1);
			f[1] = prize;
			f[2] = z ? z->name : prize;
			f[3] = (const char *)sqlite3_column_text(st, 3);
			f[4] = when;
			f[5] = id;
			f[6] = state ? state : "missing";
			record(out, f, 7);
			n++;
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return ledger_fail(l, rc, "cannot read draws");
		*rows += n;
		if (ferror(out))
			return LD_ERR_IO;
	} while (n == EXPORT_PAGE);
	return fflush(out) == 0 && !ferror(out) ? LD_OK : LD_ERR_IO;
}
