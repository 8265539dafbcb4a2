/*
 * cmd_cache.c - cache verify|rebuild PROMO, and the cache connection the
 * other commands share.
 *
 * verify lists every user whose cached balance differs from the ledger
 * and exits 1 if there is any. A user with no key is "cold", not drift:
 * the service fills a key on the next read or write, and Redis may evict
 * or lose keys at any time without harm. rebuild writes the ledger's
 * value wherever the cache differs, while the service keeps serving.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cachesync.h"
#include "ctl.h"

struct cache *ctl_cache_open(struct ctl *c)
{
	struct cache *cache;
	const char *lid;

	if (!c->cfg.redis)
		return NULL;
	if (ledger_id(ctl_ledger(c), &lid) != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	signal(SIGPIPE, SIG_IGN); /* hiredis writes to a socket that may close */
	if (!(cache = cache_new(c->cfg.redis, c->cfg.redis_timeout_ms, lid)))
		ctl_die("bad \"redis\" address '%s' in '%s'", c->cfg.redis, c->cfg.path);
	return cache;
}

struct run {
	int repair;
	int tty;                  /* stderr is a terminal: show progress */
	int progress;             /* a progress line is on screen */
	struct json_object *rows; /* --json: the drifted users, else NULL */
};

static void on_row(void *arg, const struct cachesync_row *r)
{
	struct run *run = arg;

	if (r->state == CACHESYNC_SAME || r->state == CACHESYNC_COLD)
		return;
	if (run->rows) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "user", json_object_new_string(r->uid));
		json_object_object_add(o, "state",
				       json_object_new_string(cachesync_state_name(r->state)));
		json_object_object_add(o, "ledger_balance",
				       json_object_new_int64(BALANCE(r->ledger)));
		json_object_object_add(o, "ledger_version",
				       json_object_new_int64(r->ledger.version));
		json_object_object_add(o, "cache_balance",
				       json_object_new_int64(r->cached_balance));
		json_object_object_add(o, "cache_version",
				       json_object_new_int64(r->cached_version));
		if (run->repair)
			json_object_object_add(o, "repaired", json_object_new_boolean(r->repaired));
		json_object_array_add(run->rows, o);
		return;
	}
	if (run->progress) {
		fputs("\r\033[K", stderr);
		run->progress = 0;
	}
	printf("DRIFT %s: ledger %lld (version %lld), cache %lld (version %lld), %s%s\n", r->uid,
	       (long long)BALANCE(r->ledger), (long long)r->ledger.version,
	       (long long)r->cached_balance, (long long)r->cached_version,
	       cachesync_state_name(r->state),
	       !run->repair          ? ""
		       : r->repaired ? ", repaired"
				     : ", not repaired");
	fflush(stdout);
}

static void on_progress(void *arg, int64_t done, int64_t total)
{
	struct run *run = arg;

	if (!run->tty)
		return;
	fprintf(stderr, "\r\033[K%s: %lld/%lld users (%lld%%)", run->repair ? "rebuild" : "verify",
		(long long)done, (long long)total, total ? (long long)(done * 100 / total) : 100LL);
	run->progress = 1;
}

/* The totals of a run as JSON, with the drifted users (rows, taken). */
static struct json_object *totals_json(const char *promo, const struct cachesync_totals *t,
				       int repair, struct json_object *rows)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "promotion", json_object_new_string(promo));
	json_object_object_add(o, "users", json_object_new_int64(t->users));
	json_object_object_add(o, "same", json_object_new_int64(t->same));
	json_object_object_add(o, "cold", json_object_new_int64(t->cold));
	json_object_object_add(o, "drift", json_object_new_int64(t->stale + t->ahead + t->wrong));
	json_object_object_add(o, "stale", json_object_new_int64(t->stale));
	json_object_object_add(o, "ahead", json_object_new_int64(t->ahead));
	json_object_object_add(o, "wrong", json_object_new_int64(t->wrong));
	if (repair)
		json_object_object_add(o, "written", json_object_new_int64(t->written));
	json_object_object_add(o, "drifted", rows);
	return o;
}

static int sync_cmd(struct ctl *c, const struct ctl_call *call, int repair)
{
	struct run run = { .repair = repair, .tty = isatty(2) };
	struct cachesync_hooks h = { on_row, on_progress, &run };
	const struct promo *p = ctl_promo(c, call->argv[0]);
	struct cachesync_totals t;
	struct cache *cache;
	char why[256];
	enum ld_err e;
	int64_t drift;

	if (!(cache = ctl_cache_open(c)))
		ctl_die("no \"redis\" in '%s': there is no cache to %s", c->cfg.path,
			repair ? "rebuild" : "verify");
	if (ctl_flag(call, "json"))
		run.rows = json_object_new_array();
	e = cachesync_run(ctl_ledger(c), cache, p->id, repair, &h, &t);
	if (run.progress)
		fputs("\r\033[K", stderr);
	if (e != LD_OK)
		json_object_put(run.rows);
	snprintf(why, sizeof why, "%s", cache_errmsg(cache));
	cache_free(cache);
	if (e == LD_ERR_IO)
		ctl_die("redis unavailable after %lld users: %s", (long long)t.users, why);
	if (e != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	drift = t.stale + t.ahead + t.wrong;
	if (run.rows) {
		ctl_print_json(totals_json(p->id, &t, repair, run.rows));
	} else {
		printf("%s '%s': %lld users, %lld same, %lld cold (no key: not drift), %lld drift"
		       " (%lld stale, %lld ahead, %lld wrong)",
		       repair ? "rebuilt" : "verified", p->id, (long long)t.users,
		       (long long)t.same, (long long)t.cold, (long long)drift, (long long)t.stale,
		       (long long)t.ahead, (long long)t.wrong);
		if (repair)
			printf(", %lld keys written", (long long)t.written);
		putchar('\n');
	}
	return !repair && drift > 0 ? CTL_EXIT_PROBLEM : 0;
}

static int verify_run(struct ctl *c, const struct ctl_call *call)
{
	return sync_cmd(c, call, 0);
}

static int rebuild_run(struct ctl *c, const struct ctl_call *call)
{
	return sync_cmd(c, call, 1);
}

/* clang-format off */
const struct ctl_cmd ctl_cmds_cache[] = {
	{ "cache", "verify", verify_run, "PROMO", 1, 1, 0,
	  "list the users whose cached balance differs from the ledger",
	  "Compares every balance of promotion PROMO in the ledger with the Redis\n"
	  "cache and lists each user whose cached balance differs (DRIFT: stale,\n"
	  "ahead or wrong), then the totals. A user with no key is cold, not drift.\n"
	  "Pages through the ledger 1,000 users at a time, progress on a terminal.",
	  "0 no drift; 1 drift found; 2 no \"redis\" configured, Redis unavailable, or\n"
	  "cannot run (usage, config, database)",
	  { CTL_OPT_JSON, { NULL } } },
	{ "cache", "rebuild", rebuild_run, "PROMO", 1, 1, 0,
	  "write the ledger's balance wherever the cache differs (while serving)",
	  "Like verify, and writes the ledger's value wherever the cache differs,\n"
	  "through the same compare-and-set as the service, so it never puts an older\n"
	  "balance over a newer one. Safe while the service runs.",
	  "0 done; 2 no \"redis\" configured, Redis unavailable, or cannot run (usage,\n"
	  "config, database)",
	  { CTL_OPT_JSON, { NULL } } },
	{ NULL },
};
/* clang-format on */
