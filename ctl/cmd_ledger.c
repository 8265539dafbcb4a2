/*
 * cmd_ledger.c - the ledger's life: backup (checked, rotated), restore
 * (with the service stopped), ledger show|renew-id, and purge (client
 * identifiers past the retention). The runbook is docs/backup.md.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backup.h"
#include "ctl.h"
#include "purge.h"
#include "token.h"

#define BACKUP_PREFIX "luckydice-"
#define BACKUP_SUFFIX "Z.db"

/* What to say instead of a backup on PostgreSQL. */
static void pg_backup_help(void)
{
	ld_log(LOG_ERR,
	       "error: the ledger is on PostgreSQL: back it up with the server's tools, e.g.");
	ld_log(LOG_ERR,
	       "  pg_dump --format=custom --file=luckydice.dump \"$DB\"     (a logical copy)");
	ld_log(LOG_ERR,
	       "  pg_basebackup --pgdata=DIR --wal-method=stream -d \"$DB\"  (a physical copy,"
	       " for PITR)");
	ld_log(LOG_ERR,
	       "and after any restore run 'luckydicectl ledger renew-id' (docs/backup.md)");
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Removes the oldest backups of dir beyond keep (names made by --dir:
 * their order is their time). Prints each it removes. */
static void rotate(const char *dir, long keep, struct json_object *removed)
{
	size_t n = 0, cap = 64;
	char **names = xmalloc(cap * sizeof *names);
	struct dirent *d;
	DIR *dh;

	if (!(dh = opendir(dir))) {
		ld_log(LOG_WARNING, "warning: cannot read '%s' to remove old backups: %s", dir,
		       strerror(errno));
		free(names);
		return;
	}
	while ((d = readdir(dh))) {
		size_t len = strlen(d->d_name);
		if (len != strlen(BACKUP_PREFIX "20240708T000000" BACKUP_SUFFIX) ||
		    strncmp(d->d_name, BACKUP_PREFIX, strlen(BACKUP_PREFIX)) != 0 ||
		    strcmp(d->d_name + len - strlen(BACKUP_SUFFIX), BACKUP_SUFFIX) != 0)
			continue;
		if (n == cap)
			names = xrealloc(names, (cap *= 2) * sizeof *names);
		names[n++] = xstrdup(d->d_name);
	}
	closedir(dh);
	qsort(names, n, sizeof *names, cmp_names);
	for (size_t i = 0; i < n; i++) {
		char path[4200];
		if ((long)(n - i) > keep) {
			snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			if (unlink(path) != 0)
				ld_log(LOG_WARNING, "warning: cannot remove '%s': %s", path,
				       strerror(errno));
			else if (removed)
				json_object_array_add(removed, json_object_new_string(path));
			else
				printf("removed '%s' (keeping the %ld newest)\n", path, keep);
		}
		free(names[i]);
	}
	free(names);
}

/* backup FILE | backup --dir DIR [--keep N] [--method api|vacuum] [--json] */
static int backup_run(struct ctl *c, const struct ctl_call *call)
{
	const char *dir = ctl_value(call, "dir"), *method = ctl_value(call, "method");
	long keep = (long)ctl_number(call, "keep", 1, 100000, 0);
	struct ledger *l;
	struct backup_report r;
	enum db_backup_method m = DB_BACKUP_API;
	char path[4200];
	struct json_object *removed = NULL;

	if ((call->argc == 1) == (dir != NULL))
		ctl_usage_error(call, "give either FILE or --dir DIR");
	if (ctl_value(call, "keep") && !dir)
		ctl_usage_error(call, "--keep goes with --dir");
	if (method && strcmp(method, "vacuum") == 0)
		m = DB_BACKUP_VACUUM;
	else if (method && strcmp(method, "api") != 0)
		ctl_usage_error(call, "--method: 'api' or 'vacuum', not '%s'", method);
	l = ctl_ledger(c);
	if (db_engine(ledger_db(l)) == DB_PG) {
		pg_backup_help();
		return CTL_EXIT_USAGE;
	}
	if (dir) {
		time_t now = time(NULL);
		struct tm tm;
		char stamp[32];
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
		if (ld_fmt(path, sizeof path, "%s/" BACKUP_PREFIX "%s" BACKUP_SUFFIX, dir, stamp) !=
		    0)
			ctl_die("--dir: the path '%s' is too long", dir);
	} else {
		snprintf(path, sizeof path, "%s", call->argv[0]);
	}
	switch (backup_take(l, path, m, &r)) {
	case LD_OK: break;
	case LD_ERR_INVALID:
		ld_log(LOG_ERR, "error: the backup failed its check, nothing was kept: %s",
		       ledger_errmsg(l));
		return CTL_EXIT_PROBLEM;
	default: ctl_die("%s", ledger_errmsg(l));
	}
	if (ctl_flag(call, "json")) {
		struct json_object *o = json_object_new_object(), *rows = json_object_new_object();
		json_object_object_add(o, "file", json_object_new_string(path));
		json_object_object_add(o, "bytes", json_object_new_int64(r.bytes));
		json_object_object_add(o, "schema_version", json_object_new_int(r.schema));
		json_object_object_add(o, "ledger_id", json_object_new_string(r.ledger_id));
		json_object_object_add(
			o, "method", json_object_new_string(m == DB_BACKUP_API ? "api" : "vacuum"));
		json_object_object_add(o, "copy_seconds", json_object_new_double(r.seconds));
		json_object_object_add(o, "check_seconds", json_object_new_double(r.check_seconds));
		json_object_object_add(o, "integrity", json_object_new_string("ok"));
		for (size_t i = 0; i < r.ntables; i++)
			json_object_object_add(rows, r.tables[i],
					       json_object_new_int64(r.copy_rows[i]));
		json_object_object_add(o, "rows", rows);
		if (dir) {
			removed = json_object_new_array();
			if (keep > 0)
				rotate(dir, keep, removed);
			json_object_object_add(o, "removed", removed);
		}
		ctl_print_json(o);
		return 0;
	}
	printf("backup '%s': %lld bytes, schema version %d, ledger id %s\n", path,
	       (long long)r.bytes, r.schema, r.ledger_id);
	printf("  copied in %.2f s (%s), checked in %.2f s: integrity ok, the schema version and"
	       " the rows of every table as in the ledger at the copy's instant\n",
	       r.seconds, m == DB_BACKUP_API ? "online backup" : "VACUUM INTO", r.check_seconds);
	printf("  rows:");
	for (size_t i = 0; i < r.ntables; i++)
		printf(" %s %lld%s", r.tables[i], (long long)r.copy_rows[i],
		       i + 1 < r.ntables ? "," : "\n");
	if (dir && keep > 0)
		rotate(dir, keep, NULL);
	return 0;
}

/* restore FILE: the service stopped. */
static int restore_run(struct ctl *c, const struct ctl_call *call)
{
	struct ledger_options lo = { 0 };
	struct restore_report r;
	char err[1024];
	enum ld_err e;

	if (ld_is_conninfo(c->cfg.db)) {
		ld_log(LOG_ERR,
		       "error: the ledger is on PostgreSQL: restore it with pg_restore or"
		       " to a point");
		ld_log(LOG_ERR, "in time (docs/backup.md), then, before the service starts, run");
		ld_log(LOG_ERR, "  luckydicectl ledger renew-id");
		return CTL_EXIT_USAGE;
	}
	lo.busy_timeout_ms = c->cfg.busy_timeout_ms;
	lo.synchronous_full = c->cfg.synchronous_full;
	if ((e = restore_put(call->argv[0], c->cfg.db, &lo, ld_now_ms(), &r, err, sizeof err)) !=
	    LD_OK)
		ctl_die("%s%s", err, e == LD_ERR_BUSY ? "" : " (the database was not changed)");
	printf("restored '%s' into '%s'\n", call->argv[0], c->cfg.db);
	printf("  schema version %d%s%d\n", r.from_schema,
	       r.from_schema == r.to_schema ? ", is " : ", migrated to ", r.to_schema);
	printf("  ledger id %s (the backup's was %s%s%s): every new event key and cache key"
	       " differs from all issued before\n",
	       r.ledger_id, r.backup_id[0] ? r.backup_id : "none",
	       r.replaced_id[0] ? ", the replaced ledger's " : "", r.replaced_id);
	printf("  last draw id %lld; %lld events wait for the dispatcher, %lld dead\n",
	       (long long)r.last_draw, (long long)r.pending, (long long)r.dead);
	if (r.kept[0])
		printf("  the database it replaced is kept as '%s'\n", r.kept);
	printf("next: start the service, then the dispatcher delivers what waits"
	       " (docs/backup.md)\n");
	return 0;
}

/* ledger show [--json] */
static int ledger_show(struct ctl *c, const struct ctl_call *call)
{
	static const char *const keys[] = { "ledger_id", "previous_ledger_id", "renewed_at",
					    "renewed_because" };
	struct ledger *l = ctl_ledger(c);
	struct json_object *o = json_object_new_object();
	char v[4200], *shown;
	int schema, found;

	if (db_schema_version(ledger_db(l), &schema) != LD_OK)
		ctl_die("%s", ledger_errmsg(l));
	shown = ld_db_shown(c->cfg.db); /* a connection string's password never */
	json_object_object_add(o, "database", json_object_new_string(shown));
	free(shown);
	json_object_object_add(
		o, "engine",
		json_object_new_string(db_engine(ledger_db(l)) == DB_PG ? "postgresql" : "sqlite"));
	json_object_object_add(o, "schema_version", json_object_new_int(schema));
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (ledger_meta_get(l, keys[i], v, sizeof v, &found) != LD_OK)
			ctl_die("%s", ledger_errmsg(l));
		if (found && strcmp(keys[i], "renewed_at") == 0) {
			char at[32];
			ld_iso_time(strtoll(v, NULL, 10), 0, at);
			snprintf(v, sizeof v, "%s", at);
		}
		json_object_object_add(o, keys[i], found ? json_object_new_string(v) : NULL);
	}
	if (ctl_flag(call, "json")) {
		ctl_print_json(o);
		return 0;
	}
	json_object_object_foreach(o, k, val)
		printf("%-19s %s\n", k, val ? json_object_get_string(val) : "-");
	json_object_put(o);
	return 0;
}

/* ledger renew-id */
static int ledger_renew(struct ctl *c, const struct ctl_call *call)
{
	char old[LEDGER_ID_LEN + 1], now[LEDGER_ID_LEN + 1], because[256];

	(void)call;
	if (!ld_is_conninfo(c->cfg.db)) {
		/* on SQLite: only while nothing has it open */
		struct ledger_options lo = { .alone = 1,
					     .busy_timeout_ms = c->cfg.busy_timeout_ms };
		char err[1024];
		if (ledger_open(c->cfg.db, &lo, &c->ledger, err, sizeof err) != LD_OK)
			ctl_die("%s", err);
	}
	snprintf(because, sizeof because, "renewed by %s", ctl_operator());
	if (ledger_renew_id(ctl_ledger(c), ld_now_ms(), because, old, now) != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	printf("ledger id %s (was %s): new event keys and cache keys differ from all issued"
	       " before\n",
	       now, old[0] ? old : "none");
	return 0;
}

/* purge [--days N] [--json] */
static int purge_run(struct ctl *c, const struct ctl_call *call)
{
	long days = (long)ctl_number(call, "days", 1, 3650, c->cfg.retention_days);
	int64_t cutoff = ld_now_ms() - (int64_t)days * 86400000;
	unsigned char key[PURGE_KEY_LEN];
	struct purge_report r;
	struct token_key tk;
	char err[512], at[32];

	if (token_key_load(c->cfg.token_secret_file, &tk, err, sizeof err) != LD_OK)
		ctl_die("%s", err);
	purge_key(tk.bytes, tk.len, key);
	token_key_release(&tk);
	if (purge_clients(ctl_ledger(c), key, cutoff, &r) != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	sodium_memzero(key, sizeof key);
	ld_iso_time(cutoff, 0, at);
	if (ctl_flag(call, "json")) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "before", json_object_new_string(at));
		json_object_object_add(o, "retention_days", json_object_new_int64(days));
		json_object_object_add(o, "clients", json_object_new_int64(r.clients));
		json_object_object_add(o, "invites", json_object_new_int64(r.invites));
		json_object_object_add(o, "claim_refusals", json_object_new_int64(r.refusals));
		ctl_print_json(o);
		return 0;
	}
	printf("purged client identifiers before %s (%ld days): %lld clients made pseudonyms in"
	       " %lld invites and %lld refused claims\n",
	       at, days, (long long)r.clients, (long long)r.invites, (long long)r.refusals);
	return 0;
}

/* clang-format off */
const struct ctl_cmd ctl_cmds_ledger[] = {
	{ "backup", NULL, backup_run, "[FILE]", 0, 1, 0,
	  "an online copy of the ledger, checked; with --dir, rotated",
	  "Copies the SQLite ledger into the new file FILE (never over an existing\n"
	  "one) while the service runs, then checks the copy: PRAGMA integrity_check,\n"
	  "its schema version, and the rows of every table against the ledger at the\n"
	  "copy's instant. A copy that fails is removed. Prints what it wrote. With\n"
	  "--dir DIR the file is DIR/luckydice-<UTC time>Z.db, and --keep N then\n"
	  "removes the oldest of those beyond N (the schedule in docs/backup.md runs\n"
	  "it nightly). --method vacuum copies with VACUUM INTO instead of the online\n"
	  "backup API (measured in docs/performance.md). On PostgreSQL it says how to\n"
	  "use pg_dump or pg_basebackup instead, and exits 2.",
	  "0 written and checked; 1 the copy failed its check (removed); 2 cannot run\n"
	  "(usage, config, database, the file exists, PostgreSQL)",
	  { { "dir", "DIR", "write DIR/luckydice-<UTC time>Z.db instead of FILE", 0 },
	    { "keep", "N", "with --dir: keep the N newest backups there, remove older ones", 0 },
	    { "method", "METHOD", "api (the online backup API, default) or vacuum", 0 },
	    CTL_OPT_JSON, { NULL } } },
	{ "restore", NULL, restore_run, "FILE", 1, 1, 0,
	  "put a backup in place of the ledger (service stopped); renews the ledger id",
	  "Puts the backup FILE in place of the SQLite ledger. The service and the\n"
	  "dispatcher must be stopped: nothing else may have the database open (it is\n"
	  "checked). The backup is copied beside the database, checked, migrated to\n"
	  "this program's schema and given a new ledger id, so that the events it\n"
	  "issues from now on never reuse an Idempotency-Key issued before, even where\n"
	  "draw ids repeat, and its cache keys start cold; its events not delivered\n"
	  "are due at once. The database it replaces is kept as\n"
	  "DB.before-restore-<UTC time>. On PostgreSQL it says how to restore with\n"
	  "pg_restore and 'ledger renew-id', and exits 2. The runbook is docs/backup.md.",
	  "0 restored; 2 cannot run (usage, config, the database in use, a backup that\n"
	  "cannot be read or fails its check: then nothing changed; PostgreSQL)",
	  { { NULL } } },
	{ "ledger", "show", ledger_show, "", 0, 0, 0,
	  "the ledger's engine, schema version and id (and the id before a renewal)",
	  "Prints the database, its engine, schema version and ledger id, and after a\n"
	  "restore or renewal the id before it, when and why it was renewed.",
	  NULL, { CTL_OPT_JSON, { NULL } } },
	{ "ledger", "renew-id", ledger_renew, "", 0, 0, 0,
	  "a new ledger id, after a restore done by other means (pg_restore, PITR)",
	  "Gives the ledger a new random id, as 'restore' does: every event key and\n"
	  "cache key from then on differs from all issued before. Run it after a\n"
	  "restore by other means (PostgreSQL's pg_restore or point-in-time recovery,\n"
	  "a file copied back by hand) and before the service starts: a running\n"
	  "program keeps the id it read (on SQLite it refuses while the database is\n"
	  "open elsewhere).",
	  NULL, { { NULL } } },
	{ "purge", NULL, purge_run, "", 0, 0, 0,
	  "client identifiers older than \"retention_days\" made keyed-hash pseudonyms",
	  "Replaces the client identifier (address or device id) of every credited\n"
	  "invite and refused claim older than \"retention_days\" (90 by default, or\n"
	  "--days) with a keyed hash of itself (\"~\" and 32 hex digits, keyed by the\n"
	  "token secret): the rows and every count stay, one client's rows still group\n"
	  "together, but nobody can read or test which client it was. Runs on the\n"
	  "backup's schedule; running it again finds nothing more.",
	  NULL,
	  { { "days", "N", "the retention in days instead of the config's", 0 },
	    CTL_OPT_JSON, { NULL } } },
	{ NULL },
};
/* clang-format on */
