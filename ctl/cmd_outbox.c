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
#include "support.h"

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

static struct json_object *row_json(const struct outbox_row *r)
{
	struct json_object *o = json_object_new_object();
	char t[32];

	json_object_object_add(o, "id", json_object_new_int64(r->id));
	json_object_object_add(o, "event", json_object_new_string(r->kind));
	json_object_object_add(o, "key", json_object_new_string(r->key));
	json_object_object_add(o, "user", json_object_new_string(r->uid));
	json_object_object_add(o, "promotion", json_object_new_string(r->promo));
	json_object_object_add(o, "state", json_object_new_string(r->state));
	json_object_object_add(o, "attempts", json_object_new_int(r->attempts));
	ld_iso_time(r->next_at, 0, t);
	json_object_object_add(o, "next_at",
			       strcmp(r->state, "pending") == 0 ? json_object_new_string(t) : NULL);
	json_object_object_add(o, "last_status",
			       r->last_status ? json_object_new_int(r->last_status) : NULL);
	json_object_object_add(o, "last_error",
			       r->last_error ? json_object_new_string(r->last_error) : NULL);
	return o;
}

/* outbox list: pending and dead rows (--dead: dead only, --all: all), the
 * first --limit of them in id order (0: all). */
static int list_run(struct ctl *c, const struct ctl_call *call)
{
	enum outbox_filter f = ctl_flag(call, "all") ? OUTBOX_ALL
		: ctl_flag(call, "dead")             ? OUTBOX_DEAD_ONLY
						     : OUTBOX_OPEN;
	size_t limit = (size_t)ctl_number(call, "limit", 0, 100000000, OUTBOX_LIST_DEFAULT);
	struct outbox_row *rows;
	char when[20], last[64];
	size_t n, shown;

	/* one row past the limit tells whether there are more */
	if (outbox_list(ctl_ledger(c), f, ld_now_ms(), limit ? limit + 1 : 0, &rows, &n) != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	shown = limit && n > limit ? limit : n;
	if (ctl_flag(call, "json")) {
		struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
		for (size_t i = 0; i < shown; i++)
			json_object_array_add(arr, row_json(&rows[i]));
		json_object_object_add(o, "events", arr);
		json_object_object_add(o, "more", json_object_new_boolean(shown < n));
		ctl_print_json(o);
		outbox_rows_free(rows, n);
		return 0;
	}
	printf("%-8s %-13s %-20s %-20s %-9s %8s  %-19s  %s\n", "ID", "EVENT", "USER", "PROMOTION",
	       "STATE", "ATTEMPTS", "NEXT TRY", "LAST STATUS/ERROR");
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
		printf("%-8lld %-13s %-20s %-20s %-9s %8d  %-19s  %s\n", (long long)r->id, r->kind,
		       r->uid, r->promo, r->state, r->attempts, when,
		       r->last_error ? r->last_error : last);
	}
	if (shown < n)
		ld_log(LOG_INFO,
		       "the first %zu events; there are more (--limit N, or --limit 0"
		       " for all)",
		       shown);
	else
		ld_log(LOG_INFO, "%zu event%s", n, n == 1 ? "" : "s");
	outbox_rows_free(rows, n);
	return 0;
}

/* outbox retry ID | --all-dead: dead -> pending, due now. Exit 1 when
 * the named event is not dead. */
static int retry_run(struct ctl *c, const struct ctl_call *call)
{
	int all = ctl_flag(call, "all-dead");
	struct outbox_who who;
	int64_t id = 0, changed;
	enum ld_err e;

	if (all == (call->argc == 1))
		ctl_usage_error(call, "give an event ID or --all-dead");
	if (!all) {
		const char *arg = call->argv[0];
		char *end;
		long long v = strtoll(arg, &end, 10);
		if (*end || end == arg || v <= 0)
			ctl_die("'%s' is not an outbox event id (see 'luckydicectl outbox list')",
				arg);
		id = v;
	}
	who.actor = ctl_operator();
	who.ticket = ctl_value(call, "ticket");
	who.note = ctl_value(call, "reason");
	if (who.ticket || who.note) {
		struct support_request rq = { who.ticket, who.note, who.actor };
		char err[256];
		if (support_check(&rq, err, sizeof err) != LD_OK)
			ctl_die("%s (--ticket and --reason go together)", err);
	}
	e = outbox_retry(ctl_ledger(c), id, NULL, ld_now_ms(), &who, &changed);
	if (e == LD_ERR_NOTFOUND)
		ctl_die("no outbox event %lld", (long long)id);
	if (e != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	if (id > 0 && changed == 0) {
		ld_log(LOG_ERR, "outbox event %lld is not dead: nothing to retry", (long long)id);
		return CTL_EXIT_PROBLEM;
	}
	printf("%lld event%s pending again\n", (long long)changed, changed == 1 ? "" : "s");
	return 0;
}

/* clang-format off */
const struct ctl_cmd ctl_cmds_outbox[] = {
	{ "outbox", "list", list_run, "", 0, 0, 0,
	  "the events not delivered yet (pending and dead), first 100 in id order",
	  "Lists the outbox events the dispatcher has not delivered, pending and dead:\n"
	  "id, event, user, promotion, state, attempts, next try (local time) and the\n"
	  "last HTTP status or error. The first 100 in id order unless --limit says\n"
	  "otherwise; stderr tells whether there are more.",
	  NULL,
	  { { "dead", NULL, "only the dead events", 0 },
	    { "all", NULL, "every event, delivered and revoked too", 0 },
	    { "limit", "N", "at most N events (default 100; 0: all)", 0 },
	    CTL_OPT_JSON, { NULL } } },
	{ "outbox", "retry", retry_run, "[ID]", 0, 1, 0,
	  "make a dead event (or every dead one) due again",
	  "Puts the dead event ID, or with --all-dead every dead event, back to\n"
	  "pending, due now and with no attempts counted; the next dispatcher run\n"
	  "sends it. The operator log (operator log) keeps who did it ($SUDO_USER,\n"
	  "else $USER), and the ticket and reason when given.",
	  "0 done; 1 the event is not dead (nothing to retry); 2 no such event, or\n"
	  "cannot run (usage, config, database)",
	  { { "all-dead", NULL, "every dead event", 0 },
	    { "ticket", "ID", "the support ticket, kept in the operator log", 0 },
	    { "reason", "TEXT", "why, kept in the operator log", 0 }, { NULL } } },
	{ NULL },
};
/* clang-format on */
