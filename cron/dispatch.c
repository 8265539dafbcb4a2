/*
 * dispatch.c - luckydice-dispatch: one run of the outbox dispatcher, as
 * cron starts it every minute. It takes a lock so runs never overlap,
 * then claims due events in rounds, sends each round (send.c) and records
 * the outcomes, until nothing is due or --max-seconds have passed.
 *
 * Exit codes: 0 all well, 1 some deliveries failed (retried, dead, or
 * waiting for a URL that is not configured), 2 cannot run.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "config.h"
#include "ledger.h"
#include "log.h"
#include "db.h"
#include "outbox.h"
#include "send.h"
#include "token.h"

struct options {
	const char *config; /* --config, else config_default_path() */
	int max_seconds;    /* 0: until nothing is due */
	int batch;          /* 0: the config's */
	int dry_run;
	int quiet;
};

struct run {
	struct options opt;
	struct ld_config cfg;
	struct ledger *ledger;
	struct token_key key;
	struct sender *sender;
	int lock_fd;
	int mask; /* kinds with a URL */
	int64_t start_ms;
	int64_t backlog;     /* due at start, for progress */
	int64_t sent;        /* done in earlier rounds */
	int64_t progress_ms; /* last progress line */
	int progress_shown;
	int64_t delivered, retried, dead, stale;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ld_log(LOG_ERR, "luckydice-dispatch: %s", msg);
	exit(2);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: luckydice-dispatch [--config FILE] [--max-seconds N] [--batch N]\n"
		"                          [--dry-run] [--quiet]\n"
		"       luckydice-dispatch --help | --version\n\n"
		"One run of the outbox dispatcher (cron or a systemd timer starts it every\n"
		"minute): sends the due events to reward_url and notify_url, records each\n"
		"outcome, and prints 'dispatch: delivered N, retried N, dead N, still due N,\n"
		"S.SS s'. A lock beside the database makes an overlapping run exit at once.\n\n"
		"options:\n"
		"  --config FILE      the config file (default: $LUCKYDICE_CONFIG if set,\n"
		"                     else %s)\n"
		"  --max-seconds N    start no delivery after N seconds (default: until\n"
		"                     nothing is due)\n"
		"  --batch N          events claimed per round (default: dispatch.batch)\n"
		"  --dry-run          list what is due and would be sent; send nothing\n"
		"  --quiet            print only when an event went dead or waits for a URL\n"
		"                     that is not configured\n"
		"  -h, --help         print this help and exit\n"
		"  --version          print the version and exit\n\n"
		"exit status: 0 all well (or another run holds the lock); 1 some deliveries\n"
		"failed (retried, dead, or waiting for an unset URL); 2 cannot run (usage,\n"
		"config, secret, database).\n\n"
		"See luckydice-dispatch(8), luckydice.json(5).\n",
		config_installed_path());
}

static int parse_int(const char *s, const char *name, int min, int max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		die("%s: '%s' is not a number from %d to %d", name, s, min, max);
	return (int)v;
}

static void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "max-seconds", required_argument, NULL, 's' },
		{ "batch", required_argument, NULL, 'b' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof *o);
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 's': o->max_seconds = parse_int(optarg, "--max-seconds", 1, 86400); break;
		case 'b': o->batch = parse_int(optarg, "--batch", 1, 100000); break;
		case 'n': o->dry_run = 1; break;
		case 'q': o->quiet = 1; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("luckydice-dispatch (luckydice) %s\n", PACKAGE_VERSION); exit(0);
		default: ld_log(LOG_ERR, "(luckydice-dispatch --help for the options)"); exit(2);
		}
	}
	if (optind != argc)
		die("unexpected argument '%s' (luckydice-dispatch --help for the options)",
		    argv[optind]);
	if (!o->config)
		o->config = config_default_path();
}

/*
 * Takes the run lock: an exclusive flock on "<db>.dispatch.lock", which
 * the kernel drops when the process ends, even by kill -9. Returns 1 when
 * taken, 0 when another run holds it; exits 2 when the file cannot be
 * opened. Run as root, the lock file gets the database's owner, as SQLite
 * does with the files it makes beside the database, so that a run by hand
 * leaves nothing the scheduled runs (as the service's user) cannot open.
 */
static int take_lock(struct run *r)
{
	char path[4096];
	struct stat st;

	/* On PostgreSQL runs on many hosts claim events at once without
	 * taking each other's (outbox_claim): no lock. */
	if (ld_is_conninfo(r->cfg.db)) {
		r->lock_fd = -1;
		return 1;
	}
	if (ld_fmt(path, sizeof path, "%s.dispatch.lock", r->cfg.db) != 0)
		die("lock file path of '%s' is too long", r->cfg.db);
	r->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (r->lock_fd < 0)
		die("cannot open lock file '%s': %s", path, strerror(errno));
	if (geteuid() == 0 && stat(r->cfg.db, &st) == 0 && st.st_uid != 0 &&
	    fchown(r->lock_fd, st.st_uid, st.st_gid) != 0)
		die("cannot give lock file '%s' to the database's owner: %s", path,
		    strerror(errno));
	if (flock(r->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 1;
	if (errno != EWOULDBLOCK)
		die("cannot lock '%s': %s", path, strerror(errno));
	return 0;
}

static void show_progress(void *arg, size_t done)
{
	struct run *r = arg;
	int64_t now = ld_now_ms(), n = r->sent + (int64_t)done;
	double s = (double)(now - r->start_ms) / 1000;

	if (now - (r->progress_ms ? r->progress_ms : r->start_ms) < 1000)
		return;
	r->progress_ms = now;
	fprintf(stderr, "\rdispatch: %lld of %lld sent, %.0f/s   ", (long long)n,
		(long long)r->backlog, s > 0 ? (double)n / s : 0.0);
	r->progress_shown = 1;
}

/* --dry-run: lists what is due, claims and changes nothing. */
static int dry_run(struct run *r)
{
	struct outbox_row *rows;
	size_t n;

	if (outbox_list(r->ledger, OUTBOX_DUE, ld_now_ms(), 0, &rows, &n) != LD_OK)
		die("%s", ledger_errmsg(r->ledger));
	for (size_t i = 0; i < n; i++) {
		const char *url = sender_url(r->sender, rows[i].kind);
		printf("would send %lld %s %s -> %s (%zu bytes, attempt %d)\n",
		       (long long)rows[i].id, rows[i].kind, rows[i].key,
		       url ? url : "(no URL configured: waits)", strlen(rows[i].payload),
		       rows[i].attempts + 1);
	}
	printf("dispatch: dry run, %zu due\n", n);
	outbox_rows_free(rows, n);
	return 0;
}

/*
 * One round: claim up to batch events, send them, record the outcomes.
 * Returns how many were claimed (0: nothing due), and sets *troubled when
 * the round retried events and delivered none (the service is down: the
 * run ends and the backoff does its work).
 */
static size_t round_once(struct run *r, int batch, int64_t deadline_ms, int *troubled)
{
	const struct ld_dispatch_config *d = &r->cfg.dispatch;
	int64_t now = ld_now_ms(), send_until;
	int64_t delivered = 0, retried = 0;
	struct outbox_event *ev;
	struct outbox_mark *marks;
	size_t n, stale;
	enum ld_err e;

	*troubled = 0;
	if ((e = outbox_claim(r->ledger, now, (int64_t)d->lease_seconds * 1000, r->mask, batch, &ev,
			      &n)) != LD_OK)
		die("%s", ledger_errmsg(r->ledger));
	if (n == 0)
		return 0;
	/* Nothing starts so late that it could finish after the lease. */
	send_until = now + (int64_t)d->lease_seconds * 1000 - d->timeout_ms;
	if (send_until <= now)
		send_until = now + 1;
	if (deadline_ms && deadline_ms < send_until)
		send_until = deadline_ms;
	marks = xcalloc(n, sizeof *marks);
	sender_run(r->sender, ev, n, send_until, marks,
		   isatty(2) && !r->opt.quiet && r->backlog > 1000 ? show_progress : NULL, r);
	for (size_t i = 0; i < n; i++) {
		switch (marks[i].verdict) {
		case OUTBOX_DELIVERED: delivered++; break;
		case OUTBOX_RETRY: retried++; break;
		case OUTBOX_DEAD: r->dead++; break;
		case OUTBOX_RELEASE: break;
		}
	}
	if ((e = outbox_mark(r->ledger, marks, n, ld_now_ms(), &stale)) != LD_OK)
		die("%s", ledger_errmsg(r->ledger));
	r->delivered += delivered;
	r->retried += retried;
	r->stale += (int64_t)stale;
	r->sent += (int64_t)n;
	*troubled = retried > 0 && delivered == 0;
	free(marks);
	outbox_events_free(ev, n);
	return n;
}

/*
 * Loads the signing key, which must be a secret of its own: whoever
 * verifies events holds it, and with the token secret a reward service
 * could mint any user's token. So there is no falling back to the token
 * secret, and a signing secret that is one of the token secrets (the
 * same file, or the same bytes when the dispatcher can read those) is
 * refused.
 */
static void load_signing_key(struct run *r)
{
	const char *tokens[] = { r->cfg.token_secret_file, r->cfg.token_previous_secret_file };
	char err[512];

	if (!r->cfg.signing_secret_file)
		die("\"signing_secret_file\" is not set in '%s': events are signed with a"
		    " secret of their own, never the token secret",
		    r->cfg.path);
	if (token_key_load(r->cfg.signing_secret_file, &r->key, err, sizeof err) != LD_OK)
		die("signing secret: %s", err);
	for (size_t i = 0; i < 2; i++) {
		struct token_key t;
		int same;

		if (!tokens[i] || token_key_load(tokens[i], &t, NULL, 0) != LD_OK)
			continue;
		same = t.len == r->key.len && sodium_memcmp(t.bytes, r->key.bytes, t.len) == 0;
		token_key_release(&t);
		if (same)
			die("\"signing_secret_file\" '%s' holds the same secret as '%s': events"
			    " need a secret of their own",
			    r->cfg.signing_secret_file, tokens[i]);
	}
}

static void open_all(struct run *r)
{
	struct ledger_options lo = { 0 };
	char err[512];

	if (config_load(r->opt.config, &r->cfg, err, sizeof err) != LD_OK)
		die("%s", err);
	ld_log_set_level(r->cfg.log_level);
	load_signing_key(r);
	if (r->cfg.reward_url)
		r->mask |= OUTBOX_REWARD;
	if (r->cfg.notify_url)
		r->mask |= OUTBOX_NOTIFY;
	if (!(r->sender = sender_new(&r->cfg, &r->key, err, sizeof err)))
		die("%s", err);
	lo.busy_timeout_ms = r->cfg.busy_timeout_ms;
	lo.synchronous_full = r->cfg.synchronous_full;
	if (ledger_open(r->cfg.db, &lo, &r->ledger, err, sizeof err) != LD_OK)
		die("%s", err);
	if (ledger_check_schema(r->ledger) != LD_OK)
		die("%s", ledger_errmsg(r->ledger));
}

static void close_all(struct run *r)
{
	sender_free(r->sender);
	ledger_free(r->ledger);
	token_key_release(&r->key);
	config_release(&r->cfg);
	if (r->lock_fd >= 0)
		close(r->lock_fd);
}

int main(int argc, char **argv)
{
	struct run r;
	int64_t deadline = 0, due = 0, waiting = 0;
	int batch, troubled = 0, failed;

	memset(&r, 0, sizeof r);
	r.lock_fd = -1;
	r.start_ms = ld_now_ms();
	parse_options(argc, argv, &r.opt);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		die("cannot initialise libsodium");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		die("cannot initialise libcurl");
	open_all(&r);
	if (r.opt.dry_run) {
		failed = dry_run(&r);
		close_all(&r);
		curl_global_cleanup();
		return failed;
	}
	if (!take_lock(&r)) {
		if (!r.opt.quiet)
			printf("dispatch: another dispatcher is running\n");
		close_all(&r);
		curl_global_cleanup();
		return 0;
	}
	batch = r.opt.batch ? r.opt.batch : r.cfg.dispatch.batch;
	if (r.opt.max_seconds)
		deadline = r.start_ms + (int64_t)r.opt.max_seconds * 1000;
	if (outbox_count_due(r.ledger, r.start_ms, 3, &r.backlog) != LD_OK)
		die("%s", ledger_errmsg(r.ledger));
	while (!troubled && (!deadline || ld_now_ms() < deadline))
		if (round_once(&r, batch, deadline, &troubled) == 0)
			break;
	if (r.progress_shown)
		fputc('\n', stderr);
	if (outbox_count_due(r.ledger, ld_now_ms(), 3, &due) != LD_OK ||
	    outbox_count_due(r.ledger, ld_now_ms(), 3 & ~r.mask, &waiting) != LD_OK)
		die("%s", ledger_errmsg(r.ledger));
	failed = r.retried > 0 || r.dead > 0 || waiting > 0;
	if (!r.opt.quiet || r.dead > 0 || waiting > 0) {
		printf("dispatch: delivered %lld, retried %lld, dead %lld, still due %lld, %.2f s",
		       (long long)r.delivered, (long long)r.retried, (long long)r.dead,
		       (long long)due, (double)(ld_now_ms() - r.start_ms) / 1000);
		if (waiting > 0)
			printf("; %lld wait for %s, which is not configured", (long long)waiting,
			       !(r.mask & OUTBOX_REWARD) && !(r.mask & OUTBOX_NOTIFY)
				       ? "reward_url and notify_url"
				       : !(r.mask & OUTBOX_REWARD) ? "reward_url"
								   : "notify_url");
		putchar('\n');
	}
	if (r.stale > 0)
		ld_log(LOG_WARNING,
		       "luckydice-dispatch: %lld outcomes not recorded: the lease"
		       " had passed to another run (those events are sent again)",
		       (long long)r.stale);
	close_all(&r);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
