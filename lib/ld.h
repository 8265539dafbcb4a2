/*
 * ld.h - what every part of luckydice shares: the error type of lib/,
 * allocation wrappers, time and small string helpers.
 *
 * Errors travel one way. A lib/ function that can fail returns enum
 * ld_err and keeps a one-line message (lowercase, no full stop, the
 * subject quoted, the underlying library's own words last: "cannot
 * record grant: UNIQUE constraint failed: grants.promo, grants.ref") on
 * the handle it works with: the ledger's (ledger_errmsg; every module
 * that takes a struct ledger, and the writer's answers), the cache's
 * (cache_errmsg). What has no handle - loading the config, a promotion
 * file or a secret, reading a file, opening the ledger, checking input -
 * writes its message into a caller's buffer (char *err, size_t errlen)
 * instead. lib/ never prints: the programs decide what to log, and
 * where. Business refusals (no tickets, self invite, ...) are not errors:
 * they are outcome values of the function that applies the rule.
 *
 * Out of memory: the x* wrappers call ld_oom(), which each program sets
 * once. Batch programs print and exit 2 (the default handler, the one
 * place lib/ writes to stderr, through log.h as the programs do); a
 * FastCGI worker answers 500 to the
 * request in flight and exits, and its supervisor starts a fresh one
 * (SQLite rolls back whatever the request had begun, so nothing is
 * half-written).
 */
#ifndef LD_H
#define LD_H

#include <stddef.h>
#include <stdint.h>

enum ld_err {
	LD_OK = 0,
	LD_ERR_NOMEM,    /* allocation failed */
	LD_ERR_IO,       /* a file or socket could not be read or written */
	LD_ERR_DB,       /* SQLite failed */
	LD_ERR_BUSY,     /* the database stayed locked past the busy timeout */
	LD_ERR_INVALID,  /* bad input: file format, argument, config */
	LD_ERR_NOTFOUND, /* the named thing does not exist */
};

/* Returns a static description of err. */
const char *ld_strerror(enum ld_err err);

/* Allocation that never returns NULL: on failure ld_oom() runs. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Called when memory runs out; the default prints and exits(2). */
extern void (*ld_oom)(void);

/*
 * Time. What lib/ decides takes the time as an argument (now_ms: the
 * promotion's day, "first seen", the stock released so far, leases,
 * when an event is due), so a test picks the instant; the programs read
 * the wall clock (ld_now_ms) and pass it. lib/ reads a clock itself only
 * to measure or to bound a wait, never to decide a rule: the busy
 * handler's timeout and the writer's timings (ld_mono_us), and the
 * cache's pause after a Redis failure (monotonic, replaceable with
 * cache_set_clock).
 *
 * The environment: config_default_path() reads LUCKYDICE_CONFIG; the
 * zone functions below read TZDIR and switch the process's TZ under a
 * lock (at load time, never per request).
 */

/* Wall-clock time, milliseconds since the Unix epoch. */
int64_t ld_now_ms(void);

/* A monotonic clock in microseconds, for measuring durations only. */
int64_t ld_mono_us(void);

/*
 * Randomness is passed in: draws take a rules_rng (rules.h); invite
 * codes and the dispatcher's backoff jitter take a struct ld_rng, NULL
 * meaning libsodium's (what production uses). A test passes a seeded
 * one (ld_rng_seeded) or one of its own, and gets the same numbers on
 * every run.
 */
struct ld_rng {
	uint32_t (*uniform)(void *state, uint32_t n); /* uniform in [0, n), n >= 1 */
	void *state;
};

/* A uniform integer in [0, n) (n >= 1) from rng, or from libsodium
 * (cryptographic, no modulo bias) when rng is NULL. */
uint32_t ld_uniform(const struct ld_rng *rng, uint32_t n);

/* A repeatable generator (splitmix64, no modulo bias) whose state is
 * *seed, which it advances: the same seed gives the same numbers. Not
 * for anything an attacker could guess. */
struct ld_rng ld_rng_seeded(uint64_t *seed);

/* snprintf that reports truncation: returns 0 if it fit, -1 otherwise. */
int ld_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* True when s, a config's "db", is a PostgreSQL connection string (a
 * URI: postgresql://... or postgres://...) rather than a SQLite file. */
int ld_is_conninfo(const char *s);

/* A config's "db" as a message or a log may show it: the password of a
 * connection string ("user:secret@host", "password=secret") becomes
 * "***"; anything else is copied as it is. Returns a new string the
 * caller frees. */
char *ld_db_shown(const char *db);

/* Masks in msg, in place, each double-quoted text that is part of a
 * password in db (libpq quotes the part of a connection string it could
 * not parse): it becomes "***" (shorter when it was). */
void ld_db_scrub(const char *db, char *msg);

/* True when s is 1..max characters of [A-Za-z0-9_-]. */
int ld_is_ident(const char *s, size_t max);

/* Reads a whole file (at most max bytes) into a NUL-terminated buffer the
 * caller frees. Returns LD_ERR_IO (message in err) or LD_ERR_INVALID when
 * larger than max. */
enum ld_err ld_read_file(const char *path, size_t max, char **out, size_t *len, char *err,
			 size_t errlen);

/* Formats ms since the epoch as ISO-8601 with the given UTC offset in
 * seconds ("2024-07-08T09:00:00.000+09:00"). buf needs 32 bytes. */
void ld_iso_time(int64_t ms, int32_t offset_s, char buf[32]);

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12, d 1..31),
 * and back (Howard Hinnant's algorithms; exact for any int32 year). */
int64_t ld_days_from_civil(int64_t y, int m, int d);
void ld_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/*
 * IANA time zones, from the system's zoneinfo (TZDIR or
 * /usr/share/zoneinfo). ld_zone_exists: name is a safe zone name (no '.',
 * no leading '/') of an existing TZif file. ld_zone_midnights: out[i] =
 * the UTC ms of the first instant of local day first_day + i (a day number
 * as from ld_days_from_civil), i < n; when a DST jump skips midnight the
 * day starts at the jump, when midnight happens twice at the first one.
 * ld_zone_offset: seconds east of UTC at ms. The last two switch the
 * process's TZ under a lock and put it back: call them at load time and
 * from tools, not per request while other threads use local time.
 */
int ld_zone_exists(const char *name);
void ld_zone_midnights(const char *zone, int64_t first_day, int n, int64_t *out);
int32_t ld_zone_offset(const char *zone, int64_t ms);

/* True when s[0..len) is well-formed UTF-8 (no overlong forms,
 * surrogates or code points past U+10FFFF). */
int ld_utf8_valid(const char *s, size_t len);

/*
 * Parses len bytes of JSON strictly, as every file and request body of
 * luckydice must be: RFC 8259 literals only (no single quotes, NaN,
 * Infinity or comments), valid UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF), no control characters or \u0000 in strings,
 * nesting at most depth levels, nothing but whitespace after the value.
 * Returns a new json-c object the caller puts, or NULL with a message in
 * err ("invalid JSON at offset 12: unexpected character"). The caller
 * still checks types and ranges: json-c clamps out-of-range integers.
 */
struct json_object;
struct json_object *ld_json_parse(const char *buf, size_t len, int depth, char *err, size_t errlen);

#endif
