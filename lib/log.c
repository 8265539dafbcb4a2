/*
 * log.c - diagnostic lines on stderr with their syslog priority (see
 * log.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int prefixed = -1;       /* -1: not decided yet */
static int max_prio = LOG_INFO; /* lines above it are dropped */

void ld_log_set_level(int level)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

	max_prio = prio[level < 0 ? 0 : level > 3 ? 3 : level];
}

int ld_log_enabled(int prio)
{
	return prio <= max_prio;
}

/* Whether lines get a priority: stderr is not a terminal. Decided once:
 * stderr does not change under a running program. */
static int use_prefix(void)
{
	if (prefixed < 0) {
		int saved = errno;
		prefixed = !isatty(STDERR_FILENO);
		errno = saved;
	}
	return prefixed;
}

const char *ld_log_prefix(int prio)
{
	static const char *const prefixes[8] = { "<0>", "<1>", "<2>", "<3>",
						 "<4>", "<5>", "<6>", "<7>" };

	if (!use_prefix())
		return "";
	return prefixes[prio >= 0 && prio <= 7 ? prio : LOG_ERR];
}

void ld_vlog(int prio, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t len, off = 0;
	int saved = errno, n;

	if (!ld_log_enabled(prio))
		return;
	n = snprintf(line, sizeof line, "%s", ld_log_prefix(prio));
	len = n > 0 ? (size_t)n : 0;
	n = vsnprintf(line + len, sizeof line - len, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof line - len - 1) { /* cut, ending "...\n" */
		len = sizeof line - 5;
		memcpy(line + len, "...", 3);
		len += 3;
	} else {
		len += (size_t)n;
	}
	line[len++] = '\n';
	while (off < len) {
		ssize_t w = write(STDERR_FILENO, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* nowhere else to say it */
		off += (size_t)w;
	}
	errno = saved;
}

void ld_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ld_vlog(prio, fmt, ap);
	va_end(ap);
}
