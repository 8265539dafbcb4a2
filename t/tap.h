/*
 * tap.h - a tiny header-only TAP producer for the C unit tests, after
 * rra's c-tap-harness. Include it from exactly one file per test program.
 *
 *	plan(n);                       optional: announce n tests up front
 *	ok(cond, "fmt", ...);          one test point; returns cond
 *	is_int(got, want, "fmt", ...); integers, printing both on failure
 *	is_string(got, want, "fmt", ...); strings (NULL allowed)
 *	diag("fmt", ...);              a "# " comment line
 *	bail("fmt", ...);              "Bail out!" and exit(255)
 *	return done_testing();         prints "1..N" if no plan was given;
 *	                               0 when every test passed and the plan
 *	                               (if any) was met, 1 otherwise
 *
 * Output goes to stdout, flushed after every line, so that a crash still
 * leaves every finished test point in the log.
 */
#ifndef LD_TAP_H
#define LD_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAP_UNUSED       __attribute__((unused))
#define TAP_PRINTF(f, a) __attribute__((format(printf, f, a)))

static int tap_planned = -1; /* -1: no plan yet */
static int tap_run;
static int tap_failed;

static TAP_UNUSED void plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static TAP_UNUSED TAP_PRINTF(1, 2) void diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static TAP_UNUSED TAP_PRINTF(1, 2) void bail(const char *fmt, ...)
{
	va_list ap;

	fputs("Bail out! ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(255);
}

/* Prints one test point; ap is its description. */
static TAP_UNUSED void tap_point(int pass, const char *fmt, va_list ap)
{
	tap_run++;
	if (!pass)
		tap_failed++;
	printf("%sok %d", pass ? "" : "not ", tap_run);
	if (fmt != NULL && *fmt != '\0') {
		fputs(" - ", stdout);
		vprintf(fmt, ap);
	}
	putchar('\n');
	fflush(stdout);
}

static TAP_UNUSED TAP_PRINTF(2, 3) int ok(int cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_point(cond != 0, fmt, ap);
	va_end(ap);
	return cond != 0;
}

static TAP_UNUSED TAP_PRINTF(3, 4) int is_int(long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	int pass = got == want;

	va_start(ap, fmt);
	tap_point(pass, fmt, ap);
	va_end(ap);
	if (!pass) {
		diag("     got: %lld", got);
		diag("expected: %lld", want);
	}
	return pass;
}

static TAP_UNUSED TAP_PRINTF(3, 4) int is_string(const char *got, const char *want, const char *fmt,
						 ...)
{
	va_list ap;
	int pass;

	if (got == NULL || want == NULL)
		pass = got == want;
	else
		pass = strcmp(got, want) == 0;
	va_start(ap, fmt);
	tap_point(pass, fmt, ap);
	va_end(ap);
	if (!pass) {
		diag("     got: %s%s%s", got ? "'" : "", got ? got : "(null)", got ? "'" : "");
		diag("expected: %s%s%s", want ? "'" : "", want ? want : "(null)", want ? "'" : "");
	}
	return pass;
}

static TAP_UNUSED int done_testing(void)
{
	if (tap_planned < 0) {
		printf("1..%d\n", tap_run);
	} else if (tap_run != tap_planned) {
		diag("planned %d tests but ran %d", tap_planned, tap_run);
		fflush(stdout);
		return 1;
	}
	if (tap_failed > 0)
		diag("failed %d of %d tests", tap_failed, tap_run);
	fflush(stdout);
	return tap_failed > 0 ? 1 : 0;
}

#endif
