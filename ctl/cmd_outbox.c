/*
 * cmd_outbox.c - outbox list [--dead] [--all] [--limit N], outbox retry ID |
 * --all-dead: what the dispatcher has not delivered, and putting dead
 * events back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "outbox.h"

#define OUTBOX_USAGE "usage: luckydicectl outbox list [--dead] [--all] [--limit N] | retry ID |" \
	" retry --all-dead"

/* Rows listed unless --limit says otherwise: a backlog can be 100,000s. */
#define OUTBOX_LIST_DEFAULT 100

/* ms since the epoch as local "YYYY-MM-DD HH:MM:SS" (buf of 20 bytes). */
static void local_time(int64_t ms, char buf[20])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!localtime_r(&t, &tm) || strftime(buf, 20, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, 20, "?");
}

/* outbox list: pending and dead rows (--dead: dead only, --all: all), the
 * first limit of them in id order (0: all). */
static int outbox_list_cmd(struct ctl *c, enum outbox_filter f, size_t limit)
{
	struct outbox_row *rows;
	char when[20], last[64];
	size_t n, shown;

	/* one row past the limit tells whether there are more */
	if (outbox_list(ctl_ledger(c), f, ld_now_ms(), limit ? limit + 1 : 0, &rows, &n) != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	shown = limit && n > limit ? limit : n;
	printf("%-8s %-13s %-20s %-20s %-9s %8s  %-19s  %s\n", "ID", "EVENT", "USER",
	       "PROMOTION", "STATE", "ATTEMPTS", "NEXT TRY", "LAST STATUS/ERROR");
	for (size_t i = 0; i < shown; i++) {
		const struct outbox_row *r = &rows[i];
		if (strcmp(r->state, "pending") == 0)
			local_time(r->next_at, when);
		else
			snprintf(when, sizeof when, "-");
		if (r->last_status)
			snprintf(last, sizeof last, "HTTP %d", r->last_status);
		else
			snprintf(last, sizeof last, "-");
		printf("%-8lld %-13s %-20s %-20s %-9s %8d  %-19s  %s\n", (long long)r->id,
		       r->kind, r->uid, r->promo, r->state, r->attempts, when,
		       r->last_error ? r->last_error : last);
	}
	if (shown < n)
		fprintf(stderr, "the first %zu events; there are more (--limit N, or --limit 0"
			" for all)\n", shown);
	else
		fprintf(stderr, "%zu event%s\n", n, n == 1 ? "" : "s");
	outbox_rows_free(rows, n);
	return 0;
}

/* outbox retry ID | --all-dead: dead -> pending, due now. Exit 1 when
 * the named event is not dead. */
static int outbox_retry_cmd(struct ctl *c, const char *arg)
{
	int64_t id = 0, changed;
	enum ld_err e;

	if (strcmp(arg, "--all-dead") != 0) {
		char *end;
		long long v = strtoll(arg, &end, 10);
		if (*end || end == arg || v <= 0)
			ctl_die("'%s' is not an outbox event id (see 'luckydicectl outbox list')", arg);
		id = v;
	}
	e = outbox_retry(ctl_ledger(c), id, ld_now_ms(), &changed);
	if (e == LD_ERR_NOTFOUND)
		ctl_die("no outbox event %lld", (long long)id);
	if (e != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	if (id > 0 && changed == 0) {
		fprintf(stderr, "outbox event %lld is not dead: nothing to retry\n", (long long)id);
		return 1;
	}
	printf("%lld event%s pending again\n", (long long)changed, changed == 1 ? "" : "s");
	return 0;
}

int cmd_outbox(struct ctl *c, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0) {
		enum outbox_filter f = OUTBOX_OPEN;
		size_t limit = OUTBOX_LIST_DEFAULT;
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--dead") == 0)
				f = OUTBOX_DEAD_ONLY;
			else if (strcmp(argv[i], "--all") == 0)
				f = OUTBOX_ALL;
			else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
				char *end;
				long long v = strtoll(argv[++i], &end, 10);
				if (*end || end == argv[i] || v < 0 || v > 100000000)
					ctl_die("--limit: '%s' is not a count (0 for all)", argv[i]);
				limit = (size_t)v;
			} else
				ctl_die(OUTBOX_USAGE);
		}
		return outbox_list_cmd(c, f, limit);
	}
	if (argc == 3 && strcmp(argv[1], "retry") == 0)
		return outbox_retry_cmd(c, argv[2]);
	ctl_die(OUTBOX_USAGE);
}
