/*
 * ctl.h - luckydicectl, the operator's tool: one cmd_<name>() per
 * command (git builtin/ style), sharing the opened config and ledger.
 *
 * Exit codes: 0 done, 1 the command ran and found a problem (e.g. cache
 * drift), 2 cannot run (usage, config, database).
 */
#ifndef LD_CTL_H
#define LD_CTL_H

#include "config.h"
#include "ledger.h"
#include "cache.h"

struct ctl {
	struct ld_config cfg;
	struct ledger *ledger; /* opened on first ctl_ledger() */
	int create;            /* init: create the database file */
};

/* The ledger, opened (and schema-checked unless creating) on first use;
 * exits 2 with a message on failure. */
struct ledger *ctl_ledger(struct ctl *c);

/* The promotion with this id; exits 2 when there is none. */
const struct promo *ctl_promo(struct ctl *c, const char *id);

/* Reads and validates a promotion file; exits 2 with the file's name and
 * the failing field on error. The caller frees the result (promo_free). */
struct promo *ctl_read_promo(const char *path);

/* Prints "error: ..." and exits 2. */
void ctl_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

int cmd_init(struct ctl *c, int argc, char **argv);
int cmd_promo(struct ctl *c, int argc, char **argv);
int cmd_token(struct ctl *c, int argc, char **argv);
int cmd_stats(struct ctl *c, int argc, char **argv);

/* promo simulate FILE ... (cmd_stats.c); argv[0] is "promo". */
int ctl_promo_simulate(struct ctl *c, int argc, char **argv);
int cmd_user(struct ctl *c, int argc, char **argv);
int cmd_grant(struct ctl *c, int argc, char **argv);
int cmd_revoke(struct ctl *c, int argc, char **argv);
int cmd_revoke_reward(struct ctl *c, int argc, char **argv);
int cmd_cache(struct ctl *c, int argc, char **argv);
int cmd_export(struct ctl *c, int argc, char **argv);

/* A new cache client for the config's "redis" (the caller frees it with
 * cache_free), or NULL when no cache is configured. */
struct cache *ctl_cache_open(struct ctl *c);
int cmd_outbox(struct ctl *c, int argc, char **argv);

#endif
