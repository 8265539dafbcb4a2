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

	if (!c->cfg.redis)
		return NULL;
	signal(SIGPIPE, SIG_IGN); /* hiredis writes to a socket that may close */
	if (!(cache = cache_new(c->cfg.redis, c->cfg.redis_timeout_ms)))
		ctl_die("bad \"redis\" address '%s' in '%s'", c->cfg.redis, c->cfg.path);
	return cache;
}

struct run {
	int repair;
	int tty;      /* stderr is a terminal: show progress */
	int progress; /* a progress line is on screen */
};

static void on_row(void *arg, const struct cachesync_row *r)
{
	struct run *run = arg;

	if (r->state == CACHESYNC_SAME || r->state == CACHESYNC_COLD)
		return;
	if (run->progress) {
		fputs("\r\033[K", stderr);
		run->progress = 0;
	}
	printf("DRIFT %s: ledger %lld (version %lld), cache %lld (version %lld), %s%s\n",
	       r->uid, (long long)BALANCE(r->ledger), (long long)r->ledger.version,
	       (long long)r->cached_balance, (long long)r->cached_version,
	       cachesync_state_name(r->state),
	       !run->repair ? "" : r->repaired ? ", repaired" : ", not repaired");
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

static int sync_cmd(struct ctl *c, const char *promo_id, int repair)
{
	struct run run = { .repair = repair, .tty = isatty(2) };
	struct cachesync_hooks h = { on_row, on_progress, &run };
	const struct promo *p = ctl_promo(c, promo_id);
	struct cachesync_totals t;
	struct cache *cache;
	enum ld_err e;
	int64_t drift;

	if (!(cache = ctl_cache_open(c)))
		ctl_die("no \"redis\" in '%s': there is no cache to %s", c->cfg.path,
			repair ? "rebuild" : "verify");
	e = cachesync_run(ctl_ledger(c), cache, p->id, repair, &h, &t);
	cache_free(cache);
	if (run.progress)
		fputs("\r\033[K", stderr);
	if (e == LD_ERR_IO)
		ctl_die("redis unavailable at '%s' after %lld users", c->cfg.redis, (long long)t.users);
	if (e != LD_OK)
		ctl_die("%s", ledger_errmsg(c->ledger));
	drift = t.stale + t.ahead + t.wrong;
	printf("%s '%s': %lld users, %lld same, %lld cold (no key: not drift), %lld drift"
	       " (%lld stale, %lld ahead, %lld wrong)", repair ? "rebuilt" : "verified", p->id,
	       (long long)t.users, (long long)t.same, (long long)t.cold, (long long)drift,
	       (long long)t.stale, (long long)t.ahead, (long long)t.wrong);
	if (repair)
		printf(", %lld keys written", (long long)t.written);
	putchar('\n');
	return !repair && drift > 0 ? 1 : 0;
}

int cmd_cache(struct ctl *c, int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "verify") == 0)
		return sync_cmd(c, argv[2], 0);
	if (argc == 3 && strcmp(argv[1], "rebuild") == 0)
		return sync_cmd(c, argv[2], 1);
	ctl_die("usage: luckydicectl cache verify PROMO | rebuild PROMO");
}
