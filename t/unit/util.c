/*
 * t/unit/util.c - lib/util.c: allocation wrappers and the out-of-memory
 * hook, ld_fmt, ld_is_ident, ld_read_file, ld_iso_time, the civil-date
 * and time-zone helpers, UTF-8 validation and the strict JSON entry point.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ld.h"
#include "../tap.h"

static char tmpdir[256];

/* Writes n bytes of s to tmpdir/name; returns the path (static buffer). */
static const char *write_tmp(const char *name, const char *s, size_t n)
{
	static char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, s, n) != (ssize_t)n || close(fd) == -1)
		bail("cannot write '%s'", path);
	return path;
}

#ifndef __SANITIZE_ADDRESS__
static jmp_buf oom_jump;
static int oom_calls;

static void test_oom(void)
{
	oom_calls++;
	longjmp(oom_jump, 1);
}
#endif

static void t_alloc(void)
{
	char *p, *q;
	int *z;
	pid_t pid;
	int st, fds[2];
	char msg[64] = "";
	ssize_t n;

	p = xstrdup("hello");
	is_string(p, "hello", "xstrdup copies");
	q = xstrndup("hello", 3);
	is_string(q, "hel", "xstrndup stops at n");
	free(q);
	q = xstrndup("hi", 10);
	is_string(q, "hi", "xstrndup stops at the NUL before n");
	free(q);
	p = xrealloc(p, 4096);
	is_string(p, "hello", "xrealloc keeps the contents");
	free(p);
	z = xcalloc(16, sizeof(int));
	ok(z[0] == 0 && z[15] == 0, "xcalloc zeroes");
	free(z);
	p = xmalloc(0);
	ok(p != NULL, "xmalloc(0) is not NULL");
	free(p);

	/* The default handler: "fatal: out of memory" and exit 2. */
	if (pipe(fds) == -1 || (pid = fork()) == -1)
		bail("cannot fork");
	if (pid == 0) {
		dup2(fds[1], 2);
		ld_oom();
		_exit(0);
	}
	close(fds[1]);
	n = read(fds[0], msg, sizeof(msg) - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 2, "default ld_oom exits 2");
	is_string(msg, "<3>fatal: out of memory\n",
		  "default ld_oom message, an error (stderr is a pipe)");

#ifndef __SANITIZE_ADDRESS__
	/* A program's own handler runs when malloc fails. */
	{
		void (*saved)(void) = ld_oom;
		volatile size_t huge = SIZE_MAX / 2;

		ld_oom = test_oom;
		if (setjmp(oom_jump) == 0) {
			p = xmalloc(huge);
			free(p);
			ok(0, "xmalloc(SIZE_MAX / 2) calls ld_oom");
		} else {
			ok(oom_calls == 1, "xmalloc(SIZE_MAX / 2) calls ld_oom");
		}
		ld_oom = saved;
	}
#else
	ok(1, "# SKIP ld_oom on malloc failure (AddressSanitizer aborts)");
#endif
}

static void t_misc(void)
{
	char buf[8], id65[66];
	int64_t now = ld_now_ms(), t = (int64_t)time(NULL) * 1000;

	ok(now > t - 2000 && now < t + 2000, "ld_now_ms is near time()");
	is_string(ld_strerror(LD_OK), "success", "ld_strerror(LD_OK)");
	is_string(ld_strerror(LD_ERR_BUSY), "database is busy", "ld_strerror(LD_ERR_BUSY)");
	is_string(ld_strerror((enum ld_err)99), "unknown error", "ld_strerror of an unknown value");

	is_int(ld_fmt(buf, sizeof(buf), "%s", "1234567"), 0, "ld_fmt exact fit");
	is_string(buf, "1234567", "ld_fmt exact fit writes all");
	is_int(ld_fmt(buf, sizeof(buf), "%s", "12345678"), -1, "ld_fmt truncation");
	is_string(buf, "1234567", "ld_fmt truncation leaves a NUL-terminated prefix");
	is_int(ld_fmt(buf, 0, "x"), -1, "ld_fmt into zero bytes");

	ok(ld_is_ident("A-z_09", 64), "ident: letters, digits, _ and -");
	ok(!ld_is_ident("", 64), "ident: empty");
	ok(!ld_is_ident(NULL, 64), "ident: NULL");
	ok(!ld_is_ident("a b", 64), "ident: space");
	ok(!ld_is_ident("a.b", 64), "ident: dot");
	ok(!ld_is_ident("caf\xc3\xa9", 64), "ident: non-ASCII");
	memset(id65, 'x', 65);
	id65[65] = '\0';
	ok(!ld_is_ident(id65, 64), "ident: 65 characters with max 64");
	id65[64] = '\0';
	ok(ld_is_ident(id65, 64), "ident: 64 characters with max 64");
}

static void t_read_file(void)
{
	char err[256] = "", *buf = NULL, big[10000];
	const char *path;
	size_t len = 99;

	path = write_tmp("a.txt", "hello\n", 6);
	is_int(ld_read_file(path, 6, &buf, &len, err, sizeof(err)), LD_OK,
	       "read a file of exactly max bytes");
	is_int((long long)len, 6, "its length");
	is_string(buf, "hello\n", "its contents, NUL-terminated");
	free(buf);
	is_int(ld_read_file(path, 5, &buf, &len, err, sizeof(err)), LD_ERR_INVALID,
	       "a file over max is LD_ERR_INVALID");
	ok(buf == NULL && strstr(err, path) != NULL && strstr(err, "larger") != NULL,
	   "the message names the file: %s", err);

	path = write_tmp("empty", "", 0);
	is_int(ld_read_file(path, 10, &buf, &len, err, sizeof(err)), LD_OK, "read an empty file");
	ok(buf != NULL && buf[0] == '\0' && len == 0, "empty file gives \"\"");
	free(buf);

	memset(big, 'b', sizeof(big));
	big[5000] = '\0';
	path = write_tmp("big", big, sizeof(big));
	is_int(ld_read_file(path, 20000, &buf, &len, err, sizeof(err)), LD_OK,
	       "read a file larger than the first buffer");
	ok(len == sizeof(big) && memcmp(buf, big, sizeof(big)) == 0,
	   "all of it, with the NUL inside");
	free(buf);

	snprintf(big, sizeof(big), "%s/missing", tmpdir);
	is_int(ld_read_file(big, 10, &buf, &len, err, sizeof(err)), LD_ERR_IO,
	       "a missing file is LD_ERR_IO");
	ok(strncmp(err, "cannot open '", 13) == 0 && strstr(err, big) != NULL,
	   "the message quotes the path: %s", err);
	is_int(ld_read_file(tmpdir, 10, &buf, &len, err, sizeof(err)), LD_ERR_IO,
	       "a directory is LD_ERR_IO");
	ok(strncmp(err, "cannot read '", 13) == 0, "message: %s", err);
}

static void t_time(void)
{
	char buf[32];
	int64_t d, y;
	int m, dd, bad = 0;

	ld_iso_time(0, 0, buf);
	is_string(buf, "1970-01-01T00:00:00.000+00:00", "iso: epoch");
	ld_iso_time(1720364400123LL, 9 * 3600, buf);
	is_string(buf, "2024-07-08T00:00:00.123+09:00", "iso: Seoul midnight");
	ld_iso_time(1720364400000LL, -4 * 3600, buf);
	is_string(buf, "2024-07-07T11:00:00.000-04:00", "iso: negative offset");
	ld_iso_time(-1, 0, buf);
	is_string(buf, "1969-12-31T23:59:59.999+00:00", "iso: before the epoch");
	ld_iso_time(0, 30472, buf);
	is_string(buf, "1970-01-01T08:27:00.000+08:27",
		  "iso: an offset with seconds is cut to minutes, same instant");
	ld_iso_time(INT64_MAX, 0, buf);
	is_string(buf, "9999-12-31T23:59:59.999+00:00", "iso: clamped at 9999");

	is_int(ld_days_from_civil(1970, 1, 1), 0, "civil: epoch is day 0");
	is_int(ld_days_from_civil(2024, 7, 8), 19912, "civil: 2024-07-08");
	is_int(ld_days_from_civil(1969, 12, 31), -1, "civil: the day before");
	is_int(ld_days_from_civil(2024, 3, 1) - ld_days_from_civil(2024, 2, 28), 2,
	       "civil: 2024 is a leap year");
	is_int(ld_days_from_civil(2100, 3, 1) - ld_days_from_civil(2100, 2, 28), 1,
	       "civil: 2100 is not");
	for (d = -800000; d <= 3000000; d += 997) {
		ld_civil_from_days(d, &y, &m, &dd);
		if (ld_days_from_civil(y, m, dd) != d || m < 1 || m > 12 || dd < 1 || dd > 31)
			bad++;
	}
	is_int(bad, 0, "civil: days -> date -> days round trips");
}

static void t_utf8(void)
{
	ok(ld_utf8_valid("plain", 5), "utf8: ASCII");
	ok(ld_utf8_valid("\xed\x96\x89\xec\x9a\xb4", 6), "utf8: Hangul");
	ok(ld_utf8_valid("\xf0\x9f\x8e\xb2", 4), "utf8: 4-byte (die emoji)");
	ok(!ld_utf8_valid("\xc0\x80", 2), "utf8: overlong NUL");
	ok(!ld_utf8_valid("\xe0\x80\xaf", 3), "utf8: overlong 3-byte");
	ok(!ld_utf8_valid("\xed\xa0\x80", 3), "utf8: surrogate");
	ok(!ld_utf8_valid("\xf4\x90\x80\x80", 4), "utf8: past U+10FFFF");
	ok(!ld_utf8_valid("\xe2\x82", 2), "utf8: truncated");
	ok(!ld_utf8_valid("\x80", 1), "utf8: lone continuation");
	ok(!ld_utf8_valid("\xff", 1), "utf8: 0xff");
}

static void t_zone(void)
{
	int64_t out[3];

	ok(ld_zone_exists("Asia/Seoul"), "zone: Asia/Seoul exists");
	ok(ld_zone_exists("Etc/GMT+9"), "zone: Etc/GMT+9 exists");
	ok(!ld_zone_exists("Asia"), "zone: a directory is not a zone");
	ok(!ld_zone_exists("zone.tab"), "zone: zone.tab is not a zone");
	ok(!ld_zone_exists("../zoneinfo/Asia/Seoul"), "zone: no ..");
	ok(!ld_zone_exists("/usr/share/zoneinfo/Asia/Seoul"), "zone: no absolute path");
	ok(!ld_zone_exists("Asia//Seoul"), "zone: no empty component");
	ok(!ld_zone_exists("Asia/Seoul/"), "zone: no trailing slash");
	ok(!ld_zone_exists(""), "zone: empty");
	ok(!ld_zone_exists("Nowhere/Special"), "zone: missing");
	is_int(ld_zone_offset("Asia/Seoul", 0), 9 * 3600, "offset: Seoul");
	is_int(ld_zone_offset("America/New_York", 1719835200000LL), -4 * 3600,
	       "offset: New York in July (EDT)");
	is_int(ld_zone_offset("America/New_York", -1), -5 * 3600,
	       "offset: New York just before the epoch (EST)");
	setenv("TZ", "UTC", 1);
	ld_zone_midnights("Asia/Seoul", ld_days_from_civil(2024, 7, 8), 3, out);
	ok(out[0] == 1720364400000LL && out[1] == out[0] + 86400000 && out[2] == out[1] + 86400000,
	   "midnights: three Seoul days");
	is_string(getenv("TZ"), "UTC", "midnights: TZ is given back");
	/* glibc's mktime carries its guess of the offset from call to call;
	 * after this first call it answers the second of Havana's two
	 * midnights on 2024-11-03, which ld_zone_midnights must correct. */
	ld_zone_midnights("America/Havana", ld_days_from_civil(2024, 3, 10), 1, out);
	is_int(out[0], 1710046800000LL, "midnights: Havana 2024-03-10 starts at the jump, 05:00Z");
	ld_zone_midnights("America/Havana", ld_days_from_civil(2024, 11, 3), 1, out);
	is_int(out[0], 1730606400000LL,
	       "midnights: Havana 2024-11-03 starts at the first midnight, 04:00Z");
	unsetenv("TZ");
	ld_zone_offset("Asia/Seoul", 0);
	ok(getenv("TZ") == NULL, "offset: an unset TZ stays unset");
}

/* 1 when s (as a C string) parses with depth 10, else 0; the message of
 * a failure is left in err. */
static int parses(const char *s, size_t n, char err[200])
{
	struct json_object *o;

	err[0] = '\0';
	o = ld_json_parse(s, n, 10, err, 200);
	json_object_put(o);
	return o != NULL;
}

#define PARSES(s) parses(s, sizeof(s) - 1, err)

static void t_json(void)
{
	char err[200];

	ok(PARSES("{\"a\":[1,2.5,\"x\",true,false,null]}"), "json: valid object");
	ok(PARSES(" \n{\"a\":1}\r\n\t "), "json: whitespace around");
	ok(PARSES("123"), "json: a bare number at exact length");
	ok(PARSES("{\"a\":\"\\u00e9\\n\\\\u0000\"}"), "json: escapes, \\\\u0000 is text");
	ok(!PARSES("{\"a\":1} x"), "json: trailing garbage");
	ok(strstr(err, "offset 8") != NULL, "json: message gives the offset: %s", err);
	ok(!PARSES("{\"a\":1}{}"), "json: two values");
	ok(!parses("{\"a\":1}\0", 8, err), "json: NUL after the value");
	ok(!PARSES("{'a':1}"), "json: single quotes");
	ok(!PARSES("{\"a\":NaN}"), "json: NaN");
	ok(!PARSES("{\"a\":-Infinity}"), "json: Infinity");
	ok(!PARSES("{\"a\":1,}"), "json: trailing comma");
	ok(!PARSES("{\"a\":1 /* c */}"), "json: comment");
	ok(!PARSES("{\"a\":\"x\ty\"}"), "json: raw tab in a string");
	ok(strstr(err, "control character") != NULL, "json: says so: %s", err);
	ok(!PARSES("{\"a\":\"\\u0000\"}"), "json: \\u0000");
	ok(!PARSES("{\"a\":\"\xc0\x80\"}"), "json: overlong UTF-8");
	ok(strstr(err, "invalid UTF-8") != NULL, "json: says so: %s", err);
	ok(!PARSES("{\"a\":\"\xed\xa0\x80\"}"), "json: surrogate in UTF-8");
	ok(!PARSES("\xef\xbb\xbf{}"), "json: byte order mark");
	ok(!PARSES("[[[[[[[[[[[1]]]]]]]]]]]"), "json: nesting past the depth");
	ok(strstr(err, "nesting too deep") != NULL, "json: says so: %s", err);
	ok(!PARSES(""), "json: empty input");
	ok(!PARSES("{\"a\":"), "json: truncated");
	ok(strstr(err, "end of input") != NULL || strstr(err, "unexpected") != NULL,
	   "json: truncated message: %s", err);
}

/* A "db" shown in a message never shows a connection string's password. */
static void t_db_shown(void)
{
	static const char *const cases[][2] = {
		{ "/var/lib/luckydice/luckydice.db", "/var/lib/luckydice/luckydice.db" },
		{ "postgresql:///luckydice?host=/run/pg&port=5432&user=ld",
		  "postgresql:///luckydice?host=/run/pg&port=5432&user=ld" },
		{ "postgresql://ld:s3cret@db1:5432,db2:5432/luckydice",
		  "postgresql://ld:***@db1:5432,db2:5432/luckydice" },
		{ "postgres://ld:@db1/luckydice", "postgres://ld:***@db1/luckydice" },
		{ "postgresql://db1:5432/luckydice?user=ld&password=s3cret&sslmode=require",
		  "postgresql://db1:5432/luckydice?user=ld&password=***&sslmode=require" },
		{ "postgresql://ld:a@db1/x?password=b&password=c",
		  "postgresql://ld:***@db1/x?password=***&password=***" },
		{ "postgresql://ld@db1/x?old_password=k", "postgresql://ld@db1/x?old_password=k" },
		{ "host=db1 user=ld password=s3cret dbname=x",
		  "host=db1 user=ld password=*** dbname=x" },
		{ "host=db1 password='a b\\' c' dbname=x", "host=db1 password=*** dbname=x" },
		{ "password=", "password=***" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *shown = ld_db_shown(cases[i][0]);
		is_string(shown, cases[i][1], "db shown: %s", cases[i][1]);
		free(shown);
	}
}

/* libpq's messages quote the part of a connection string it could not
 * parse: a quoted part of a password never reaches a message. */
static void t_db_scrub(void)
{
	static const char *const cases[][3] = {
		{ "postgresql://u:s3cr%zzet@db1/x", "invalid percent-encoded token: \"s3cr%zzet\"",
		  "invalid percent-encoded token: \"***\"" },
		{ "postgresql://u@db1/x?password=ab%zz", "invalid percent-encoded token: \"ab%zz\"",
		  "invalid percent-encoded token: \"***\"" },
		{ "postgresql://u:pw@db1/x", "bad token \"p\" here", "bad token \"*\" here" },
		{ "postgresql://u@db1/x?password=abc&bogus=1",
		  "invalid URI query parameter: \"bogus\"",
		  "invalid URI query parameter: \"bogus\"" },
		{ "postgresql://u:s3cret@db1/x", "could not translate host name \"db1\" to address",
		  "could not translate host name \"db1\" to address" },
		{ "postgresql://u@db1/x", "a \"u\" b \"db1\"", "a \"u\" b \"db1\"" },
		{ "host=h password=s3cret", "x \"s3cret\" y \"h\" z \"", "x \"***\" y \"h\" z \"" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char msg[200];

		snprintf(msg, sizeof msg, "%s", cases[i][1]);
		ld_db_scrub(cases[i][0], msg);
		is_string(msg, cases[i][2], "db scrub: %s", cases[i][2]);
	}
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	char path[512];

	snprintf(tmpdir, sizeof(tmpdir), "%s/ld-unit-util.XXXXXX",
		 base != NULL && *base != '\0' ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		bail("cannot create a temporary directory");
	t_alloc();
	t_misc();
	t_read_file();
	t_time();
	t_utf8();
	t_zone();
	t_json();
	t_db_shown();
	t_db_scrub();
	snprintf(path, sizeof(path), "%s/a.txt", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/empty", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/big", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	return done_testing();
}
