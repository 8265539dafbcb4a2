/* t/unit/export.c - lib/export.c: RFC 4180 quoting of one field. */
#include <stdlib.h>
#include "export.h"
#include "../tap.h"

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
	return done_testing();
}
