/*
 * cmd_outbox.c - outbox list [--dead] [--all], outbox retry ID | --all-dead:
 * what the dispatcher has not delivered, and putting dead events back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "outbox.h"

#define OUTBOX_USAGE "usage: luckydicectl outbox list [--dead] [--all] | retry ID | retry --all-dead"

/* ms since the epoch as local "YYYY-MM-DD HH:MM:SS" (buf of 20 bytes). */
static void local_time(int64_t ms, char buf[20])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!localtime_r(&t, &tm) || strftime(buf, 20, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, 20, "?");
}

/* outbox list: pending and dead rows (--dead: dead only, --all: all). */
static int outbox_list_cmd(struct ctl *c, enum outbox_filter f)
{
	struct outbox_row *rows;
	char when[20], last[64];
	size_t n;

	if (outbox_list(ctl_ledger(c), f, ld_now_ms(), 0, &rows, &n) != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	printf("%-8s %-13s %-20s %-20s %-9s %8s  %-19s  %s\n", "ID", "EVENT", "USER",
	       "PROMOTION", "STATE", "ATTEMPTS", "NEXT TRY", "LAST STATUS/ERROR");
	for (size_t i = 0; i < n; i++) {
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
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--dead") == 0)
				f = OUTBOX_DEAD_ONLY;
			else if (strcmp(argv[i], "--all") == 0)
				f = OUTBOX_ALL;
			else
				ctl_die(OUTBOX_USAGE);
		}
		return outbox_list_cmd(c, f);
	}
	if (argc == 3 && strcmp(argv[1], "retry") == 0)
		return outbox_retry_cmd(c, argv[2]);
	ctl_die(OUTBOX_USAGE);
}
