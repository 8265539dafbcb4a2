/*
 * cmd_basic.c - init, promo load|list|show, token.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "promoedit.h"
#include "token.h"

/*
 * As root, a database that does not exist yet is made (empty) for the
 * owner of its directory - the service's user, who owns the state
 * directory - so that the service can write what root created. SQLite
 * gives the -wal and -shm files it makes as root the database file's
 * owner, so later commands run as root leave the service's files alone.
 */
static void init_owner(const char *db)
{
	char *dir, *slash;
	struct stat st;
	int found, fd;

	/* the config makes "db" absolute: its directory is before the last '/'
	 * (a PostgreSQL database has no file here) */
	if (geteuid() != 0 || ld_is_conninfo(db) || access(db, F_OK) == 0 ||
	    !(slash = strrchr(db, '/')))
		return;
	dir = slash == db ? xstrdup("/") : xstrndup(db, (size_t)(slash - db));
	found = stat(dir, &st) == 0 && st.st_uid != 0;
	free(dir);
	if (!found)
		return;
	if ((fd = open(db, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) < 0)
		ctl_die("cannot create database '%s': %s", db, strerror(errno));
	if (fchown(fd, st.st_uid, st.st_gid) != 0)
		ctl_die("cannot give database '%s' to the owner of its directory: %s", db,
			strerror(errno));
	close(fd);
}

/* init: create the database, or apply the migrations it lacks. */
static int init_run(struct ctl *c, const struct ctl_call *call)
{
	int from, to;
	char *shown;

	(void)call;
	init_owner(c->cfg.db);
	c->create = 1;
	if (ledger_migrate(ctl_ledger(c), &from, &to) != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	shown = ld_db_shown(c->cfg.db);
	if (from == to)
		printf("database '%s' is at schema version %d\n", shown, to);
	else
		printf("database '%s' migrated from schema version %d to %d\n", shown, from, to);
	free(shown);
	return 0;
}

/* Prints the changes of promo_diff, one a line, indented. */
static void print_changes(struct json_object *changes)
{
	for (size_t i = 0; i < json_object_array_length(changes); i++) {
		struct json_object *c = json_object_array_get_idx(changes, i), *f, *from, *to;
		json_object_object_get_ex(c, "field", &f);
		json_object_object_get_ex(c, "from", &from);
		json_object_object_get_ex(c, "to", &to);
		printf("  %s: %s -> %s\n", json_object_get_string(f),
		       from ? json_object_to_json_string_ext(
				      from, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
			    : "(none)",
		       to ? json_object_to_json_string_ext(
				    to, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
			  : "(none)");
	}
}

/*
 * promo load FILE [--force]: validate; when the id is stored already,
 * refuse what would break the running campaign (unless --force, which
 * records the reasons overridden); store it with its history entry.
 */
static int promo_load(struct ctl *c, const struct ctl_call *call)
{
	struct json_object *refusals = NULL, *changes;
	struct promo_change ch = { ctl_operator(), NULL, NULL };
	struct ledger *l = ctl_ledger(c);
	const struct promo *old;
	int64_t now = ld_now_ms();
	char err[512], *content, *note = NULL;
	struct promo *p;
	size_t len, n;
	int created;

	if (ld_read_file(call->argv[0], PROMO_FILE_MAX, &content, &len, err, sizeof err) != LD_OK)
		ctl_die("%s", err);
	if (promo_parse(content, len, &p, err, sizeof err) != LD_OK) {
		free(content);
		ctl_die("promotion file '%s': %s", call->argv[0], err);
	}
	old = ledger_promo(l, p->id, now);
	changes = promo_diff(old ? old->json : NULL, p->json);
	if (promo_reload_refusals(l, old, p, now, &refusals) != LD_OK)
		ctl_die("%s", ledger_errmsg(l));
	if ((n = json_object_array_length(refusals)) > 0) {
		int force = ctl_flag(call, "force"); /* forced: a warning on stdout */
		const char *say = force ? "warning" : "error";

		if (force)
			printf("%s: promotion '%s' has started, and this file would break it:\n",
			       say, p->id);
		else
			ld_log(LOG_ERR,
			       "%s: promotion '%s' has started, and this file would break it:", say,
			       p->id);
		for (size_t i = 0; i < n; i++) {
			const char *r = json_object_get_string(
				json_object_array_get_idx(refusals, i));
			if (force)
				printf("  %s\n", r);
			else
				ld_log(LOG_ERR, "  %s", r);
		}
		if (!force) {
			ld_log(LOG_ERR,
			       "nothing was stored ('promo load --force' stores it anyway)");
			json_object_put(refusals);
			json_object_put(changes);
			promo_free(p);
			free(content);
			return CTL_EXIT_PROBLEM;
		}
		const char *why = json_object_to_json_string_ext(
			refusals, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		note = xmalloc(strlen(why) + sizeof "forced over: ");
		sprintf(note, "forced over: %s", why);
	}
	ch.content = content;
	ch.note = note;
	if (ledger_promo_store(l, p, now, &ch, &created) != LD_OK)
		ctl_die("%s", ledger_errmsg(l));
	printf("%s promotion '%s' (%s to %s, %s, %zu prizes)\n", created ? "loaded" : "updated",
	       p->id, p->first_day, p->last_day, p->time_zone, p->nprizes);
	if (!created && json_object_array_length(changes) == 0)
		printf("  (no field changed)\n");
	else if (!created)
		print_changes(changes);
	json_object_put(refusals);
	json_object_put(changes);
	promo_free(p);
	free(content);
	free(note);
	return 0;
}

/* promo history ID [--json]: every load, pause and resume, oldest first. */
static int promo_history(struct ctl *c, const struct ctl_call *call)
{
	struct json_object *o, *arr;

	if (promo_history_json(ctl_ledger(c), call->argv[0], &o) != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	if (ctl_flag(call, "json")) {
		ctl_print_json(o);
		return 0;
	}
	json_object_object_get_ex(o, "versions", &arr);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *v = json_object_array_get_idx(arr, i), *x;
		const char *action, *by = "(unknown)", *note = NULL;
		json_object_object_get_ex(v, "action", &x);
		action = json_object_get_string(x);
		if (json_object_object_get_ex(v, "by", &x) && x)
			by = json_object_get_string(x);
		if (json_object_object_get_ex(v, "note", &x) && x)
			note = json_object_get_string(x);
		json_object_object_get_ex(v, "at", &x);
		printf("%s  %-6s by %s", json_object_get_string(x), action, by);
		if (json_object_object_get_ex(v, "version", &x))
			printf(", version %d", json_object_get_int(x));
		putchar('\n');
		if (note)
			printf("  note: %s\n", note);
		if (json_object_object_get_ex(v, "changes", &x)) {
			if (json_object_array_length(x) == 0)
				printf("  (no field changed)\n");
			else if (json_object_get_int(json_object_object_get(v, "version")) == 1)
				printf("  (first version)\n");
			else
				print_changes(x);
		}
	}
	json_object_put(o);
	return 0;
}

/* promo pause ID --reason TEXT, promo resume ID. */
static int pause_or_resume(struct ctl *c, const struct ctl_call *call, int pause)
{
	struct promo_change ch = { ctl_operator(), NULL, pause ? ctl_value(call, "reason") : NULL };
	const char *id = call->argv[0];
	int changed;

	if (pause && !*ch.note)
		ctl_usage_error(call, "--reason must say why");
	switch (ledger_promo_pause(ctl_ledger(c), id, pause, ld_now_ms(), &ch, &changed)) {
	case LD_OK: break;
	case LD_ERR_NOTFOUND: ctl_die("no promotion '%s' (see 'luckydicectl promo list')", id);
	default: ctl_die("%s", ledger_errmsg(c->ledger));
	}
	if (!changed)
		printf("promotion '%s' was %s already: nothing changed\n", id,
		       pause ? "paused" : "not paused");
	else if (pause)
		printf("paused promotion '%s': visits, invite claims and draws answer 403"
		       " promotion_paused within a second; reads go on\n",
		       id);
	else
		printf("resumed promotion '%s': it takes visits, claims and draws again within"
		       " a second\n",
		       id);
	return 0;
}

static int promo_pause(struct ctl *c, const struct ctl_call *call)
{
	return pause_or_resume(c, call, 1);
}

static int promo_resume(struct ctl *c, const struct ctl_call *call)
{
	return pause_or_resume(c, call, 0);
}

static const char *promo_state(const struct promo *p, int64_t now)
{
	if (p->paused_reason)
		return "paused";
	return promo_active(p, now) ? "active" : promo_day(p, now) < 0 ? "upcoming" : "ended";
}

static int promo_list(struct ctl *c, const struct ctl_call *call)
{
	int64_t now = ld_now_ms();
	const struct promo *const *ps;
	struct json_object *arr;
	size_t n;

	ps = ledger_promos(ctl_ledger(c), now, &n);
	if (!ctl_flag(call, "json")) {
		for (size_t i = 0; i < n; i++)
			printf("%-24s %s..%s %-16s %-8s %s\n", ps[i]->id, ps[i]->first_day,
			       ps[i]->last_day, ps[i]->time_zone, promo_state(ps[i], now),
			       ps[i]->name);
		return 0;
	}
	arr = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(ps[i]->id));
		json_object_object_add(o, "name", json_object_new_string(ps[i]->name));
		json_object_object_add(o, "time_zone", json_object_new_string(ps[i]->time_zone));
		json_object_object_add(o, "first_day", json_object_new_string(ps[i]->first_day));
		json_object_object_add(o, "last_day", json_object_new_string(ps[i]->last_day));
		json_object_object_add(o, "state", json_object_new_string(promo_state(ps[i], now)));
		json_object_object_add(o, "prizes", json_object_new_int64((int64_t)ps[i]->nprizes));
		json_object_array_add(arr, o);
	}
	{
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "promotions", arr);
		ctl_print_json(o);
	}
	return 0;
}

/* promo show ID: the rules in words, or with --json the definition as
 * stored (a promotion file: "promo load" takes it back). */
static int promo_show(struct ctl *c, const struct ctl_call *call)
{
	const struct promo *p = ctl_promo(c, call->argv[0]);
	int64_t now = ld_now_ms();
	char hours[32];

	if (ctl_flag(call, "json")) {
		puts(p->json);
		return 0;
	}
	snprintf(hours, sizeof hours, "%g", (double)p->invitee_new_within_ms / 3600000.0);
	printf("promotion  %s (%s)\n", p->id, p->name);
	printf("days       %s..%s, %d days in %s, %s\n", p->first_day, p->last_day, p->ndays,
	       p->time_zone, promo_state(p, now));
	if (p->paused_reason) {
		char at[32];
		ld_iso_time(p->paused_at, promo_utc_offset(p, p->paused_at), at);
		printf("paused     since %s: %s\n", at, p->paused_reason);
	}
	printf("grants     visit %lld, inviter %lld, invitee %lld\n", (long long)p->grant_visit,
	       (long long)p->grant_inviter, (long long)p->grant_invitee);
	printf("invites    at most %lld credited per inviter; an invitee is new for %s hours\n",
	       (long long)p->max_credited_per_inviter, hours);
	if (p->claims_per_client_per_day)
		printf("abuse      at most %lld credited claims per client per day\n",
		       (long long)p->claims_per_client_per_day);
	printf("prizes     %zu\n", p->nprizes);
	for (size_t i = 0; i < p->nprizes; i++) {
		const struct promo_prize *z = &p->prizes[i];
		int64_t total = 0;
		for (int d = 0; d < p->ndays; d++)
			total += z->stock[d];
		printf("  %-16s %-9s daily %-8lld total %-9lld probability %-10.9g %s\n", z->id,
		       z->release == RELEASE_EVEN ? "even" : "midnight", (long long)z->daily_stock,
		       (long long)total, z->probability, z->name);
	}
	return 0;
}

/* token [--ttl SECONDS] UID...: one token per UID, one per line. */
static int token_run(struct ctl *c, const struct ctl_call *call)
{
	long long ttl = ctl_number(call, "ttl", 1, 10LL * 365 * 86400, 30 * 86400);
	int64_t expiry = ld_now_ms() / 1000 + ttl;
	struct json_object *arr = NULL, *o;
	struct token_key key;
	char err[512], tok[TOKEN_MAX];

	for (int i = 0; i < call->argc; i++)
		if (!ld_is_ident(call->argv[i], TOKEN_UID_MAX))
			ctl_die("'%s' is not a valid user id (1-64 of A-Z a-z 0-9 _ -)",
				call->argv[i]);
	if (token_key_load(c->cfg.token_secret_file, &key, err, sizeof err) != LD_OK)
		ctl_die("%s", err);
	if (ctl_flag(call, "json"))
		arr = json_object_new_array();
	for (int i = 0; i < call->argc; i++) {
		if (token_issue(&key, call->argv[i], expiry, tok) != LD_OK) {
			token_key_release(&key);
			ctl_die("cannot issue a token for '%s'", call->argv[i]);
		}
		if (!arr) {
			puts(tok);
			continue;
		}
		o = json_object_new_object();
		json_object_object_add(o, "user", json_object_new_string(call->argv[i]));
		json_object_object_add(o, "token", json_object_new_string(tok));
		json_object_object_add(o, "expires", json_object_new_int64(expiry));
		json_object_array_add(arr, o);
	}
	token_key_release(&key);
	if (arr) {
		o = json_object_new_object();
		json_object_object_add(o, "tokens", arr);
		ctl_print_json(o);
	}
	return 0;
}

/* clang-format off */
const struct ctl_cmd ctl_cmds_basic[] = {
	{ "init", NULL, init_run, "", 0, 0, 0,
	  "create the database, or apply the migrations it lacks",
	  "Creates the database named by \"db\" in the config, or applies the\n"
	  "migrations it does not have yet (each in its own transaction), and prints\n"
	  "its schema version. Run as root, a new database file is given to the owner\n"
	  "of its directory (the service's user).",
	  NULL, { { NULL } } },
	{ "promo", "load", promo_load, "FILE", 1, 1, 0,
	  "validate a promotion file and store it (insert, or update by id)",
	  "Reads and validates the promotion file FILE (luckydice-promotion(5)) and\n"
	  "stores it. An error names the field; nothing is stored then. Loading the\n"
	  "same id again updates the rules without touching what was granted or won,\n"
	  "prints each field that changed, and keeps the earlier version in the\n"
	  "promotion's history (see 'promo history'), with who loaded it ($SUDO_USER\n"
	  "or $USER). A reload that would break the running campaign is refused with\n"
	  "the reasons: another time zone or first day once the first day has begun,\n"
	  "a day's stock below what that day already gave out, a prize removed that\n"
	  "has winners. --force stores it anyway and records the reasons overridden.",
	  "0 stored; 1 refused (nothing stored); 2 the file is not valid, or cannot run\n"
	  "(usage, config, database)",
	  { { "force", NULL, "store even what would break the running campaign", 0 },
	    { NULL } } },
	{ "promo", "history", promo_history, "ID", 1, 1, 0,
	  "every version of a promotion: who loaded it when, what changed; pauses",
	  "Prints the history of promotion ID, oldest first: each file loaded (when,\n"
	  "by whom, its version number and each field that changed from the version\n"
	  "before: \"prizes[coffee].daily_stock: 5000 -> 4000\"), each pause with its\n"
	  "reason and each resume. With --json also the content of every file loaded.",
	  "0 shown; 2 no such promotion, or cannot run (usage, config, database)",
	  { CTL_OPT_JSON, { NULL } } },
	{ "promo", "pause", promo_pause, "ID", 1, 1, 0,
	  "the kill switch: visits, claims and draws answer 403 until resumed",
	  "Pauses promotion ID: within a second every worker answers visit, invite\n"
	  "claim and draws with 403 promotion_paused and changes nothing; balance,\n"
	  "me, the invite link and draws already made (the same request_id) keep\n"
	  "answering, and the page says the promotion is paused. The pause, its\n"
	  "reason and who paused are in 'promo history' and the /metrics gauge\n"
	  "luckydice_promotion_paused. Pausing a paused promotion changes nothing.",
	  "0 paused (or was already); 2 no such promotion, or cannot run (usage,\n"
	  "config, database)",
	  { { "reason", "TEXT", "why (kept in the history)", 1 }, { NULL } } },
	{ "promo", "resume", promo_resume, "ID", 1, 1, 0,
	  "end a pause: visits, claims and draws are taken again",
	  "Resumes promotion ID after 'promo pause': within a second the workers take\n"
	  "visits, claims and draws again (within the promotion's days). Recorded in\n"
	  "'promo history'.",
	  "0 resumed (or was not paused); 2 no such promotion, or cannot run (usage,\n"
	  "config, database)",
	  { { NULL } } },
	{ "promo", "list", promo_list, "", 0, 0, 0,
	  "the stored promotions: id, days, time zone, state, name",
	  "Lists the stored promotions, one a line: id, first..last day, time zone,\n"
	  "state (upcoming, active or ended) and name.",
	  NULL, { CTL_OPT_JSON, { NULL } } },
	{ "promo", "show", promo_show, "ID", 1, 1, 0,
	  "one promotion's rules; with --json its definition as stored",
	  "Shows promotion ID: its days and state, grants, invite rules, client cap\n"
	  "and each prize (release, daily and total stock, probability). With --json,\n"
	  "prints the definition as stored, a promotion file that 'promo load' takes.",
	  "0 shown; 2 no such promotion, or cannot run (usage, config, database)",
	  { CTL_OPT_JSON, { NULL } } },
	{ "token", NULL, token_run, "UID...", 1, -1, 0,
	  "a signed user token for each UID, one per line",
	  "Prints a token (uid.expiry.signature, signed with \"token_secret_file\") for\n"
	  "each UID, one a line, valid for --ttl seconds (30 days by default). A UID\n"
	  "is 1-64 of A-Z a-z 0-9 _ -; one starting with '-' goes after \"--\".",
	  NULL,
	  { { "ttl", "SECONDS", "how long the tokens are valid (default 2592000, 30 days)", 0 },
	    CTL_OPT_JSON, { NULL } } },
	{ NULL },
};
/* clang-format on */
