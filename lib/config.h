/*
 * config.h - the one JSON config file every program reads
 * (path from LUCKYDICE_CONFIG). Unknown keys are an error, so a typo is
 * caught at start rather than silently ignored.
 */
#ifndef LD_CONFIG_H
#define LD_CONFIG_H

#include "ld.h"

#define CONFIG_ORIGINS_MAX 16 /* entries of "allowed_origins" */

struct ld_dispatch_config {
	int lease_seconds;        /* how long a claimed row is ours (60) */
	int backoff_base_seconds; /* first retry waits up to this (30) */
	int backoff_max_seconds;  /* cap of one wait (3600) */
	int max_attempts;         /* then the row is dead (12) */
	int timeout_ms;           /* per HTTP request (5000) */
	int concurrency;          /* transfers at once (16) */
	int batch;                /* rows claimed per round (500) */
};

struct ld_config {
	char *path;                       /* the file it came from */
	char *db;                         /* SQLite path (required) */
	char *redis;                      /* "host:port" or "/unix/path"; NULL = no cache */
	int redis_timeout_ms;             /* connect and command timeout (100) */
	char *token_secret_file;          /* HMAC key for user tokens (required) */
	char *token_previous_secret_file; /* the key before the last rotation:
				  * its tokens still verify (NULL = none) */
	char *signing_secret_file;        /* HMAC key for outbox events (the
				  * dispatcher refuses to run without it) */
	char *console_secret_file;        /* HMAC key for operator tokens and console
				  * sessions, a secret of its own (NULL: no
				  * console) */
	char *public_url;                 /* base of invite links ("http://127.0.0.1:8080") */
	char **allowed_origins;           /* the Origins a cookie-signed request may come
				  * from: n_allowed_origins of them, normalised
				  * ("https://host[:port]"); default public_url's */
	size_t n_allowed_origins;
	char *reward_url;       /* reward.issue events go here */
	char *notify_url;       /* notify.* events go here */
	int allow_plain_http;   /* 1: reward_url and notify_url may be
				  * http:// to any host, not only loopback */
	int workers;            /* FastCGI worker processes (4) */
	int write_workers;      /* on the write socket, when there is one (0:
				  * the writer serves it itself) */
	char *socket_group;     /* the FastCGI sockets' group, the web
				  * server's (NULL: "www-data" where that
				  * group exists) */
	int synchronous_full;   /* 1: PRAGMA synchronous=FULL, 0: NORMAL (default) */
	int busy_timeout_ms;    /* SQLite busy timeout (2000) */
	int wal_restart_frames; /* the writer starts the WAL over past this
				  * many frames of ~4 KB (32000) */
	int writer_nice;        /* the writer's nice value (-10): it runs
				  * every write, so it goes first for a CPU */
	int balance_from_cache; /* "balance_read": "cache" = 1, "ledger" = 0 */
	int writes_direct;      /* "writes": "grouped" = 0 (one writer process
				  * commits for all workers), "direct" = 1 */
	int log_level;          /* 0 error, 1 warn, 2 info (default), 3 debug */
	int retention_days;     /* client identifiers older than this are made
				  * pseudonyms by 'luckydicectl purge' (90) */
	int log_slow_ms;        /* a request that took this long is logged, as a
				  * warning (100; 0: none is slow) */
	int log_sample;         /* one routine request in this many is logged
				  * (0, the default: none) */
	struct ld_dispatch_config dispatch;
};

/*
 * Reads and validates the config at path into cfg (which the caller then
 * releases with config_release). Relative "db", "redis" and secret-file
 * paths are taken relative to the config file's directory. On error
 * returns LD_ERR_IO or LD_ERR_INVALID with a message naming the key.
 */
enum ld_err config_load(const char *path, struct ld_config *cfg, char *err, size_t errlen);

/* The same for len bytes of JSON already read from path (which names
 * the file in messages and anchors relative paths). */
enum ld_err config_parse(const char *json, size_t len, const char *path, struct ld_config *cfg,
			 char *err, size_t errlen);

/* The config file a program reads when not given one: $LUCKYDICE_CONFIG
 * when set and not empty, else the installed path (LD_CONFIG_DEFAULT,
 * "$(sysconfdir)/luckydice/luckydice.json", fixed at build time). The
 * result is static or the environment's: do not free it. */
const char *config_default_path(void);

/* The installed path alone (LD_CONFIG_DEFAULT), for help texts. */
const char *config_installed_path(void);

/* config_load of config_default_path(). */
enum ld_err config_load_default(struct ld_config *cfg, char *err, size_t errlen);

/* Frees what cfg holds (not cfg itself). */
void config_release(struct ld_config *cfg);

#endif
