/*
 * config.c - reads the one JSON config file. Every key is listed in a
 * table with its type, bounds and default; a key not in the table is an
 * error, so a typo stops the program at start instead of being ignored.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"

#ifndef LD_CONFIG_DEFAULT
#define LD_CONFIG_DEFAULT "/etc/luckydice/luckydice.json"
#endif

#define CONFIG_FILE_MAX (64 * 1024)
#define CONFIG_DEPTH    5

enum ckind {
	C_STR,     /* string; with CF_PATH relative to the config's directory */
	C_REDIS,   /* "host:port" or a socket path (with '/') */
	C_URL,     /* http:// or https:// URL, trailing slashes dropped */
	C_INT,     /* integer in [min, max] */
	C_ENUM,    /* one of names[], stored as its index */
	C_BOOL,    /* true or false, stored as 1 or 0 (def) */
	C_ORIGINS, /* "allowed_origins": a list of origins */
	C_DISPATCH,
};

#define CF_REQUIRED 0x1
#define CF_PATH     0x2

struct ckey {
	const char *name;
	enum ckind kind;
	int flags;
	size_t off;            /* into struct ld_config */
	int64_t min, max, def; /* C_INT; def also the C_ENUM index */
	const char *sdef;      /* default of a string */
	const char *names[5];  /* C_ENUM, NULL-terminated */
};

#define OFF(f)  offsetof(struct ld_config, f)
#define DOFF(f) offsetof(struct ld_dispatch_config, f)

/* clang-format off */
static const struct ckey keys[] = {
	{ "db", C_STR, CF_REQUIRED | CF_PATH, OFF(db), 0, 0, 0, NULL, { NULL } },
	{ "redis", C_REDIS, 0, OFF(redis), 0, 0, 0, NULL, { NULL } },
	{ "redis_timeout_ms", C_INT, 0, OFF(redis_timeout_ms), 1, 60000, 100,
	  NULL, { NULL } },
	{ "token_secret_file", C_STR, CF_REQUIRED | CF_PATH,
	  OFF(token_secret_file), 0, 0, 0, NULL, { NULL } },
	{ "token_previous_secret_file", C_STR, CF_PATH,
	  OFF(token_previous_secret_file), 0, 0, 0, NULL, { NULL } },
	{ "signing_secret_file", C_STR, CF_PATH, OFF(signing_secret_file),
	  0, 0, 0, NULL, { NULL } },
	{ "console_secret_file", C_STR, CF_PATH, OFF(console_secret_file),
	  0, 0, 0, NULL, { NULL } },
	{ "public_url", C_URL, 0, OFF(public_url), 0, 0, 0,
	  "http://127.0.0.1:8080", { NULL } },
	{ "allowed_origins", C_ORIGINS, 0, 0, 0, 0, 0, NULL, { NULL } },
	{ "reward_url", C_URL, 0, OFF(reward_url), 0, 0, 0, NULL, { NULL } },
	{ "notify_url", C_URL, 0, OFF(notify_url), 0, 0, 0, NULL, { NULL } },
	{ "allow_plain_http", C_BOOL, 0, OFF(allow_plain_http), 0, 0, 0, NULL,
	  { NULL } },
	{ "workers", C_INT, 0, OFF(workers), 1, 256, 4, NULL, { NULL } },
	{ "write_workers", C_INT, 0, OFF(write_workers), 0, 256, 0, NULL, { NULL } },
	{ "socket_group", C_STR, 0, OFF(socket_group), 0, 0, 0, NULL, { NULL } },
	{ "synchronous", C_ENUM, 0, OFF(synchronous_full), 0, 0, 0, NULL,
	  { "normal", "full", NULL } },
	{ "busy_timeout_ms", C_INT, 0, OFF(busy_timeout_ms), 0, 600000, 2000,
	  NULL, { NULL } },
	{ "wal_restart_frames", C_INT, 0, OFF(wal_restart_frames), 100, 1000000,
	  32000, NULL, { NULL } },
	{ "writer_nice", C_INT, 0, OFF(writer_nice), -20, 19, -10, NULL, { NULL } },
	{ "balance_read", C_ENUM, 0, OFF(balance_from_cache), 0, 0, 0, NULL,
	  { "ledger", "cache", NULL } },
	{ "writes", C_ENUM, 0, OFF(writes_direct), 0, 0, 0, NULL,
	  { "grouped", "direct", NULL } },
	{ "log_level", C_ENUM, 0, OFF(log_level), 0, 0, 2, NULL,
	  { "error", "warn", "info", "debug", NULL } },
	{ "retention_days", C_INT, 0, OFF(retention_days), 1, 3650, 90, NULL, { NULL } },
	{ "log_slow_ms", C_INT, 0, OFF(log_slow_ms), 0, 600000, 100, NULL, { NULL } },
	{ "log_sample", C_INT, 0, OFF(log_sample), 0, 1000000000, 0, NULL, { NULL } },
	{ "dispatch", C_DISPATCH, 0, 0, 0, 0, 0, NULL, { NULL } },
};
/* clang-format on */

/* clang-format off */
static const struct ckey dkeys[] = {
	{ "lease_seconds", C_INT, 0, DOFF(lease_seconds), 1, 86400, 60, NULL, { NULL } },
	{ "backoff_base_seconds", C_INT, 0, DOFF(backoff_base_seconds), 1, 86400,
	  30, NULL, { NULL } },
	{ "backoff_max_seconds", C_INT, 0, DOFF(backoff_max_seconds), 1, 604800,
	  3600, NULL, { NULL } },
	{ "max_attempts", C_INT, 0, DOFF(max_attempts), 1, 1000, 12, NULL, { NULL } },
	{ "timeout_ms", C_INT, 0, DOFF(timeout_ms), 1, 600000, 5000, NULL, { NULL } },
	{ "concurrency", C_INT, 0, DOFF(concurrency), 1, 1024, 16, NULL, { NULL } },
	{ "batch", C_INT, 0, DOFF(batch), 1, 100000, 500, NULL, { NULL } },
};
/* clang-format on */

#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))

struct cparse {
	const char *path; /* config file, for messages */
	char *dir;        /* its directory, absolute */
	char *err;
	size_t errlen;
};

static void cerr(struct cparse *cp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cerr(struct cparse *cp, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (cp->err == NULL || cp->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(cp->err, cp->errlen, "config '%s': %s", cp->path, msg);
}

/* A key from the file, printable in a message: at most 40 bytes, anything
 * but printable ASCII shown as '?'. */
static void printable(const char *s, char out[48])
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < 40; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
	if (s[i] != '\0' && i == 40)
		out[i++] = '.', out[i++] = '.', out[i++] = '.';
	out[i] = '\0';
}

/*
 * The absolute directory of the config file at path: its dirname, put
 * under the current directory when relative, so that resolved paths still
 * hold after a chdir. Returns NULL (message set) if getcwd fails.
 */
static char *config_dir(struct cparse *cp, const char *path)
{
	const char *slash = strrchr(path, '/');
	char cwd[4096], *dir;
	size_t n;

	if (slash == path)
		return xstrdup("/");
	if (slash != NULL && path[0] == '/')
		return xstrndup(path, (size_t)(slash - path));
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		cerr(cp, "cannot get the current directory: %s", strerror(errno));
		return NULL;
	}
	if (slash == NULL)
		return xstrdup(cwd);
	n = strlen(cwd) + 1 + (size_t)(slash - path) + 1;
	dir = xmalloc(n);
	snprintf(dir, n, "%s/%.*s", strcmp(cwd, "/") == 0 ? "" : cwd, (int)(slash - path), path);
	return dir;
}

/* value made absolute against the config's directory. */
static char *resolve(const struct cparse *cp, const char *value)
{
	size_t n;
	char *p;

	if (value[0] == '/')
		return xstrdup(value);
	n = strlen(cp->dir) + 1 + strlen(value) + 1;
	p = xmalloc(n);
	snprintf(p, n, "%s/%s", strcmp(cp->dir, "/") == 0 ? "" : cp->dir, value);
	return p;
}

/* True when s is "host:port" with a non-empty host and a port 1..65535. */
static int is_host_port(const char *s)
{
	const char *colon = strrchr(s, ':');
	long port = 0;
	const char *q;

	if (colon == NULL || colon == s || colon[1] == '\0' || strlen(colon) > 6)
		return 0;
	for (q = colon + 1; *q != '\0'; q++) {
		if (*q < '0' || *q > '9')
			return 0;
		port = port * 10 + (*q - '0');
	}
	for (q = s; q < colon; q++)
		if ((unsigned char)*q <= ' ' || *q == 0x7f)
			return 0;
	return port >= 1 && port <= 65535;
}

#define ORIGIN_MAX 256

/*
 * Splits an http:// or https:// URL. origin gets "scheme://host[:port]"
 * as a browser sends it in an Origin header: the host in lower case, the
 * scheme's default port left out. host gets the host alone (an IPv6
 * address keeps its brackets); *rest points at what follows the port (the
 * path, query or nothing). Returns 0, or -1 when there is no usable host:
 * empty, with user information, characters no host name has, or a port
 * that is not 1..65535.
 */
static int url_split(const char *url, char origin[ORIGIN_MAX], char host[ORIGIN_MAX],
		     const char **rest)
{
	size_t scheme = strncmp(url, "http://", 7) == 0 ? 7
		: strncmp(url, "https://", 8) == 0      ? 8
							: 0;
	const char *hp = url + scheme, *end, *colon;
	size_t hlen, i;
	long port = -1;

	if (scheme == 0)
		return -1;
	end = hp + strcspn(hp, "/?#");
	if (end == hp || memchr(hp, '@', (size_t)(end - hp)) != NULL)
		return -1;
	if (*hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(end - hp));

		if (rb == NULL || (rb + 1 < end && rb[1] != ':'))
			return -1;
		colon = rb + 1 < end ? rb + 1 : NULL;
		hlen = (size_t)(rb + 1 - hp);
	} else {
		colon = memchr(hp, ':', (size_t)(end - hp));
		hlen = (size_t)((colon != NULL ? colon : end) - hp);
	}
	if (hlen == 0 || hlen > 200)
		return -1;
	if (colon != NULL) {
		const char *q;

		if (end - colon < 2 || end - colon > 6)
			return -1;
		for (port = 0, q = colon + 1; q < end; q++) {
			if (*q < '0' || *q > '9')
				return -1;
			port = port * 10 + (*q - '0');
		}
		if (port < 1 || port > 65535)
			return -1;
	}
	for (i = 0; i < hlen; i++) {
		char c = hp[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		      (hp[0] == '[' && (c == ':' || c == '[' || c == ']'))))
			return -1;
		host[i] = c;
	}
	host[hlen] = '\0';
	if ((scheme == 7 && port == 80) || (scheme == 8 && port == 443))
		port = -1;
	if (port == -1)
		snprintf(origin, ORIGIN_MAX, "%.*s%s", (int)scheme, url, host);
	else
		snprintf(origin, ORIGIN_MAX, "%.*s%s:%ld", (int)scheme, url, host, port);
	*rest = end;
	return 0;
}

/* True when host (as url_split gives it) is this machine's loopback:
 * localhost, 127.0.0.0/8 or [::1]. */
static int is_loopback(const char *host)
{
	int dots = 0;

	if (strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
		return 1;
	if (strncmp(host, "127.", 4) != 0)
		return 0;
	for (const char *q = host; *q != '\0'; q++) {
		if (*q == '.')
			dots++;
		else if (*q < '0' || *q > '9')
			return 0;
	}
	return dots == 3;
}

/*
 * "allowed_origins" (v, NULL when absent): a list of at most
 * CONFIG_ORIGINS_MAX origins, each "http[s]://host[:port]" (a trailing
 * slash is allowed), stored as url_split writes them. Absent, the one
 * origin of "public_url", which must have been read already. Returns 0 or
 * -1 with the message set.
 */
static int config_origins(struct cparse *cp, struct json_object *v, struct ld_config *cfg)
{
	char origin[ORIGIN_MAX], host[ORIGIN_MAX];
	const char *rest;
	size_t i, n;

	if (v == NULL || json_object_is_type(v, json_type_null)) {
		if (url_split(cfg->public_url, origin, host, &rest) != 0) {
			cerr(cp, "\"public_url\" has no usable host");
			return -1;
		}
		cfg->allowed_origins = xcalloc(1, sizeof(char *));
		cfg->allowed_origins[0] = xstrdup(origin);
		cfg->n_allowed_origins = 1;
		return 0;
	}
	if (!json_object_is_type(v, json_type_array) ||
	    (n = json_object_array_length(v)) > CONFIG_ORIGINS_MAX) {
		cerr(cp, "\"allowed_origins\" must be a list of at most %d origins",
		     CONFIG_ORIGINS_MAX);
		return -1;
	}
	cfg->allowed_origins = xcalloc(n > 0 ? n : 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		const char *s = json_object_is_type(e, json_type_string) ? json_object_get_string(e)
									 : "";

		if (url_split(s, origin, host, &rest) != 0 ||
		    !(rest[0] == '\0' || strcmp(rest, "/") == 0)) {
			cerr(cp,
			     "\"allowed_origins[%zu]\" must be an origin such as "
			     "\"https://dice.example.com\" (no path)",
			     i);
			return -1;
		}
		cfg->allowed_origins[cfg->n_allowed_origins++] = xstrdup(origin);
	}
	return 0;
}

/*
 * The dispatcher's URLs: https://, or http:// to a loopback address
 * only, unless "allow_plain_http" says otherwise (a signed event in clear
 * text over a network can be read, and a reward service that answers
 * without TLS can be impersonated).
 */
static int config_service_urls(struct cparse *cp, const struct ld_config *cfg)
{
	static const char *const names[] = { "reward_url", "notify_url" };
	const char *urls[] = { cfg->reward_url, cfg->notify_url };
	char origin[ORIGIN_MAX], host[ORIGIN_MAX];
	const char *rest;

	for (size_t i = 0; i < 2; i++) {
		if (urls[i] == NULL || strncmp(urls[i], "http://", 7) != 0 || cfg->allow_plain_http)
			continue;
		if (url_split(urls[i], origin, host, &rest) == 0 && is_loopback(host))
			continue;
		cerr(cp,
		     "\"%s\" must be https:// (http:// only to a loopback address, "
		     "unless \"allow_plain_http\" is true)",
		     names[i]);
		return -1;
	}
	return 0;
}

/*
 * Applies one key k of the file (v, NULL when absent) to the struct at
 * base; name is the key as shown in messages ("dispatch.batch"). Returns
 * 0 or -1 with the message set.
 */
static int config_key(struct cparse *cp, const struct ckey *k, const char *name,
		      struct json_object *v, void *base)
{
	char **sp = (char **)((char *)base + k->off);
	int *ip = (int *)((char *)base + k->off);
	const char *s;
	size_t i, n;

	if (v == NULL || json_object_is_type(v, json_type_null)) {
		if (k->flags & CF_REQUIRED) {
			cerr(cp, "\"%s\" is required", name);
			return -1;
		}
		if (k->kind == C_INT || k->kind == C_ENUM || k->kind == C_BOOL)
			*ip = (int)k->def;
		else if (k->sdef != NULL)
			*sp = xstrdup(k->sdef);
		return 0;
	}
	switch (k->kind) {
	case C_INT: {
		int64_t x;

		if (!json_object_is_type(v, json_type_int))
			goto bad_int;
		x = json_object_get_int64(v);
		if (x < k->min || x > k->max)
			goto bad_int;
		*ip = (int)x;
		return 0;
	bad_int:
		cerr(cp, "\"%s\" must be an integer from %lld to %lld", name, (long long)k->min,
		     (long long)k->max);
		return -1;
	}
	case C_ENUM:
		s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
		for (i = 0; s != NULL && k->names[i] != NULL; i++) {
			if (strcmp(s, k->names[i]) == 0) {
				*ip = (int)i;
				return 0;
			}
		}
		if (k->names[2] == NULL)
			cerr(cp, "\"%s\" must be \"%s\" or \"%s\"", name, k->names[0], k->names[1]);
		else
			cerr(cp, "\"%s\" must be one of \"%s\", \"%s\", \"%s\", \"%s\"", name,
			     k->names[0], k->names[1], k->names[2], k->names[3]);
		return -1;
	case C_BOOL:
		if (!json_object_is_type(v, json_type_boolean)) {
			cerr(cp, "\"%s\" must be true or false", name);
			return -1;
		}
		*ip = json_object_get_boolean(v) ? 1 : 0;
		return 0;
	default: break;
	}
	if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0) {
		cerr(cp, "\"%s\" must be a non-empty string", name);
		return -1;
	}
	s = json_object_get_string(v);
	if (k->kind == C_URL) {
		size_t scheme = strncmp(s, "http://", 7) == 0 ? 7
			: strncmp(s, "https://", 8) == 0      ? 8
							      : 0;
		char origin[ORIGIN_MAX], host[ORIGIN_MAX];
		const char *rest;

		n = strlen(s);
		while (n > scheme && s[n - 1] == '/')
			n--;
		if (scheme == 0 || n == scheme || strpbrk(s, " \t\r\n") != NULL ||
		    url_split(s, origin, host, &rest) != 0) {
			cerr(cp, "\"%s\" must be an http:// or https:// URL", name);
			return -1;
		}
		*sp = xstrndup(s, n);
	} else if (k->kind == C_REDIS && strchr(s, '/') == NULL) {
		if (!is_host_port(s)) {
			cerr(cp,
			     "\"%s\" must be \"host:port\" or a socket path "
			     "containing '/'",
			     name);
			return -1;
		}
		*sp = xstrdup(s);
	} else if ((k->flags & CF_PATH) && k->off == OFF(db) && ld_is_conninfo(s)) {
		*sp = xstrdup(s); /* a PostgreSQL connection string, not a file */
	} else if (k->kind == C_REDIS || (k->flags & CF_PATH)) {
		*sp = resolve(cp, s);
	} else {
		*sp = xstrdup(s);
	}
	return 0;
}

/*
 * Applies the object obj to base by the table keys[0..n): first rejects
 * any key not in the table, then sets every entry (defaults for the ones
 * absent). prefix ("" or "dispatch.") goes before names in messages.
 */
static int config_object(struct cparse *cp, struct json_object *obj, const char *prefix,
			 const struct ckey *tab, size_t n, void *base)
{
	char name[64], shown[48];
	size_t i;

	if (obj != NULL) {
		json_object_object_foreach(obj, key, val)
		{
			(void)val;
			for (i = 0; i < n; i++)
				if (strcmp(key, tab[i].name) == 0)
					break;
			if (i == n) {
				printable(key, shown);
				cerr(cp, "unknown key \"%s%s\"", prefix, shown);
				return -1;
			}
		}
	}
	for (i = 0; i < n; i++) {
		struct json_object *v = NULL;

		snprintf(name, sizeof(name), "%s%s", prefix, tab[i].name);
		if (obj != NULL)
			json_object_object_get_ex(obj, tab[i].name, &v);
		if (tab[i].kind == C_ORIGINS)
			continue; /* after the others: its default is public_url's */
		if (tab[i].kind == C_DISPATCH) {
			struct ld_config *cfg = base;

			if (v != NULL && json_object_is_type(v, json_type_null))
				v = NULL;
			if (v != NULL && !json_object_is_type(v, json_type_object)) {
				cerr(cp, "\"%s\" must be an object", name);
				return -1;
			}
			/* Absent: NULL gives every dispatch default. */
			if (config_object(cp, v, "dispatch.", dkeys, NKEYS(dkeys),
					  &cfg->dispatch) == -1)
				return -1;
			continue;
		}
		if (config_key(cp, &tab[i], name, v, base) == -1)
			return -1;
	}
	return 0;
}

enum ld_err config_parse(const char *json, size_t len, const char *path, struct ld_config *cfg,
			 char *err, size_t errlen)
{
	struct cparse cp = { path, NULL, err, errlen };
	struct json_object *root, *origins = NULL;
	char msg[200];
	enum ld_err rc;

	memset(cfg, 0, sizeof(*cfg));
	root = ld_json_parse(json, len, CONFIG_DEPTH, msg, sizeof(msg));
	if (root == NULL) {
		cerr(&cp, "%s", msg);
		return LD_ERR_INVALID;
	}
	rc = LD_ERR_INVALID;
	if (!json_object_is_type(root, json_type_object)) {
		cerr(&cp, "not a JSON object");
		goto out;
	}
	if ((cp.dir = config_dir(&cp, path)) == NULL) {
		rc = LD_ERR_IO;
		goto out;
	}
	cfg->path = xstrdup(path);
	if (config_object(&cp, root, "", keys, NKEYS(keys), cfg) == -1)
		goto out;
	json_object_object_get_ex(root, "allowed_origins", &origins);
	if (config_origins(&cp, origins, cfg) == -1 || config_service_urls(&cp, cfg) == -1)
		goto out;
	/* On a database server a balance read is a round trip: Redis is the
	 * faster read there (docs/performance.md), so it is the default. */
	if (!json_object_object_get_ex(root, "balance_read", NULL) && cfg->redis &&
	    ld_is_conninfo(cfg->db))
		cfg->balance_from_cache = 1;
	if (cfg->dispatch.backoff_max_seconds < cfg->dispatch.backoff_base_seconds) {
		cerr(&cp,
		     "\"dispatch.backoff_max_seconds\" must not be less than "
		     "\"dispatch.backoff_base_seconds\"");
		goto out;
	}
	rc = LD_OK;
out:
	json_object_put(root);
	free(cp.dir);
	if (rc != LD_OK)
		config_release(cfg);
	return rc;
}

enum ld_err config_load(const char *path, struct ld_config *cfg, char *err, size_t errlen)
{
	char msg[200], *text;
	enum ld_err rc;
	size_t len;

	memset(cfg, 0, sizeof(*cfg));
	rc = ld_read_file(path, CONFIG_FILE_MAX, &text, &len, msg, sizeof(msg));
	if (rc != LD_OK) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s", msg);
		return rc;
	}
	rc = config_parse(text, len, path, cfg, err, errlen);
	free(text);
	return rc;
}

const char *config_default_path(void)
{
	const char *path = getenv("LUCKYDICE_CONFIG");

	return path != NULL && *path != '\0' ? path : config_installed_path();
}

const char *config_installed_path(void)
{
	return LD_CONFIG_DEFAULT;
}

enum ld_err config_load_default(struct ld_config *cfg, char *err, size_t errlen)
{
	return config_load(config_default_path(), cfg, err, errlen);
}

void config_release(struct ld_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->db);
	free(cfg->redis);
	free(cfg->token_secret_file);
	free(cfg->token_previous_secret_file);
	free(cfg->signing_secret_file);
	free(cfg->console_secret_file);
	free(cfg->public_url);
	for (size_t i = 0; i < cfg->n_allowed_origins; i++)
		free(cfg->allowed_origins[i]);
	free(cfg->allowed_origins);
	free(cfg->reward_url);
	free(cfg->notify_url);
	free(cfg->socket_group);
	memset(cfg, 0, sizeof(*cfg));
}
