/*
 * log.h - how every program writes a diagnostic line to stderr: the
 * FastCGI supervisor and its children, the dispatcher, luckydicectl's
 * errors. (lib/ itself never logs: ld.h.)
 *
 * Priorities. Unless stderr is a terminal, each line starts with its
 * syslog priority as sd-daemon(3) describes, "<3>" for LOG_ERR, "<4>"
 * LOG_WARNING, "<5>" LOG_NOTICE, "<6>" LOG_INFO, "<7>" LOG_DEBUG: under
 * systemd stderr is the journal's stream, which files each line at its
 * priority (journalctl -p err finds the errors) and strips the prefix.
 * A file or a pipe (a test's log, cron's mail) keeps it, which is what
 * a test greps for. On a terminal the prefix would be noise, so there
 * is none. The journal's stream is a socket, never a terminal; a shell
 * may inherit JOURNAL_STREAM from a terminal started under systemd, so
 * that variable alone decides nothing.
 *
 * Each line is written with one write(2) of at most LOG_LINE_MAX bytes
 * (longer ones are cut, ending "..."), so the lines of processes that
 * share a stderr never mix.
 */
#ifndef LD_LOG_H
#define LD_LOG_H

#include <stdarg.h>
#include <syslog.h> /* LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG */

#define LOG_LINE_MAX 2048

/* Drops the lines less urgent than the config's "log_level" (0 error,
 * 1 warn, 2 info, 3 debug: lines up to LOG_ERR, LOG_WARNING, LOG_INFO or
 * LOG_DEBUG). Until a program sets it, lines up to LOG_INFO are written. */
void ld_log_set_level(int level);

/* Whether a line of prio would be written: to skip building one that
 * would not. */
int ld_log_enabled(int prio);

/* Writes one line of fmt at prio (a trailing newline is added), unless
 * the level drops it. */
void ld_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ld_vlog(int prio, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* The prefix lines of prio get: "<3>", or "" on a terminal. Static. */
const char *ld_log_prefix(int prio);

#endif
