/*
 * cmd_export.c - export winners PROMO [--day YYYY-MM-DD]: the CSV the
 * prize vendor gets (lib/export.c), on stdout.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "export.h"

static int winners_run(struct ctl *c, const struct ctl_call *call)
{
	const struct promo *p = ctl_promo(c, call->argv[0]);
	const char *day = ctl_value(call, "day");
	int64_t rows;

	if (day && promo_day_index(p, day) < 0)
		ctl_die("--day: '%s' is not a day of promotion '%s' (%s to %s)", day, p->id,
			p->first_day, p->last_day);
	/* Excel takes a CSV file for the machine's legacy code page (CP949 on
	 * a Korean Windows) unless it starts with the UTF-8 byte order mark. */
	if (ctl_flag(call, "bom"))
		fputs("\xEF\xBB\xBF", stdout);
	switch (export_winners(ctl_ledger(c), p, day, stdout, &rows)) {
	case LD_OK: ld_log(LOG_INFO, "%lld winners", (long long)rows); return 0;
	default: ctl_die("%s", ledger_errmsg(c->ledger));
	}
}

/* clang-format off */
const struct ctl_cmd ctl_cmds_export[] = {
	{ "export", "winners", winners_run, "PROMO", 1, 1, 0,
	  "the winners as RFC 4180 CSV on stdout, for the prize vendor",
	  "Writes every win of promotion PROMO (or of one local day) as RFC 4180 CSV\n"
	  "on stdout: user, prize_id, prize_name, day, time (local), draw_id,\n"
	  "delivery (the state of its reward). The count goes to stderr. The text is\n"
	  "UTF-8; for a file that people open in Excel, add --bom: without the byte\n"
	  "order mark Excel reads it in the machine's legacy code page and garbles\n"
	  "the Korean prize names. Programs that read the CSV want it without.",
	  "0 written; 2 no such promotion or day, or cannot run (usage, config,\n"
	  "database)",
	  { { "day", "YYYY-MM-DD", "only the wins of this local day", 0 },
	    { "bom", NULL, "start with the UTF-8 byte order mark (for Excel)", 0 }, { NULL } } },
	{ NULL },
};
/* clang-format on */
