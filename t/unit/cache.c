/*
 * t/unit/cache.c - lib/cache.c against a real redis-server on a unix
 * socket: misses, the version compare-and-set, malformed values, a hanging
 * (SIGSTOPped) Redis, a restarted one (empty script cache: the NOSCRIPT
 * fallback) and malformed addresses. Also reports the median GET latency.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

#include "cache.h"
#include "../tap.h"

#define TIMEOUT_MS 100
#define P          "promo-1"

static char dir[] = "/tmp/ld-cache-XXXXXX";
/* The clock of the cache's pause after a failure, moved by hand: the
 * pause is tested to the millisecond, and no test sleeps through it. */
static int64_t fake_now = 5000000;

static int64_t fake_clock(void *arg)
{
	return *(const int64_t *)arg;
}

static char sock[64];
static pid_t redis_pid = -1;

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* cache_put as 1 stored, 0 kept the newer one, -1 Redis unavailable,
 * -2 refused (a bad key or version). */
static int put(struct cache *c, const char *uid, int64_t version, int64_t balance)
{
	int stored = -3;
	enum ld_err e = cache_put(c, P, uid, version, balance, &stored);

	return e == LD_OK ? stored : e == LD_ERR_IO ? -1 : -2;
}

static void stop_redis(void)
{
	if (redis_pid > 0) {
		kill(redis_pid, SIGKILL);
		waitpid(redis_pid, NULL, 0);
		redis_pid = -1;
	}
}

/* atexit: whatever happened, no redis-server outlives the test. */
static void cleanup(void)
{
	char path[128];

	stop_redis();
	snprintf(path, sizeof(path), "%s/redis.log", dir);
	unlink(path);
	unlink(sock);
	rmdir(dir);
}

/* Sends one command on a fresh connection of our own (NULL on failure). */
static redisReply *raw(const char *fmt, ...)
{
	struct timeval tv = { 1, 0 };
	redisContext *rc = redisConnectUnixWithTimeout(sock, tv);
	redisReply *r = NULL;
	va_list ap;

	if (rc != NULL && rc->err == 0 && redisSetTimeout(rc, tv) == REDIS_OK) {
		va_start(ap, fmt);
		r = redisvCommand(rc, fmt, ap);
		va_end(ap);
	}
	if (rc != NULL)
		redisFree(rc);
	return r;
}

/* Starts redis-server on sock and waits (up to 5 s) until it answers PING. */
static void start_redis(void)
{
	char log[128];
	redisReply *r;
	int fd, i;

	snprintf(log, sizeof(log), "%s/redis.log", dir);
	if ((redis_pid = fork()) == -1)
		bail("cannot fork: %s", strerror(errno));
	if (redis_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* even if we crash */
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) != -1) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock,
		       "--save", "", "--appendonly", "no", "--daemonize", "no", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500; i++) {
		if (waitpid(redis_pid, NULL, WNOHANG) == redis_pid) {
			redis_pid = -1;
			bail("redis-server exited at once (see %s)", log);
		}
		if ((r = raw("PING")) != NULL) {
			i = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
			freeReplyObject(r);
			if (i)
				return;
		}
		sleep_ms(10);
	}
	bail("redis-server did not answer PING within 5 s");
}

/* The number of scripts in Redis's script cache (INFO memory), or -1. */
static long cached_scripts(void)
{
	redisReply *r = raw("INFO memory");
	const char *s;
	long n = -1;

	if (r != NULL && r->type == REDIS_REPLY_STRING &&
	    (s = strstr(r->str, "number_of_cached_scripts:")) != NULL)
		n = strtol(s + strlen("number_of_cached_scripts:"), NULL, 10);
	if (r != NULL)
		freeReplyObject(r);
	return n;
}

/* Stores s under the key of (P, uid) directly; bails on failure. */
static void set_raw_string(const char *uid, const char *s)
{
	redisReply *r = raw("SET ld:b:" P ":%s %s", uid, s);

	if (r == NULL || r->type != REDIS_REPLY_STATUS)
		bail("cannot SET a raw value");
	freeReplyObject(r);
}

static void t_addr(void)
{
	static const char *bad[] = { NULL,
				     "",
				     "localhost",
				     ":6379",
				     "host:",
				     "host:0",
				     "host:65536",
				     "host:12a",
				     "host:-1",
				     "host:006379",
				     "[]:6379",
				     "a b:6379",
				     "/tmp/"
				     "0123456789012345678901234567890123"
				     "45678901234567890123456789012345678901234567890123456789"
				     "0123456789.sock" };
	static const char *good[] = { "127.0.0.1:6379", "localhost:1",     "[::1]:6379",
				      "::1:6379",       "/run/redis.sock", "./r.sock" };
	struct cache *c;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(cache_new(bad[i], TIMEOUT_MS, NULL) == NULL, "malformed addr '%s'",
		   bad[i] ? bad[i] : "(null)");
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ok((c = cache_new(good[i], TIMEOUT_MS, NULL)) != NULL, "addr '%s'", good[i]);
		cache_free(c);
	}
	cache_free(NULL);
	ok(cache_new("./r.sock", TIMEOUT_MS, "") == NULL, "an empty ledger id");
	ok(cache_new("./r.sock", TIMEOUT_MS, "a:b") == NULL, "a ledger id with ':'");
}

/* The ledger id goes into every key: two ledgers (a restored one and the
 * one it replaced) never see each other's balances. */
static void t_ledger_ids(void)
{
	struct cache *a = cache_new(sock, TIMEOUT_MS, "00000000000000aa");
	struct cache *b = cache_new(sock, TIMEOUT_MS, "00000000000000bb");
	int64_t v = 0, bal = 0;
	redisReply *r;

	if (a == NULL || b == NULL)
		bail("cache_new with a ledger id failed");
	is_int(cache_put(a, P, "lu", 7, 70, NULL), LD_OK, "ledger aa: put v7");
	r = raw("GET ld:b:00000000000000aa:" P ":lu");
	is_string(r && r->type == REDIS_REPLY_STRING ? r->str : NULL, "7:70",
		  "stored under ld:b:{ledger}:{promo}:{uid}");
	if (r != NULL)
		freeReplyObject(r);
	is_int(cache_get(b, P, "lu", &v, &bal), LD_ERR_NOTFOUND, "ledger bb: a miss");
	is_int(cache_put(b, P, "lu", 2, 20, NULL), LD_OK, "ledger bb: v2 is stored");
	cache_get(b, P, "lu", &v, &bal);
	ok(v == 2 && bal == 20, "a lower version of another ledger is its own value");
	cache_get(a, P, "lu", &v, &bal);
	ok(v == 7 && bal == 70, "and ledger aa keeps its own");
	cache_free(a);
	cache_free(b);
}

/* A refused TCP connection fails once, then the pause answers at once. */
static void t_refused(void)
{
	struct cache *c = cache_new("127.0.0.1:1", TIMEOUT_MS, NULL);
	int64_t v, b;

	is_int(cache_get(c, P, "u", &v, &b), LD_ERR_IO, "refused connection: LD_ERR_IO");
	is_string(cache_errmsg(c), "redis '127.0.0.1:1': cannot connect: Connection refused",
		  "with hiredis' words");
	is_int(put(c, "u", 1, 1), -1, "again unavailable during the pause");
	is_string(cache_errmsg(c), "redis '127.0.0.1:1': cannot connect: Connection refused",
		  "saying why");
	is_int((long long)cache_stats(c)->errors, 1, "counted once");
	cache_free(c);
}

static void t_values(struct cache *c)
{
	static const char *junk[] = { "garbage",
				      "1:",
				      ":5",
				      "01:5",
				      "1:5x",
				      "1:-0",
				      "1:+5",
				      "-1:5",
				      "9223372036854775808:1",
				      "1:2:3",
				      "1:9223372036854775808",
				      "1:-9223372036854775809",
				      " 1:5" };
	int64_t v = -1, b = -1;
	uint64_t errors;
	size_t i;
	redisReply *r;

	is_int(cache_get(c, P, "u1", &v, &b), LD_ERR_NOTFOUND, "a missing key is a miss");
	is_int(put(c, "u1", 1, 10), 1, "put v1: stored");
	is_int(cache_get(c, P, "u1", &v, &b), LD_OK, "get: hit");
	ok(v == 1 && b == 10, "v1 balance 10");
	r = raw("GET ld:b:" P ":u1");
	is_string(r && r->type == REDIS_REPLY_STRING ? r->str : NULL, "1:10",
		  "stored as \"version:balance\"");
	if (r != NULL)
		freeReplyObject(r);
	is_int(put(c, "u1", 0, 99), 0, "put an older version: kept");
	is_int(put(c, "u1", 1, 99), 0, "put the same version: kept");
	cache_get(c, P, "u1", &v, &b);
	ok(v == 1 && b == 10, "value unchanged");
	is_int(put(c, "u1", 2, -3), 1, "put a newer version: stored");
	cache_get(c, P, "u1", &v, &b);
	ok(v == 2 && b == -3, "v2, negative balance");

	put(c, "u2", 5, 50);
	is_int(put(c, "u2", 3, 30), 0, "v5 then v3: kept");
	is_int(put(c, "u2", 4, 40), 0, "then v4: kept");
	cache_get(c, P, "u2", &v, &b);
	ok(v == 5 && b == 50, "still v5");

	put(c, "u3", 9007199254740993LL, 1);
	is_int(put(c, "u3", 9007199254740992LL, 2), 0, "2^53 after 2^53+1: kept (exact compare)");
	is_int(put(c, "u3", 10000000000LL, 2), 0, "shorter: kept");
	is_int(put(c, "u3", INT64_MAX, INT64_MIN), 1, "INT64_MAX stored");
	cache_get(c, P, "u3", &v, &b);
	ok(v == INT64_MAX && b == INT64_MIN, "int64 extremes round-trip");
	is_int(put(c, "u3", INT64_MAX - 1, 0), 0, "INT64_MAX-1: kept");
	is_int(put(c, "u3", -1, 0), -2, "negative version refused");
	ok(strstr(cache_errmsg(c), "/r.sock': negative version") != NULL, "named: %s",
	   cache_errmsg(c));
	put(c, "u4", 999999999, 1);
	is_int(put(c, "u4", 1000000000, 2), 1, "9 to 10 digits: stored");
	is_int(put(c, "u4", 999999999, 3), 0, "10 to 9 digits: kept");
	is_int(put(c, "u4", 1999999999, 4), 1, "high part up: stored");
	is_int(put(c, "u4", 1000000001, 5), 0, "high part down: kept");

	is_int(cache_set_raw(c, P, "u2", 2, 20), LD_OK, "set_raw over v5");
	cache_get(c, P, "u2", &v, &b);
	ok(v == 2 && b == 20, "set_raw skips the version check");
	is_int(cache_del(c, P, "u2"), LD_OK, "del");
	is_int(cache_get(c, P, "u2", &v, &b), LD_ERR_NOTFOUND, "deleted: a miss");
	is_int(cache_del(c, P, "u2"), LD_OK, "del of a missing key");

	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		set_raw_string("j", junk[i]);
		errors = cache_stats(c)->errors;
		ok(cache_get(c, P, "j", &v, &b) == LD_ERR_NOTFOUND &&
			   cache_stats(c)->errors == errors + 1 && put(c, "j", 1, 1) == 1,
		   "stored '%s': a miss, an error, overwritten by v1", junk[i]);
	}

	r = raw("SCRIPT FLUSH");
	if (r != NULL)
		freeReplyObject(r);
	is_int(cached_scripts(), 0, "script cache flushed");
	is_int(put(c, "u1", 3, 30), 1, "put after SCRIPT FLUSH");
	is_int(cached_scripts(), 1, "EVAL fallback reloaded the script");
}

/* A wrong-type key is an unexpected reply: -1, and the pause starts. */
static void t_wrongtype(struct cache *c)
{
	int64_t v, b;
	redisReply *r = raw("HSET ld:b:" P ":h f 1");

	if (r != NULL)
		freeReplyObject(r);
	is_int(cache_get(c, P, "h", &v, &b), LD_ERR_IO, "wrong type: unavailable");
	ok(strstr(cache_errmsg(c), ": command failed: WRONGTYPE") != NULL, "in Redis' words: %s",
	   cache_errmsg(c));
	uint64_t errors = cache_stats(c)->errors;
	is_int(cache_get(c, P, "u1", &v, &b), LD_ERR_IO, "pause: unavailable");
	fake_now += 999;
	is_int(cache_get(c, P, "u1", &v, &b), LD_ERR_IO, "999 ms later: still the pause");
	is_int((long long)(cache_stats(c)->errors - errors), 0, "Redis was not asked again");
	ok(strstr(cache_errmsg(c), "WRONGTYPE") != NULL, "and the message is still the reason");
	fake_now += 1;
	is_int(cache_get(c, P, "u1", &v, &b), LD_OK, "at 1000 ms the pause is over: hit");
}

static void t_stopped(struct cache *c)
{
	uint64_t errors = cache_stats(c)->errors;
	int64_t v, b, t;

	kill(redis_pid, SIGSTOP);
	t = ld_mono_us();
	is_int(cache_get(c, P, "u1", &v, &b), LD_ERR_IO, "stopped Redis: unavailable");
	ok(strstr(cache_errmsg(c), ": command failed: Resource temporarily unavailable") != NULL,
	   "the timeout in hiredis' words: %s", cache_errmsg(c));
	t = ld_mono_us() - t;
	diag("timed out after %lld ms", (long long)(t / 1000));
	ok(t < 1000000, "within 1000 ms");
	t = ld_mono_us();
	is_int(cache_get(c, P, "u1", &v, &b), LD_ERR_IO, "get in the pause: unavailable");
	is_int(put(c, "u1", 9, 9), -1, "put in the pause: unavailable");
	t = ld_mono_us() - t;
	ok(t < TIMEOUT_MS * 1000 / 2, "without blocking (%lld us)", (long long)t);
	is_int((long long)(cache_stats(c)->errors - errors), 1, "one error");
	kill(redis_pid, SIGCONT);
	fake_now += 1000;
	is_int(cache_get(c, P, "u1", &v, &b), LD_OK, "resumed: hit");
	ok(v == 3 && b == 30, "v3 as stored");
}

static void t_restart(struct cache *c)
{
	int64_t v, b;

	stop_redis();
	start_redis();
	is_int(cache_get(c, P, "u1", &v, &b), LD_ERR_IO, "old connection dead: unavailable");
	fake_now += 1000;
	is_int(cached_scripts(), 0, "restarted Redis: empty script cache");
	is_int(put(c, "u1", 4, 40), 1, "put (NOSCRIPT, EVAL)");
	is_int(cached_scripts(), 1, "script loaded by EVAL");
	is_int(put(c, "u1", 5, 50), 1, "put (EVALSHA)");
	is_int(cache_get(c, P, "u1", &v, &b), LD_OK, "get: hit");
	ok(v == 5 && b == 50, "v5");
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void bench(struct cache *c)
{
	enum { N = 10000 };
	static int64_t us[N];
	int64_t v, b, t;
	int i, bad = 0;

	for (i = 0; i < N; i++) {
		t = ld_mono_us();
		bad += cache_get(c, P, "u1", &v, &b) != LD_OK;
		us[i] = ld_mono_us() - t;
	}
	qsort(us, N, sizeof(us[0]), cmp_i64);
	is_int(bad, 0, "%d gets, all hits", N);
	diag("cache_get round trip: median %lld us, p99 %lld us", (long long)us[N / 2],
	     (long long)us[N * 99 / 100]);
}

/* Pipelined puts: many at once, the answers read later, after Redis lost
 * its scripts, and against a Redis that is not there. */
static void t_pipeline(struct cache *c)
{
	const struct cache_item items[] = {
		{ P, "p1", 5, 50 },
		{ P, "p2", 7, 70 },
		{ P, "p1", 4, 40 },
	};
	int64_t v = -1, b = -1;
	struct cache *down;
	redisReply *r;

	is_int(cache_put_many(c, items, 3), LD_OK, "three puts in one pipeline");
	ok(cache_get(c, P, "p1", &v, &b) == LD_OK && v == 5 && b == 50,
	   "the newer of two versions of a key is kept");
	ok(cache_get(c, P, "p2", &v, &b) == LD_OK && v == 7 && b == 70, "and the other key stored");

	const struct cache_item later[] = { { P, "p2", 8, 80 }, { P, "p3", 1, 10 } };
	is_int(cache_put_send(c, later, 2), LD_OK, "a pipeline sent, its answers not read");
	ok(cache_get(c, P, "p3", &v, &b) == LD_OK && v == 1 && b == 10,
	   "a get after it reads the pipeline's answers first, then its own");
	ok(cache_get(c, P, "p2", &v, &b) == LD_OK && v == 8, "both puts were stored");
	is_int(cache_put_collect(c), LD_OK, "collecting with nothing in flight is a no-op");

	if ((r = raw("SCRIPT FLUSH")) != NULL)
		freeReplyObject(r);
	const struct cache_item again[] = { { P, "p4", 2, 20 }, { P, "p5", 3, 30 } };
	is_int(cache_put_many(c, again, 2), LD_OK, "a pipeline after SCRIPT FLUSH");
	ok(cache_get(c, P, "p4", &v, &b) == LD_OK && v == 2 &&
		   cache_get(c, P, "p5", &v, &b) == LD_OK && v == 3,
	   "is stored with EVAL");

	down = cache_new("127.0.0.1:1", TIMEOUT_MS, NULL);
	is_int(cache_put_many(down, again, 2), LD_ERR_IO,
	       "a pipeline to a Redis that is not there");
	is_int((long long)cache_pending(down, NULL), 2, "remembers both keys for the repair");
	cache_free(down);
}

/* How many times Redis ran EVALSHA, from INFO commandstats; -1 if unknown. */
static long long evalsha_calls(void)
{
	redisReply *r = raw("INFO commandstats");
	const char *at;
	long long n = -1;

	if (r != NULL && r->type == REDIS_REPLY_STRING &&
	    (at = strstr(r->str, "cmdstat_evalsha:calls=")) != NULL)
		n = atoll(at + strlen("cmdstat_evalsha:calls="));
	else if (r != NULL && r->type == REDIS_REPLY_STRING)
		n = 0; /* not run yet */
	if (r != NULL)
		freeReplyObject(r);
	return n;
}

/* A group commit's balances go to Redis in one script call per 128 keys,
 * and each key is still compared and set on its own. */
static void t_pipeline_calls(struct cache *c)
{
	enum { N = 300 };
	static struct cache_item items[N];
	static char uids[N][16];
	const struct cache_stats *st = cache_stats(c);
	uint64_t writes = st->writes, stale = st->stale_writes;
	long long calls;
	int64_t v, b;
	int bad = 0;

	for (int i = 0; i < N; i++) {
		/* every tenth key repeats the one before it with an older version */
		int id = i % 10 == 9 ? i - 1 : i;
		snprintf(uids[i], sizeof uids[i], "m%d", id);
		items[i] = (struct cache_item){ P, uids[i], i % 10 == 9 ? 1 : 100 + i, i };
	}
	calls = evalsha_calls();
	is_int(cache_put_many(c, items, 40), LD_OK, "40 puts in one pipeline");
	is_int(evalsha_calls() - calls, 1, "are one script call");
	calls = evalsha_calls();
	is_int(cache_put_many(c, items, N), LD_OK, "%d puts in one pipeline", N);
	is_int(evalsha_calls() - calls, 3, "are three script calls (128 keys each at most)");
	for (int i = 0; i < N; i++)
		if (i % 10 != 9 &&
		    (cache_get(c, P, uids[i], &v, &b) != LD_OK || v != 100 + i || b != i))
			bad++;
	is_int(bad, 0, "every key holds its newest version");
	/* the first 40 were stored, then each stale, by the first call */
	ok(st->writes - writes == 36 + (N - 40) * 9 / 10 &&
		   st->stale_writes - stale == 4 + 40 + (N - 40) / 10,
	   "counted: %llu stored, %llu stale", (unsigned long long)(st->writes - writes),
	   (unsigned long long)(st->stale_writes - stale));

	/* A key of another type fails its call; all of the call's keys are
	 * remembered for the repair, and the connection pauses. */
	redisReply *r = raw("HSET ld:b:" P ":mh f 1");
	if (r != NULL)
		freeReplyObject(r);
	const struct cache_item mixed[] = { { P, "m4", 500, 1 }, { P, "mh", 500, 2 } };
	size_t pending = cache_pending(c, NULL);
	is_int(cache_put_many(c, mixed, 2), LD_ERR_IO,
	       "a pipeline with a key of another type fails");
	ok(strstr(cache_errmsg(c), "pipeline failed: WRONGTYPE") != NULL, "with Redis' error: %s",
	   cache_errmsg(c));
	is_int((long long)(cache_pending(c, NULL) - pending), 2,
	       "both of its keys wait for the repair");
	if ((r = raw("DEL ld:b:" P ":mh")) != NULL)
		freeReplyObject(r);
	fake_now += 1000;
}

int main(void)
{
	const struct cache_stats *st;
	struct cache *c;

	signal(SIGPIPE, SIG_IGN);
	alarm(120);
	if (mkdtemp(dir) == NULL)
		bail("cannot create a temporary directory: %s", strerror(errno));
	snprintf(sock, sizeof(sock), "%s/r.sock", dir);
	atexit(cleanup);
	start_redis();

	t_addr();
	t_refused();
	t_ledger_ids();
	if ((c = cache_new(sock, TIMEOUT_MS, NULL)) == NULL)
		bail("cache_new('%s') failed", sock);
	cache_set_clock(c, fake_clock, &fake_now);
	t_values(c);
	t_wrongtype(c);
	t_stopped(c);
	t_restart(c);
	st = cache_stats(c);
	diag("hits %llu misses %llu errors %llu writes %llu stale %llu",
	     (unsigned long long)st->hits, (unsigned long long)st->misses,
	     (unsigned long long)st->errors, (unsigned long long)st->writes,
	     (unsigned long long)st->stale_writes);
	ok(st->writes == 24 && st->stale_writes == 9, "write counters");
	t_pipeline(c);
	t_pipeline_calls(c);
	bench(c);
	cache_free(c);
	return done_testing();
}
