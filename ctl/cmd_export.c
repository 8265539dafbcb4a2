/*
 * cmd_export.c - export winners PROMO [--day YYYY-MM-DD]: the CSV the
 * prize vendor gets (lib/export.c), on stdout.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "export.h"

int cmd_export(struct ctl *c, int argc, char **argv)
{
	static const char usage[] = "luckydicectl export winners PROMO [--day YYYY-MM-DD]";
	const struct promo *p;
	const char *day = NULL;
	int64_t rows;

	if (argc == 5 && strcmp(argv[3], "--day") == 0)
		day = argv[4];
	else if (argc != 3)
		ctl_die("usage: %s", usage);
	if (strcmp(argv[1], "winners") != 0)
		ctl_die("usage: %s", usage);
	p = ctl_promo(c, argv[2]);
	if (day && promo_day_index(p, day) < 0)
		ctl_die("--day: '%s' is not a day of promotion '%s' (%s to %s)", day, p->id,
			p->first_day, p->last_day);
	switch (export_winners(ctl_ledger(c), p, day, stdout, &rows)) {
	case LD_OK:
		fprintf(stderr, "%lld winners\n", (long long)rows);
		return 0;
	case LD_ERR_IO:
		ctl_die("cannot write the export: %m");
	default:
		ctl_die("%s", ledger_errmsg(c->ledger));
	}
}
