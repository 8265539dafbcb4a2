/*
 * util.c - what every part of luckydice shares: error strings, allocation
 * wrappers with one out-of-memory policy, time and time zones, bounded
 * formatting, file reading and the one strict JSON entry point.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "buf.h"
#include "ld.h"
#include "log.h"

const char *ld_strerror(enum ld_err err)
{
	switch (err) {
	case LD_OK: return "success";
	case LD_ERR_NOMEM: return "out of memory";
	case LD_ERR_IO: return "input/output error";
	case LD_ERR_DB: return "database error";
	case LD_ERR_BUSY: return "database is busy";
	case LD_ERR_INVALID: return "invalid input";
	case LD_ERR_NOTFOUND: return "not found";
	}
	return "unknown error";
}

static void default_oom(void)
{
	ld_log(LOG_ERR, "fatal: out of memory");
	exit(2);
}

void (*ld_oom)(void) = default_oom;

/*
 * Runs the program's out-of-memory handler. The wrappers promise never to
 * return NULL, so a handler that comes back is a bug: abort rather than
 * hand out a null pointer.
 */
static void oom(void)
{
	if (ld_oom != NULL)
		ld_oom();
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		oom();
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p;

	if (len == SIZE_MAX)
		oom();
	p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* Clock id's time in microseconds, 0 if it cannot be read. */
static int64_t clock_us(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) == -1)
		return 0;
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t ld_now_ms(void)
{
	return clock_us(CLOCK_REALTIME) / 1000;
}

int64_t ld_mono_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

uint32_t ld_uniform(const struct ld_rng *rng, uint32_t n)
{
	return rng != NULL ? rng->uniform(rng->state, n) : randombytes_uniform(n);
}

/* splitmix64's next number. */
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n): the numbers past the last whole multiple of n are
 * drawn again, so none is more likely than another. */
static uint32_t seeded_uniform(void *state, uint32_t n)
{
	uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;

	do
		x = mix(state);
	while (x >= lim);
	return (uint32_t)(x % n);
}

struct ld_rng ld_rng_seeded(uint64_t *seed)
{
	return (struct ld_rng){ seeded_uniform, seed };
}

int ld_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (buf == NULL || size == 0)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

int ld_is_ident(const char *s, size_t max)
{
	size_t i;

	if (s == NULL || *s == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i >= max)
			return 0;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* An error message into a caller's buffer that may be NULL or empty. */
static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Reads the file at path into a fresh NUL-terminated buffer (struct buf,
 * capped at max bytes of content). On success *out (freed by
 * the caller) and *len (if not NULL) are set. A file that cannot be opened
 * or read is LD_ERR_IO; one larger than max is LD_ERR_INVALID.
 */
enum ld_err ld_read_file(const char *path, size_t max, char **out, size_t *len, char *err,
			 size_t errlen)
{
	struct buf b;
	char chunk[4096];
	int fd;

	*out = NULL;
	if (len != NULL)
		*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		seterr(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		return LD_ERR_IO;
	}
	buf_init(&b, max);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			seterr(err, errlen, "cannot read '%s': %s", path, strerror(errno));
			buf_free(&b);
			close(fd);
			return LD_ERR_IO;
		}
		if (n == 0)
			break;
		if (buf_add(&b, chunk, (size_t)n) != LD_OK) {
			seterr(err, errlen, "'%s' is larger than %zu bytes", path, max);
			buf_free(&b);
			close(fd);
			return LD_ERR_INVALID;
		}
	}
	close(fd);
	*out = buf_take(&b, len);
	return LD_OK;
}

int64_t ld_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void ld_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
	int64_t z = days + 719468, era, doe, yoe, doy, mp;

	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* Floor division for the possibly negative times below. */
static int64_t floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/*
 * Formats ms as local time at offset_s seconds east of UTC. The offset is
 * cut to whole minutes (historical offsets such as Seoul's +08:27:52 have
 * seconds that ISO-8601 cannot show) and the local time uses that same
 * offset, so the string always names the instant ms exactly. Years are
 * clamped to 0000..9999 so the result fits in 32 bytes.
 */
void ld_iso_time(int64_t ms, int32_t offset_s, char buf[32])
{
	const int64_t min_ms = -62167219200000LL; /* 0000-01-01T00:00Z */
	const int64_t max_ms = 253402300799999LL; /* 9999-12-31T23:59:59.999Z */
	int64_t off = offset_s, local, secs, days, y;
	int m, d, sod, aoff;

	if (off > 86340)
		off = 86340;
	if (off < -86340)
		off = -86340;
	off = off / 60 * 60;
	if (ms < min_ms)
		ms = min_ms;
	if (ms > max_ms)
		ms = max_ms;
	local = ms + off * 1000;
	if (local < min_ms)
		local = min_ms;
	if (local > max_ms)
		local = max_ms;
	secs = floordiv(local, 1000);
	days = floordiv(secs, 86400);
	sod = (int)(secs - days * 86400);
	ld_civil_from_days(days, &y, &m, &d);
	aoff = (int)(off < 0 ? -off : off);
	/* The modulos only tell the compiler the ranges already in force. */
	snprintf(buf, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03u%c%02u:%02u", (unsigned)y % 10000u,
		 (unsigned)m % 13u, (unsigned)d % 32u, (unsigned)sod / 3600u % 24u,
		 (unsigned)sod / 60u % 60u, (unsigned)sod % 60u,
		 (unsigned)(local - secs * 1000) % 1000u, off < 0 ? '-' : '+',
		 (unsigned)aoff / 3600u % 24u, (unsigned)aoff / 60u % 60u);
}

#define ZONE_NAME_MAX 64

/* Where glibc looks for zones: $TZDIR when absolute, else the default. */
static const char *zone_dir(void)
{
	const char *d = getenv("TZDIR");

	return d != NULL && d[0] == '/' ? d : "/usr/share/zoneinfo";
}

/*
 * True when name is a zone of the system's zoneinfo: safe characters only
 * (no '.', so no "..", no leading '/', no empty component) and a regular
 * file there that starts with the TZif magic (not a directory, not
 * zone.tab or leapseconds).
 */
int ld_zone_exists(const char *name)
{
	char path[4096 + ZONE_NAME_MAX + 2], magic[4];
	size_t n = name != NULL ? strlen(name) : 0;
	const char *q;
	struct stat st;
	FILE *f;
	int ok;

	if (n == 0 || n > ZONE_NAME_MAX || name[0] == '/' || name[n - 1] == '/' ||
	    strstr(name, "//") != NULL)
		return 0;
	for (q = name; *q != '\0'; q++)
		if (!((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
		      (*q >= '0' && *q <= '9') || strchr("_-+/", *q) != NULL))
			return 0;
	if (ld_fmt(path, sizeof(path), "%s/%s", zone_dir(), name) == -1 || stat(path, &st) == -1 ||
	    !S_ISREG(st.st_mode) || (f = fopen(path, "rbe")) == NULL)
		return 0;
	ok = fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
	fclose(f);
	return ok;
}

/* TZ is process-wide: one switch at a time. */
static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

/* Switches the process to zone under tz_lock; returns the old TZ to give
 * back to tz_leave (NULL when TZ was unset). The ':' makes glibc read the
 * zone file rather than parse the name as a POSIX TZ rule. */
static char *tz_enter(const char *zone)
{
	char spec[ZONE_NAME_MAX + 2];
	const char *old;
	char *saved;

	pthread_mutex_lock(&tz_lock);
	old = getenv("TZ");
	saved = old != NULL ? xstrdup(old) : NULL;
	snprintf(spec, sizeof(spec), ":%s", zone);
	setenv("TZ", spec, 1);
	tzset();
	return saved;
}

static void tz_leave(char *saved)
{
	if (saved != NULL)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	free(saved);
	pthread_mutex_unlock(&tz_lock);
}

/* The local day number of instant t in the current zone. */
static int64_t local_day(time_t t)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL)
		return INT64_MIN;
	return ld_days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/*
 * The first instant (Unix seconds) of local day dn in the current zone.
 * mktime of 00:00 is right unless midnight does not exist (a DST jump at
 * midnight) or happens twice (a fall back at 01:00 to 00:00), where glibc
 * may answer the wrong instant; then a binary search finds the first
 * second of day dn. Local days only move forward, and they start within a
 * day and a half of UTC midnight.
 */
static time_t day_start(int64_t dn)
{
	struct tm tm;
	int64_t y;
	time_t t, lo, hi;

	memset(&tm, 0, sizeof(tm));
	ld_civil_from_days(dn, &y, &tm.tm_mon, &tm.tm_mday);
	tm.tm_year = (int)(y - 1900);
	tm.tm_mon -= 1;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	if (t != (time_t)-1 && local_day(t) == dn && local_day(t - 1) < dn)
		return t;
	lo = (time_t)(dn * 86400 - 2 * 86400); /* local_day(lo) < dn */
	hi = (time_t)(dn * 86400 + 2 * 86400); /* local_day(hi) >= dn */
	while (hi - lo > 1) {
		time_t mid = lo + (hi - lo) / 2;

		if (local_day(mid) >= dn)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

void ld_zone_midnights(const char *zone, int64_t first_day, int n, int64_t *out)
{
	char *saved = tz_enter(zone);
	int i;

	for (i = 0; i < n; i++)
		out[i] = (int64_t)day_start(first_day + i) * 1000;
	tz_leave(saved);
}

int32_t ld_zone_offset(const char *zone, int64_t ms)
{
	time_t t = (time_t)floordiv(ms, 1000);
	struct tm tm;
	char *saved = tz_enter(zone);
	int32_t off = 0;

	if (localtime_r(&t, &tm) != NULL)
		off = (int32_t)tm.tm_gmtoff;
	tz_leave(saved);
	return off;
}

/* Length of the well-formed UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c < 0xc2 || c > 0xf4)
		return 0;
	if (n < 2 || (s[1] & 0xc0) != 0x80)
		return 0;
	if (c < 0xe0)
		return 2;
	if (n < 3 || (s[2] & 0xc0) != 0x80)
		return 0;
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
		return 0; /* overlong, surrogate */
	if (c < 0xf0)
		return 3;
	if (n < 4 || (s[3] & 0xc0) != 0x80)
		return 0;
	if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
		return 0; /* overlong, past U+10FFFF */
	return 4;
}

int ld_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;

	while (i < len) {
		if ((n = utf8_seq(p + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

/*
 * The lexical checks json-c leaves out even in strict mode. Walks buf
 * once: outside strings only JSON's structural characters, numbers and the
 * letters of true/false/null may appear; inside strings no control
 * characters, no \u0000 and only well-formed UTF-8. Returns NULL when the
 * text passes, else why not, with the offending offset in *at.
 */
static const char *json_lex_check(const char *buf, size_t len, size_t *at)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t i = 0, n;
	int instr = 0;

	while (i < len) {
		unsigned c = p[i];

		*at = i;
		if (!instr) {
			if (c == '"')
				instr = 1;
			else if (strchr(" \t\r\n{}[]:,0123456789+-.eEtrufalsn", (int)c) == NULL ||
				 c == '\0')
				return "unexpected character";
			i++;
			continue;
		}
		if (c == '"') {
			instr = 0;
			i++;
		} else if (c < 0x20) {
			return "control character in string";
		} else if (c == '\\') {
			if (len - i >= 6 && memcmp(p + i + 1, "u0000", 5) == 0)
				return "\\u0000 in string";
			i += 2; /* json-c checks what the escape is */
		} else if ((n = utf8_seq(p + i, len - i)) == 0) {
			return "invalid UTF-8";
		} else {
			i += n;
		}
	}
	return NULL;
}

struct json_object *ld_json_parse(const char *buf, size_t len, int depth, char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	const char *why;
	size_t at = 0;

	if (len > INT32_MAX) {
		seterr(err, errlen, "invalid JSON: text too large");
		return NULL;
	}
	if ((why = json_lex_check(buf, len, &at)) != NULL) {
		seterr(err, errlen, "invalid JSON at offset %zu: %s", at, why);
		return NULL;
	}
	if ((tok = json_tokener_new_ex(depth)) == NULL) {
		oom();
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	if (obj == NULL && jerr == json_tokener_continue) {
		/* A bare number has no end of its own: say the input ended. */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		if (jerr == json_tokener_continue) {
			seterr(err, errlen, "invalid JSON: unexpected end of input");
			json_tokener_free(tok);
			return NULL;
		}
		at = len;
	} else {
		at = json_tokener_get_parse_end(tok);
	}
	if (obj == NULL) {
		seterr(err, errlen, "invalid JSON at offset %zu: %s", at,
		       json_tokener_error_desc(jerr));
		json_tokener_free(tok);
		return NULL;
	}
	if (at < len) {
		seterr(err, errlen, "invalid JSON at offset %zu: data after the value", at);
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

int ld_is_conninfo(const char *s)
{
	return strncmp(s, "postgresql:", 11) == 0 || strncmp(s, "postgres://", 11) == 0;
}

/* Where the password in a "password=" parameter starts, or NULL: the
 * keyword at the start, or after '?', '&' or white space. */
static const char *password_param(const char *s)
{
	for (const char *p = s; (p = strstr(p, "password=")) != NULL; p++)
		if (p == s || p[-1] == '?' || p[-1] == '&' || p[-1] == ' ' || p[-1] == '\t')
			return p + 9;
	return NULL;
}

#define SECRET_SPANS 8

/* The secrets in db, a config's "db": a URI's password ("user:secret@")
 * and the values of "password=" parameters, as [from, to) spans in
 * order; returns how many (at most SECRET_SPANS). */
static size_t secret_spans(const char *db, const char *from[], const char *to[])
{
	const char *s = db, *auth_end, *at = NULL, *colon = NULL;
	size_t n = 0;

	/* A URI's user information: scheme://user:password@host... */
	if (ld_is_conninfo(db) && (s = strstr(db, "://")) != NULL) {
		s += 3;
		auth_end = s + strcspn(s, "/?#");
		for (const char *p = s; p < auth_end; p++)
			if (*p == '@')
				at = p;
		for (const char *p = s; at && p < at && !colon; p++)
			if (*p == ':')
				colon = p;
	}
	s = db;
	while (*s && n < SECRET_SPANS) {
		const char *pw = password_param(s);
		if (colon && (!pw || colon < pw)) {
			from[n] = colon + 1;
			to[n++] = s = at;
			colon = NULL;
		} else if (pw) {
			/* the value: to '&' in a URI, to white space (or its closing
			 * quote) in the keyword form */
			s = pw;
			if (*s == '\'') {
				for (s++; *s && *s != '\''; s++)
					if (*s == '\\' && s[1])
						s++;
				if (*s)
					s++;
			} else {
				s += strcspn(s, "& \t");
			}
			from[n] = pw;
			to[n++] = s;
		} else {
			break;
		}
	}
	return n;
}

char *ld_db_shown(const char *db)
{
	const char *from[SECRET_SPANS], *to[SECRET_SPANS], *s = db;
	size_t n = secret_spans(db, from, to);
	char *out = xmalloc(strlen(db) + 3 * n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		memcpy(o, s, (size_t)(from[i] - s));
		o += from[i] - s;
		memcpy(o, "***", 3);
		o += 3;
		s = to[i];
	}
	strcpy(o, s);
	return out;
}

void ld_db_scrub(const char *db, char *msg)
{
	const char *from[SECRET_SPANS], *to[SECRET_SPANS];
	size_t n = secret_spans(db, from, to);
	char *q = msg, *end;

	while (n > 0 && (q = strchr(q, '"')) != NULL && (end = strchr(q + 1, '"')) != NULL) {
		size_t len = (size_t)(end - q - 1);
		int secret = 0;

		/* the quoted text, wherever it stands in db, touches a secret */
		for (const char *at = db;
		     len > 0 && !secret && (at = memmem(at, strlen(at), q + 1, len)) != NULL; at++)
			for (size_t i = 0; i < n && !secret; i++)
				secret = at < to[i] && at + len > from[i];
		if (secret) {
			memcpy(q + 1, "***", len < 3 ? len : 3);
			memmove(q + 1 + (len < 3 ? len : 3), end, strlen(end) + 1);
			end = q + 1 + (len < 3 ? len : 3);
		}
		q = end + 1;
	}
}
