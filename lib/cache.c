/*
 * cache.c - the Redis balance cache (see cache.h for the contract).
 *
 * One blocking hiredis context per struct cache, opened on first use.
 * hiredis contexts cannot be reused after an error, and a stopped Redis
 * would block a command forever without a socket timeout, so: every
 * (re)connect sets the command timeout, and any failure frees the context
 * and starts a pause of PAUSE_MS during which calls fail at once without
 * touching the network. A hanging Redis thus costs at most one timeout per
 * pause per process.
 *
 * hiredis writes with write(2): a process using the cache must ignore
 * SIGPIPE, or a write to a Redis that went away kills it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>

#include <hiredis.h>

#include "buf.h"
#include "cache.h"

#define PAUSE_MS 1000
#define KEY_MAX  256

/*
 * The compare-and-set, for any number of keys at once: KEYS[i] a key,
 * ARGV[2i-1] its version (decimal, no sign), ARGV[2i] its balance. For
 * each key in order, keeps the stored value when it is well formed and
 * its version is >= the new one, else stores "version:balance". Returns
 * how many it stored. "Well formed" is exactly what cache_get() accepts,
 * so a value it treats as a miss is always overwritten. int() returns a
 * canonical int64 as (high digits, low 9 digits), both exact in a
 * double, so comparing pairs is exact and independent of the server's
 * locale. Calling a script costs Redis several times what this one does,
 * so the writer sends a whole group commit's balances in one call.
 */
static const char cas_script[] =
	"local function int(s, signed)\n"
	"  if not s then return nil end\n"
	"  local max = 854775807\n"
	"  if signed and s:sub(1, 1) == '-' and s ~= '-0' then\n"
	"    s, max = s:sub(2), 854775808\n"
	"  end\n"
	"  if #s > 19 or not (s == '0' or s:match('^[1-9]%d*$')) then return nil end\n"
	"  local h, l = tonumber(s:sub(1, -10)) or 0, tonumber(s:sub(-9))\n"
	"  if h > 9223372036 or (h == 9223372036 and l > max) then return nil end\n"
	"  return h, l\n"
	"end\n"
	"local stored = 0\n"
	"for i, key in ipairs(KEYS) do\n"
	"  local nv, nb = ARGV[2 * i - 1], ARGV[2 * i]\n"
	"  local cur = redis.call('GET', key)\n"
	"  local v, b = (cur or ''):match('^(%d+):(%-?%d+)$')\n"
	"  local vh, vl = int(v)\n"
	"  local keep = false\n"
	"  if vh and int(b, true) then\n"
	"    local nh, nl = int(nv)\n"
	"    keep = vh > nh or (vh == nh and vl >= nl)\n"
	"  end\n"
	"  if not keep then\n"
	"    redis.call('SET', key, nv .. ':' .. nb)\n"
	"    stored = stored + 1\n"
	"  end\n"
	"end\n"
	"return stored\n";

/* Keys per script call in a pipeline: one call for a whole group commit
 * (at most 64 requests of two balances each). */
#define CAS_KEYS_MAX 128

/* Keys in one pipeline at most (the writer sends two per request of a
 * batch of 64). */
#define CACHE_INFLIGHT_MAX 4096

struct cache {
	char *where;                  /* host name or socket path */
	char *prefix;                 /* "ld:b:" and the ledger id and ':', or "ld:b:" */
	int port;                     /* 0 for a unix socket */
	struct timeval tv;            /* connect and command timeout */
	redisContext *ctx;            /* NULL while disconnected */
	int failed;                   /* a failure began a pause at failed_at */
	int64_t failed_at;            /* c->now_ms() of the last failure */
	int64_t (*now_ms)(void *arg); /* the pause's clock: monotonic ms */
	void *now_arg;
	char sha[41]; /* SHA1 of cas_script, "" until SCRIPT LOAD */
	struct cache_stats stats;
	struct cache_pending *pending; /* writes that failed, to repair */
	size_t npending;
	uint64_t lost;                   /* failed writes not remembered (list full) */
	struct cache_inflight *inflight; /* sent by cache_put_send, unanswered: */
	size_t ninflight;                /* in inflight_buf, kept between calls */
	struct buf inflight_buf;
	char err[256]; /* the last failure's message */
};

struct cache_pending {
	char promo[65], uid[65];
};

/* A compare-and-set sent in a pipeline whose answer is not read yet. */
struct cache_inflight {
	char promo[65], uid[65];
	char key[KEY_MAX];
	int64_t version, balance;
};

/* The default clock of the pause: monotonic, in ms. */
static int64_t mono_ms(void *arg)
{
	(void)arg;
	return ld_mono_us() / 1000;
}

/*
 * Parses addr: a unix socket path (starts with '/' or '.', or contains a
 * '/'; must fit sun_path) or "host:port" with a non-empty host (brackets
 * around an IPv6 address allowed) and a port 1..65535. Returns NULL when
 * addr is malformed.
 */
struct cache *cache_new(const char *addr, int timeout_ms, const char *ledger_id)
{
	struct sockaddr_un sa;
	const char *colon, *host, *q;
	size_t hostlen;
	struct cache *c;
	long port;

	if (addr == NULL || *addr == '\0')
		return NULL;
	if (timeout_ms < 1)
		timeout_ms = 1; /* 0 would mean "no timeout" to hiredis */
	if (ledger_id != NULL &&
	    (*ledger_id == '\0' || strlen(ledger_id) > 64 ||
	     strpbrk(ledger_id, ": \t\r\n") != NULL))
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->now_ms = mono_ms;
	buf_init(&c->inflight_buf, CACHE_INFLIGHT_MAX * sizeof(struct cache_inflight));
	c->tv.tv_sec = timeout_ms / 1000;
	c->tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (*addr == '/' || *addr == '.' || strchr(addr, '/') != NULL) {
		if (strlen(addr) >= sizeof(sa.sun_path))
			goto bad;
		c->where = xstrdup(addr);
		goto good;
	}
	colon = strrchr(addr, ':');
	if (colon == NULL || strlen(colon + 1) > 5 ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		goto bad;
	port = atol(colon + 1);
	host = addr;
	hostlen = (size_t)(colon - addr);
	if (hostlen >= 2 && host[0] == '[' && host[hostlen - 1] == ']') {
		host++;
		hostlen -= 2;
	}
	if (hostlen == 0 || port < 1 || port > 65535)
		goto bad;
	for (q = host; q < host + hostlen; q++)
		if ((unsigned char)*q <= ' ' || *q == 0x7f || *q == '[' || *q == ']')
			goto bad;
	c->where = xstrndup(host, hostlen);
	c->port = (int)port;
good:
	c->prefix = xmalloc(6 + (ledger_id ? strlen(ledger_id) + 1 : 0) + 1);
	sprintf(c->prefix, "ld:b:%s%s", ledger_id ? ledger_id : "", ledger_id ? ":" : "");
	return c;
bad:
	buf_free(&c->inflight_buf);
	free(c);
	return NULL;
}

void cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	if (c->ctx != NULL)
		redisFree(c->ctx);
	buf_free(&c->inflight_buf);
	free(c->pending);
	free(c->where);
	free(c->prefix);
	free(c);
}

void cache_set_clock(struct cache *c, int64_t (*now_ms)(void *arg), void *arg)
{
	c->now_ms = now_ms != NULL ? now_ms : mono_ms;
	c->now_arg = arg;
}

const struct cache_stats *cache_stats(const struct cache *c)
{
	return &c->stats;
}

const char *cache_errmsg(const struct cache *c)
{
	return c->err;
}

/* Records "redis 'where': what[: detail]" as the message. */
static void set_err(struct cache *c, const char *what, const char *detail)
{
	char port[8] = "";

	if (c->port != 0)
		snprintf(port, sizeof(port), ":%d", c->port);
	snprintf(c->err, sizeof(c->err), "redis '%s%s': %s%s%s", c->where, port, what,
		 detail ? ": " : "", detail ? detail : "");
}

/* Counts a bad key or version (the connection is kept). Returns
 * LD_ERR_INVALID. */
static enum ld_err invalid(struct cache *c, const char *what)
{
	c->stats.errors++;
	set_err(c, what, NULL);
	return LD_ERR_INVALID;
}

static void remember(struct cache *c, const char *promo, const char *uid);

/* Counts a failure, records what went wrong (detail, else hiredis' own
 * words), drops the connection and starts the pause. Writes in flight on
 * it are remembered for the repair. Returns LD_ERR_IO. */
static enum ld_err fail(struct cache *c, const char *what, const char *detail)
{
	size_t n = c->ninflight;

	if (detail == NULL)
		detail = c->ctx == NULL    ? "cannot allocate a connection"
			: c->ctx->err != 0 ? c->ctx->errstr
					   : NULL;
	set_err(c, what, detail);
	c->ninflight = 0;
	for (size_t i = 0; i < n; i++)
		remember(c, c->inflight[i].promo, c->inflight[i].uid);
	c->stats.errors++;
	if (c->ctx != NULL)
		redisFree(c->ctx);
	c->ctx = NULL;
	c->failed = 1;
	c->failed_at = c->now_ms(c->now_arg);
	return LD_ERR_IO;
}

/* True during the pause after a failure. A clock that went back before
 * failed_at ends it. */
static int paused(struct cache *c)
{
	int64_t now;

	if (!c->failed)
		return 0;
	now = c->now_ms(c->now_arg);
	return now >= c->failed_at && now - c->failed_at < PAUSE_MS;
}

/*
 * Makes sure c has a usable connection: LD_OK when it has, LD_ERR_IO
 * during the pause after a failure (not counted again; the message stays
 * the failure's) or when connecting fails (counted).
 */
static enum ld_err cache_connect(struct cache *c)
{
	if (c->ctx != NULL)
		return LD_OK;
	if (paused(c))
		return LD_ERR_IO;
	if (c->port == 0)
		c->ctx = redisConnectUnixWithTimeout(c->where, c->tv);
	else
		c->ctx = redisConnectWithTimeout(c->where, c->port, c->tv);
	if (c->ctx == NULL || c->ctx->err != 0 || redisSetTimeout(c->ctx, c->tv) != REDIS_OK ||
	    (c->port != 0 && redisEnableKeepAlive(c->ctx) != REDIS_OK))
		return fail(c, "cannot connect", NULL);
	return LD_OK;
}

/* Runs one command on a connected c. Returns the reply, or NULL after
 * fail() when hiredis reports an error (I/O, timeout, protocol). */
static redisReply *run(struct cache *c, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	/* the answers of a pipeline come first on this connection */
	if (c->ninflight > 0 && (cache_put_collect(c) != LD_OK || c->ctx == NULL))
		return NULL;
	va_start(ap, fmt);
	r = redisvCommand(c->ctx, fmt, ap);
	va_end(ap);
	if (r == NULL)
		fail(c, "command failed", NULL);
	return r;
}

/* Frees the unexpected reply r and fails, with Redis' error if it is
 * one. Returns LD_ERR_IO. */
static enum ld_err unexpected(struct cache *c, redisReply *r)
{
	char detail[128];

	snprintf(detail, sizeof(detail), "%s",
		 r->type == REDIS_REPLY_ERROR && r->str ? r->str : "unexpected reply");
	freeReplyObject(r);
	return fail(c, "command failed", detail);
}

/* Writes the key of (promo, uid) into buf[KEY_MAX]. Returns LD_OK, or
 * LD_ERR_INVALID when it does not fit (counted; the connection is
 * kept). */
static enum ld_err make_key(struct cache *c, char buf[KEY_MAX], const char *promo, const char *uid)
{
	if (ld_fmt(buf, KEY_MAX, "%s%s:%s", c->prefix, promo, uid) == -1)
		return invalid(c, "key too long");
	return LD_OK;
}

/*
 * Parses s[0..n) as a decimal int64: an optional '-' when neg_ok, then
 * "0" or a digit 1-9 followed by digits, within range. Returns 0 or -1.
 */
static int parse_i64(const char *s, size_t n, int neg_ok, int64_t *out)
{
	uint64_t v = 0, max = INT64_MAX;
	int neg = 0;
	size_t i;

	if (neg_ok && n > 0 && s[0] == '-') {
		neg = 1;
		s++;
		n--;
		max++;
	}
	if (n == 0 || n > 19 || (s[0] == '0' && (n > 1 || neg)))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (max - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

enum ld_err cache_get(struct cache *c, const char *promo, const char *uid, int64_t *version,
		      int64_t *balance)
{
	char key[KEY_MAX];
	const char *colon;
	enum ld_err e;
	int64_t v, b;
	redisReply *r;

	if ((e = make_key(c, key, promo, uid)) != LD_OK || (e = cache_connect(c)) != LD_OK)
		return e;
	if ((r = run(c, "GET %s", key)) == NULL)
		return LD_ERR_IO;
	e = LD_ERR_NOTFOUND;
	if (r->type == REDIS_REPLY_NIL) {
		c->stats.misses++;
	} else if (r->type != REDIS_REPLY_STRING) {
		return unexpected(c, r);
	} else if ((colon = memchr(r->str, ':', r->len)) == NULL ||
		   parse_i64(r->str, (size_t)(colon - r->str), 0, &v) == -1 ||
		   parse_i64(colon + 1, r->len - (size_t)(colon - r->str) - 1, 1, &b) == -1) {
		c->stats.misses++; /* someone else's garbage: a miss */
		c->stats.errors++;
	} else {
		c->stats.hits++;
		*version = v;
		*balance = b;
		e = LD_OK;
	}
	freeReplyObject(r);
	return e;
}

/* Makes sure c->sha names the compare-and-set (SCRIPT LOAD once per
 * cache) on a connected c. Returns LD_OK or LD_ERR_IO after fail(). */
static enum ld_err load_script(struct cache *c)
{
	redisReply *r;

	if (c->sha[0] != '\0')
		return LD_OK;
	if ((r = run(c, "SCRIPT LOAD %s", cas_script)) == NULL)
		return LD_ERR_IO;
	if (r->type != REDIS_REPLY_STRING || r->len != 40)
		return unexpected(c, r);
	memcpy(c->sha, r->str, 40);
	c->sha[40] = '\0';
	freeReplyObject(r);
	return LD_OK;
}

/*
 * Runs the compare-and-set: EVALSHA, and EVAL when Redis answers NOSCRIPT
 * (its script cache is empty after a restart or SCRIPT FLUSH; EVAL loads
 * it again). The SHA1 comes once per cache from SCRIPT LOAD.
 */
static enum ld_err cas_put(struct cache *c, const char *promo, const char *uid, int64_t version,
			   int64_t balance, int *stored)
{
	char key[KEY_MAX], v[24], b[24];
	redisReply *r;
	enum ld_err e;
	int rc;

	if (version < 0)
		return invalid(c, "negative version");
	snprintf(v, sizeof(v), "%lld", (long long)version);
	snprintf(b, sizeof(b), "%lld", (long long)balance);
	if ((e = make_key(c, key, promo, uid)) != LD_OK || (e = cache_connect(c)) != LD_OK ||
	    (e = load_script(c)) != LD_OK)
		return e;
	if ((r = run(c, "EVALSHA %s 1 %s %s %s", c->sha, key, v, b)) == NULL)
		return LD_ERR_IO;
	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
		freeReplyObject(r);
		if ((r = run(c, "EVAL %s 1 %s %s %s", cas_script, key, v, b)) == NULL)
			return LD_ERR_IO;
	}
	if (r->type != REDIS_REPLY_INTEGER || (r->integer != 0 && r->integer != 1))
		return unexpected(c, r);
	rc = (int)r->integer;
	freeReplyObject(r);
	if (rc == 1)
		c->stats.writes++;
	else
		c->stats.stale_writes++;
	if (stored != NULL)
		*stored = rc;
	return LD_OK;
}

/* Runs "cmd key [arg]" on the key of (promo, uid) and checks that the
 * reply has type want. */
static enum ld_err key_command(struct cache *c, const char *promo, const char *uid, int want,
			       const char *cmd, const char *arg)
{
	char key[KEY_MAX];
	redisReply *r;
	enum ld_err e;

	if ((e = make_key(c, key, promo, uid)) != LD_OK || (e = cache_connect(c)) != LD_OK)
		return e;
	if ((r = run(c, arg ? "%s %s %s" : "%s %s", cmd, key, arg)) == NULL)
		return LD_ERR_IO;
	if (r->type != want)
		return unexpected(c, r);
	freeReplyObject(r);
	return LD_OK;
}

enum ld_err cache_del(struct cache *c, const char *promo, const char *uid)
{
	return key_command(c, promo, uid, REDIS_REPLY_INTEGER, "DEL", NULL);
}

enum ld_err cache_set_raw(struct cache *c, const char *promo, const char *uid, int64_t version,
			  int64_t balance)
{
	char value[48];

	snprintf(value, sizeof(value), "%lld:%lld", (long long)version, (long long)balance);
	return key_command(c, promo, uid, REDIS_REPLY_STATUS, "SET", value);
}

/* Remembers that the key of (promo, uid) may be stale in Redis. */
static void remember(struct cache *c, const char *promo, const char *uid)
{
	struct cache_pending *p;

	if (strlen(promo) >= sizeof p->promo || strlen(uid) >= sizeof p->uid)
		return;
	for (size_t i = 0; i < c->npending; i++)
		if (strcmp(c->pending[i].uid, uid) == 0 && strcmp(c->pending[i].promo, promo) == 0)
			return;
	if (c->npending == CACHE_PENDING_MAX) {
		c->lost++;
		return;
	}
	if (c->pending == NULL)
		c->pending = xcalloc(CACHE_PENDING_MAX, sizeof *c->pending);
	p = &c->pending[c->npending++];
	strcpy(p->promo, promo);
	strcpy(p->uid, uid);
}

enum ld_err cache_put(struct cache *c, const char *promo, const char *uid, int64_t version,
		      int64_t balance, int *stored)
{
	enum ld_err e = cas_put(c, promo, uid, version, balance, stored);

	if (e != LD_OK)
		remember(c, promo, uid);
	return e;
}

enum ld_err cache_put_send(struct cache *c, const struct cache_item *items, size_t n)
{
	enum ld_err e;
	int done = 0;

	cache_put_collect(c); /* one pipeline in flight at a time */
	if (n == 0)
		return LD_OK;
	if ((e = cache_connect(c)) != LD_OK || (e = load_script(c)) != LD_OK) {
		for (size_t i = 0; i < n; i++)
			remember(c, items[i].promo, items[i].uid);
		return e;
	}
	buf_reset(&c->inflight_buf); /* nothing is in flight: collected above */
	if (!buf_grow(&c->inflight_buf, n * sizeof *c->inflight)) {
		for (size_t i = 0; i < n; i++)
			remember(c, items[i].promo, items[i].uid);
		return invalid(c, "too many keys for one pipeline");
	}
	c->inflight = (struct cache_inflight *)c->inflight_buf.p;
	for (size_t i = 0; i < n; i++) {
		const struct cache_item *it = &items[i];
		struct cache_inflight *f = &c->inflight[c->ninflight];
		if (it->version < 0 || make_key(c, f->key, it->promo, it->uid) != LD_OK ||
		    ld_fmt(f->promo, sizeof f->promo, "%s", it->promo) != 0 ||
		    ld_fmt(f->uid, sizeof f->uid, "%s", it->uid) != 0)
			continue; /* counted by make_key, or cannot be a key */
		f->version = it->version;
		f->balance = it->balance;
		c->ninflight++;
	}
	/* EVALSHA sha nkeys key... (version balance)...: the arguments as they
	 * are, so hiredis does not parse a format (it copies them at once) */
	for (size_t at = 0; at < c->ninflight; at += CAS_KEYS_MAX) {
		size_t k = c->ninflight - at < CAS_KEYS_MAX ? c->ninflight - at : CAS_KEYS_MAX;
		const char *argv[3 + 3 * CAS_KEYS_MAX];
		size_t argl[3 + 3 * CAS_KEYS_MAX];
		char nkeys[24], num[CAS_KEYS_MAX][2][24];
		argv[0] = "EVALSHA";
		argv[1] = c->sha;
		argv[2] = nkeys;
		argl[0] = 7;
		argl[1] = strlen(c->sha);
		argl[2] = (size_t)snprintf(nkeys, sizeof nkeys, "%zu", k);
		for (size_t i = 0; i < k; i++) {
			const struct cache_inflight *f = &c->inflight[at + i];
			size_t ka = 3 + i, va = 3 + k + 2 * i;
			argv[ka] = f->key;
			argl[ka] = strlen(f->key);
			argv[va] = num[i][0];
			argl[va] = (size_t)snprintf(num[i][0], sizeof num[i][0], "%lld",
						    (long long)f->version);
			argv[va + 1] = num[i][1];
			argl[va + 1] = (size_t)snprintf(num[i][1], sizeof num[i][1], "%lld",
							(long long)f->balance);
		}
		if (redisAppendCommandArgv(c->ctx, (int)(3 + 3 * k), argv, argl) != REDIS_OK)
			return fail(c, "cannot send", NULL); /* remembers every key in flight */
	}
	while (!done)
		if (redisBufferWrite(c->ctx, &done) != REDIS_OK)
			return fail(c, "cannot send", NULL);
	return LD_OK;
}

/*
 * Reads the answers of cache_put_send: one per CAS_KEYS_MAX keys in
 * flight, each the count it stored. A script Redis has lost (NOSCRIPT)
 * is run again with EVAL, key by key, once every answer is read.
 */
enum ld_err cache_put_collect(struct cache *c)
{
	size_t n = c->ninflight, answered = 0, nagain = 0;
	const char *detail = NULL;
	char why[128] = "";
	redisReply *r = NULL;

	while (answered < n) {
		size_t k = n - answered < CAS_KEYS_MAX ? n - answered : CAS_KEYS_MAX;
		if (redisGetReply(c->ctx, (void **)&r) != REDIS_OK || r == NULL)
			break;
		if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
			freeReplyObject(r);
			memmove(c->inflight + nagain, c->inflight + answered,
				k * sizeof *c->inflight);
			nagain += k;
			answered += k;
			continue;
		}
		if (r->type != REDIS_REPLY_INTEGER || r->integer < 0 ||
		    (unsigned long long)r->integer > k) {
			snprintf(why, sizeof(why), "%s",
				 r->type == REDIS_REPLY_ERROR && r->str ? r->str
									: "unexpected reply");
			detail = why;
			freeReplyObject(r);
			break;
		}
		c->stats.writes += (uint64_t)r->integer;
		c->stats.stale_writes += k - (uint64_t)r->integer;
		freeReplyObject(r);
		answered += k;
	}
	if (answered < n) {
		/* What Redis did not confirm may be stale there: the ones
		 * not answered stay in inflight[nagain..) for fail(). */
		memmove(c->inflight + nagain, c->inflight + answered,
			(n - answered) * sizeof *c->inflight);
		c->ninflight = nagain + (n - answered);
		return fail(c, "pipeline failed", detail);
	}
	c->ninflight = 0;
	for (size_t i = 0; i < nagain; i++) {
		struct cache_inflight f = c->inflight[i];
		enum ld_err e = cas_put(c, f.promo, f.uid, f.version, f.balance, NULL);
		if (e != LD_OK) {
			for (; i < nagain; i++)
				remember(c, c->inflight[i].promo, c->inflight[i].uid);
			return e;
		}
	}
	return LD_OK;
}

enum ld_err cache_put_many(struct cache *c, const struct cache_item *items, size_t n)
{
	enum ld_err e = cache_put_send(c, items, n);

	return e != LD_OK ? e : cache_put_collect(c);
}

size_t cache_pending(const struct cache *c, uint64_t *lost)
{
	if (lost)
		*lost = c->lost;
	return c->npending;
}

enum ld_err cache_repair(struct cache *c, cache_lookup_fn lookup, void *arg)
{
	enum ld_err e;

	if (c->npending == 0 || (c->ctx == NULL && paused(c)))
		return LD_OK;
	while (c->npending > 0) {
		struct cache_pending *p = &c->pending[c->npending - 1];
		int64_t version, balance;
		if ((e = lookup(arg, p->promo, p->uid, &version, &balance)) != LD_OK)
			return e;
		if ((e = cas_put(c, p->promo, p->uid, version, balance, NULL)) == LD_ERR_IO)
			return e;
		c->npending--; /* written, or a key that can never be (counted) */
	}
	return LD_OK;
}
