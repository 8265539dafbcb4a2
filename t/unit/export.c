/* t/unit/export.c - lib/export.c: RFC 4180 quoting of one field, and
 * the winners found through the index of wins (the file is included for
 * its statement). */
#include <stdlib.h>
#include "../tap.h"
#include "testdb.h"

#include "../../lib/export.c"

static char *field(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	export_csv_field(f, s);
	fclose(f);
	return buf;
}

static void check(const char *in, const char *want, const char *desc)
{
	char *got = field(in);
	is_string(got, want, "%s", desc);
	free(got);
}

int main(void)
{
	check("plain", "plain", "a plain field is written as it is");
	check("", "", "an empty field is empty");
	check(NULL, "", "NULL is an empty field");
	check("a,b", "\"a,b\"", "a comma quotes the field");
	check("say \"hi\"", "\"say \"\"hi\"\"\"", "quotes are doubled inside quotes");
	check("two\nlines", "\"two\nlines\"", "LF quotes the field");
	check("cr\rhere", "\"cr\rhere\"", "CR quotes the field");
	check("케이크", "케이크", "UTF-8 passes through");

	/* a page of winners reads the wins, not every draw of the promotion */
	struct testdb t;
	char sql[600], plan[400] = "";
	sqlite3_stmt *st;
	sqlite3 *h;

	testdb_open(&t, "export");
	h = testdb_raw(t.path);
	snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", SQL_WINNERS);
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		bail("%s", sqlite3_errmsg(h));
	while (sqlite3_step(st) == SQLITE_ROW)
		if (!strstr((const char *)sqlite3_column_text(st, 3), "outbox"))
			snprintf(plan + strlen(plan), sizeof plan - strlen(plan), "%s; ",
				 (const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
	sqlite3_close(h);
	ok(strstr(plan, "SEARCH d USING INDEX draws_wins_by_day") != NULL,
	   "the winners come from the index of wins: %s", plan);
	testdb_remove(&t);
	return done_testing();
}
