/*
 * t/unit/config.c - lib/config.c: defaults, every key, paths relative to
 * the config file, $LUCKYDICE_CONFIG, and the messages of bad files.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "../tap.h"

static char tmpdir[256];
static char cfgpath[512];

/* Writes s as tmpdir/c.json (cfgpath). */
static void write_cfg(const char *s)
{
	int fd;

	if ((fd = open(cfgpath, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, s, strlen(s)) != (ssize_t)strlen(s) || close(fd) == -1)
		bail("cannot write '%s'", cfgpath);
}

/* tmpdir + "/" + rel (static buffer, one at a time). */
static const char *in_tmp(const char *rel)
{
	static char buf[600];

	snprintf(buf, sizeof(buf), "%s/%s", tmpdir, rel);
	return buf;
}

static void t_defaults(void)
{
	struct ld_config cfg;
	char err[512] = "";

	write_cfg("{\"db\": \"var/luckydice.db\", \"token_secret_file\": \"secret\"}\n");
	if (!is_int(config_load(cfgpath, &cfg, err, sizeof(err)), LD_OK, "a minimal config loads"))
		bail("%s", err);
	is_string(cfg.path, cfgpath, "path");
	is_string(cfg.db, in_tmp("var/luckydice.db"), "db is relative to the config");
	is_string(cfg.token_secret_file, in_tmp("secret"),
		  "token_secret_file is relative to the config");
	ok(cfg.redis == NULL, "redis: none");
	ok(cfg.signing_secret_file == NULL, "signing_secret_file: none");
	ok(cfg.token_previous_secret_file == NULL, "token_previous_secret_file: none");
	ok(cfg.reward_url == NULL && cfg.notify_url == NULL, "no service URLs");
	is_string(cfg.public_url, "http://127.0.0.1:8080", "public_url default");
	ok(cfg.n_allowed_origins == 1 &&
		   strcmp(cfg.allowed_origins[0], "http://127.0.0.1:8080") == 0,
	   "allowed_origins default: public_url's origin");
	is_int(cfg.allow_plain_http, 0, "allow_plain_http default false");
	is_int(cfg.redis_timeout_ms, 100, "redis_timeout_ms default");
	is_int(cfg.workers, 4, "workers default");
	is_int(cfg.write_workers, 0, "write_workers default: the writer serves the write socket");
	ok(cfg.socket_group == NULL, "socket_group: none (luckydice-fcgi takes www-data)");
	is_int(cfg.synchronous_full, 0, "synchronous default normal");
	is_int(cfg.busy_timeout_ms, 2000, "busy_timeout_ms default");
	is_int(cfg.wal_restart_frames, 32000, "wal_restart_frames default");
	is_int(cfg.writer_nice, -10, "writer_nice default");
	is_int(cfg.balance_from_cache, 0, "balance_read default ledger");
	is_int(cfg.log_level, 2, "log_level default info");
	is_int(cfg.log_slow_ms, 100, "log_slow_ms default 100");
	is_int(cfg.log_sample, 0, "log_sample default 0: no routine request is logged");
	ok(cfg.dispatch.lease_seconds == 60 && cfg.dispatch.backoff_base_seconds == 30 &&
		   cfg.dispatch.backoff_max_seconds == 3600 && cfg.dispatch.max_attempts == 12 &&
		   cfg.dispatch.timeout_ms == 5000 && cfg.dispatch.concurrency == 16 &&
		   cfg.dispatch.batch == 500,
	   "dispatch defaults");
	config_release(&cfg);
	ok(cfg.db == NULL && cfg.path == NULL, "config_release clears");
	config_release(&cfg);
}

static void t_full(void)
{
	struct ld_config cfg;
	char err[512] = "";

	write_cfg("{\n"
		  "  \"db\": \"/abs/luckydice.db\",\n"
		  "  \"redis\": \"run/redis.sock\",\n"
		  "  \"redis_timeout_ms\": 250,\n"
		  "  \"token_secret_file\": \"../secrets/token\",\n"
		  "  \"token_previous_secret_file\": \"old-token\",\n"
		  "  \"signing_secret_file\": \"signing\",\n"
		  "  \"public_url\": \"https://dice.example.com/\",\n"
		  "  \"allowed_origins\": [\"https://Dice.Example.COM:443/\",\n"
		  "    \"http://localhost:8080\", \"http://[::1]:80\"],\n"
		  "  \"reward_url\": \"http://127.0.0.1:9001/reward\",\n"
		  "  \"notify_url\": \"http://notify.internal:9002/notify\",\n"
		  "  \"allow_plain_http\": true,\n"
		  "  \"workers\": 256,\n"
		  "  \"synchronous\": \"full\",\n"
		  "  \"busy_timeout_ms\": 0,\n"
		  "  \"wal_restart_frames\": 100,\n"
		  "  \"writer_nice\": -20,\n"
		  "  \"write_workers\": 0,\n"
		  "  \"socket_group\": \"nginx\",\n"
		  "  \"balance_read\": \"cache\",\n"
		  "  \"log_level\": \"debug\",\n"
		  "  \"log_slow_ms\": 0,\n"
		  "  \"log_sample\": 1000,\n"
		  "  \"dispatch\": { \"lease_seconds\": 5, \"backoff_base_seconds\": 1,\n"
		  "    \"backoff_max_seconds\": 10, \"max_attempts\": 3, \"timeout_ms\": 200,\n"
		  "    \"concurrency\": 4, \"batch\": 7 }\n"
		  "}\n");
	if (!is_int(config_load(cfgpath, &cfg, err, sizeof(err)), LD_OK,
		    "a config with every key loads"))
		bail("%s", err);
	is_string(cfg.db, "/abs/luckydice.db", "an absolute db stays");
	is_string(cfg.redis, in_tmp("run/redis.sock"),
		  "a relative redis socket is relative to the config");
	is_string(cfg.token_secret_file, in_tmp("../secrets/token"), "token_secret_file with ..");
	is_string(cfg.token_previous_secret_file, in_tmp("old-token"),
		  "token_previous_secret_file is relative to the config");
	is_string(cfg.signing_secret_file, in_tmp("signing"), "signing_secret_file");
	is_string(cfg.public_url, "https://dice.example.com",
		  "public_url loses its trailing slash");
	if (is_int((long long)cfg.n_allowed_origins, 3, "three allowed origins")) {
		is_string(cfg.allowed_origins[0], "https://dice.example.com",
			  "an origin in lower case, without the default port or a slash");
		is_string(cfg.allowed_origins[1], "http://localhost:8080", "another port is kept");
		is_string(cfg.allowed_origins[2], "http://[::1]", "an IPv6 origin");
	}
	is_string(cfg.reward_url, "http://127.0.0.1:9001/reward", "reward_url");
	is_string(cfg.notify_url, "http://notify.internal:9002/notify",
		  "notify_url over http to another host, with allow_plain_http");
	is_int(cfg.allow_plain_http, 1, "allow_plain_http true");
	is_int(cfg.redis_timeout_ms, 250, "redis_timeout_ms");
	is_int(cfg.workers, 256, "workers at its maximum");
	is_int(cfg.synchronous_full, 1, "synchronous full");
	is_int(cfg.busy_timeout_ms, 0, "busy_timeout_ms 0");
	is_int(cfg.wal_restart_frames, 100, "wal_restart_frames at its minimum");
	is_int(cfg.writer_nice, -20, "writer_nice at its minimum");
	is_int(cfg.write_workers, 0, "write_workers 0 (the writer serves the write socket)");
	is_string(cfg.socket_group, "nginx", "socket_group");
	is_int(cfg.balance_from_cache, 1, "balance_read cache");
	is_int(cfg.log_level, 3, "log_level debug");
	is_int(cfg.log_slow_ms, 0, "log_slow_ms 0: none is slow");
	is_int(cfg.log_sample, 1000, "log_sample 1000");
	ok(cfg.dispatch.lease_seconds == 5 && cfg.dispatch.backoff_base_seconds == 1 &&
		   cfg.dispatch.backoff_max_seconds == 10 && cfg.dispatch.max_attempts == 3 &&
		   cfg.dispatch.timeout_ms == 200 && cfg.dispatch.concurrency == 4 &&
		   cfg.dispatch.batch == 7,
	   "dispatch values");
	config_release(&cfg);

	write_cfg("{\"db\": \"d\", \"token_secret_file\": \"s\", \"redis\": "
		  "\"127.0.0.1:6379\", \"dispatch\": {\"batch\": 9}, "
		  "\"reward_url\": null}");
	is_int(config_load(cfgpath, &cfg, err, sizeof(err)), LD_OK,
	       "host:port redis, partial dispatch");
	is_string(cfg.redis, "127.0.0.1:6379", "host:port is kept as is");
	ok(cfg.dispatch.batch == 9 && cfg.dispatch.lease_seconds == 60,
	   "the rest of dispatch has defaults");
	ok(cfg.reward_url == NULL, "null is absent");
	config_release(&cfg);

	write_cfg("{\"db\": \"d\", \"token_secret_file\": \"s\", \"redis\": null}");
	is_int(config_load(cfgpath, &cfg, err, sizeof(err)), LD_OK, "redis null");
	ok(cfg.redis == NULL, "redis null is no cache");
	config_release(&cfg);

	write_cfg("{\"db\": \"d\", \"token_secret_file\": \"s\", \"allowed_origins\": [],"
		  " \"public_url\": \"https://x.example:8443/promo\","
		  " \"reward_url\": \"https://r.example/issue\","
		  " \"notify_url\": \"http://127.0.0.53:9/n\"}");
	is_int(config_load(cfgpath, &cfg, err, sizeof(err)), LD_OK,
	       "an empty allowed_origins, https and loopback http URLs");
	is_int((long long)cfg.n_allowed_origins, 0, "no origin is allowed");
	config_release(&cfg);
	write_cfg("{\"db\": \"d\", \"token_secret_file\": \"s\","
		  " \"public_url\": \"https://x.example:8443/promo\"}");
	is_int(config_load(cfgpath, &cfg, err, sizeof(err)), LD_OK, "public_url with a path");
	ok(cfg.n_allowed_origins == 1 &&
		   strcmp(cfg.allowed_origins[0], "https://x.example:8443") == 0,
	   "its origin is the default: scheme, host and port");
	config_release(&cfg);
}

static void t_relative_config(void)
{
	struct ld_config cfg;
	char err[512] = "", cwd[512], want[600];
	int here = open(".", O_RDONLY);

	write_cfg("{\"db\": \"l.db\", \"token_secret_file\": \"/s\"}");
	if (here == -1 || chdir(tmpdir) == -1 || getcwd(cwd, sizeof(cwd)) == NULL)
		bail("cannot chdir to '%s'", tmpdir);
	is_int(config_load("c.json", &cfg, err, sizeof(err)), LD_OK,
	       "load a config by a relative path");
	snprintf(want, sizeof(want), "%s/l.db", cwd);
	is_string(cfg.db, want, "its db is made absolute");
	config_release(&cfg);
	is_int(config_load("./c.json", &cfg, err, sizeof(err)), LD_OK, "load ./c.json");
	snprintf(want, sizeof(want), "%s/./l.db", cwd);
	is_string(cfg.db, want, "its db is made absolute too");
	config_release(&cfg);
	if (fchdir(here) == -1)
		bail("cannot chdir back");
	close(here);

	setenv("LUCKYDICE_CONFIG", cfgpath, 1);
	is_string(config_default_path(), cfgpath, "$LUCKYDICE_CONFIG names the config");
	is_int(config_load_default(&cfg, err, sizeof(err)), LD_OK,
	       "config_load_default reads $LUCKYDICE_CONFIG");
	is_string(cfg.db, in_tmp("l.db"), "the same file");
	config_release(&cfg);
	unsetenv("LUCKYDICE_CONFIG");
	is_string(config_default_path(), LD_CONFIG_DEFAULT,
		  "without $LUCKYDICE_CONFIG the installed path");
	setenv("LUCKYDICE_CONFIG", "", 1);
	is_string(config_default_path(), LD_CONFIG_DEFAULT, "an empty one is unset");
	unsetenv("LUCKYDICE_CONFIG");
}

/* A bad config: LD_ERR_INVALID, cfg left empty, and the message is
 * "config 'PATH': want". */
static void bad(const char *text, const char *want)
{
	struct ld_config cfg;
	char err[512] = "", full[700];

	write_cfg(text);
	snprintf(full, sizeof(full), "config '%s': %s", cfgpath, want);
	ok(config_load(cfgpath, &cfg, err, sizeof(err)) == LD_ERR_INVALID && cfg.db == NULL &&
		   cfg.path == NULL && strncmp(err, full, strlen(full)) == 0,
	   "%s", want);
	if (strncmp(err, full, strlen(full)) != 0)
		diag("got: %s", err);
	config_release(&cfg);
}

#define REQUIRED_KEYS "\"db\": \"d\", \"token_secret_file\": \"s\""

static void t_bad(void)
{
	struct ld_config cfg;
	char err[512] = "";

	bad("{" REQUIRED_KEYS ", \"dbb\": 1}", "unknown key \"dbb\"");
	bad("{" REQUIRED_KEYS ", \"dispatch\": {\"leases\": 1}}",
	    "unknown key \"dispatch.leases\"");
	bad("{\"token_secret_file\": \"s\"}", "\"db\" is required");
	bad("{\"db\": null, \"token_secret_file\": \"s\"}", "\"db\" is required");
	bad("{\"db\": \"d\"}", "\"token_secret_file\" is required");
	bad("{\"db\": 5, \"token_secret_file\": \"s\"}", "\"db\" must be a non-empty string");
	bad("{\"db\": \"\", \"token_secret_file\": \"s\"}", "\"db\" must be a non-empty string");
	bad("{" REQUIRED_KEYS ", \"workers\": \"2\"}",
	    "\"workers\" must be an integer from 1 to 256");
	bad("{" REQUIRED_KEYS ", \"workers\": 0}", "\"workers\" must be an integer from 1 to 256");
	bad("{" REQUIRED_KEYS ", \"workers\": 257}",
	    "\"workers\" must be an integer from 1 to 256");
	bad("{" REQUIRED_KEYS ", \"workers\": 2.0}",
	    "\"workers\" must be an integer from 1 to 256");
	bad("{" REQUIRED_KEYS ", \"workers\": true}", "\"workers\" must be an integer");
	bad("{" REQUIRED_KEYS ", \"writer_nice\": 20}",
	    "\"writer_nice\" must be an integer from -20 to 19");
	bad("{" REQUIRED_KEYS ", \"write_workers\": -1}",
	    "\"write_workers\" must be an integer from 0 to 256");
	bad("{" REQUIRED_KEYS ", \"wal_restart_frames\": 99}",
	    "\"wal_restart_frames\" must be an integer from 100 to 1000000");
	bad("{" REQUIRED_KEYS ", \"redis_timeout_ms\": 99999999999999999999}",
	    "\"redis_timeout_ms\" must be an integer from 1 to 60000");
	bad("{" REQUIRED_KEYS ", \"synchronous\": \"off\"}",
	    "\"synchronous\" must be \"normal\" or \"full\"");
	bad("{" REQUIRED_KEYS ", \"balance_read\": 1}",
	    "\"balance_read\" must be \"ledger\" or \"cache\"");
	bad("{" REQUIRED_KEYS ", \"log_sample\": -1}",
	    "\"log_sample\" must be an integer from 0 to 1000000000");
	bad("{" REQUIRED_KEYS ", \"log_slow_ms\": 600001}",
	    "\"log_slow_ms\" must be an integer from 0 to 600000");
	bad("{" REQUIRED_KEYS ", \"log_level\": \"trace\"}",
	    "\"log_level\" must be one of \"error\", \"warn\", \"info\", \"debug\"");
	bad("{" REQUIRED_KEYS ", \"dispatch\": 5}", "\"dispatch\" must be an object");
	bad("{" REQUIRED_KEYS ", \"dispatch\": {\"batch\": 0}}",
	    "\"dispatch.batch\" must be an integer from 1 to 100000");
	bad("{" REQUIRED_KEYS ", \"dispatch\": {\"backoff_base_seconds\": 100, "
	    "\"backoff_max_seconds\": 10}}",
	    "\"dispatch.backoff_max_seconds\" must not be less than");
	bad("{" REQUIRED_KEYS ", \"redis\": \"localhost\"}", "\"redis\" must be \"host:port\"");
	bad("{" REQUIRED_KEYS ", \"redis\": \"localhost:99999\"}",
	    "\"redis\" must be \"host:port\"");
	bad("{" REQUIRED_KEYS ", \"redis\": \":6379\"}", "\"redis\" must be \"host:port\"");
	bad("{" REQUIRED_KEYS ", \"redis\": 6379}", "\"redis\" must be a non-empty string");
	bad("{" REQUIRED_KEYS ", \"public_url\": \"ftp://x\"}", "\"public_url\" must be an http");
	bad("{" REQUIRED_KEYS ", \"reward_url\": \"http://\"}", "\"reward_url\" must be an http");
	bad("{" REQUIRED_KEYS ", \"notify_url\": \"\"}",
	    "\"notify_url\" must be a non-empty string");
	bad("{" REQUIRED_KEYS ", \"reward_url\": \"http://rewards.example/issue\"}",
	    "\"reward_url\" must be https:// (http:// only to a loopback address");
	bad("{" REQUIRED_KEYS ", \"notify_url\": \"http://127.0.0.1.example/n\"}",
	    "\"notify_url\" must be https://");
	bad("{" REQUIRED_KEYS ", \"notify_url\": \"http://localhost.evil:80/n\"}",
	    "\"notify_url\" must be https://");
	bad("{" REQUIRED_KEYS ", \"reward_url\": \"https://user@r.example/\"}",
	    "\"reward_url\" must be an http");
	bad("{" REQUIRED_KEYS ", \"public_url\": \"http://x:0\"}",
	    "\"public_url\" must be an http");
	bad("{" REQUIRED_KEYS ", \"allow_plain_http\": 1}",
	    "\"allow_plain_http\" must be true or false");
	bad("{" REQUIRED_KEYS ", \"allowed_origins\": \"https://x.example\"}",
	    "\"allowed_origins\" must be a list of at most 16 origins");
	bad("{" REQUIRED_KEYS
	    ", \"allowed_origins\": [\"https://x.example\", \"https://x.example/app\"]}",
	    "\"allowed_origins[1]\" must be an origin such as");
	bad("{" REQUIRED_KEYS ", \"allowed_origins\": [\"null\"]}",
	    "\"allowed_origins[0]\" must be an origin");
	bad("{" REQUIRED_KEYS ", \"allowed_origins\": [\"*\"]}",
	    "\"allowed_origins[0]\" must be an origin");
	bad("{" REQUIRED_KEYS ", \"allowed_origins\": [1]}",
	    "\"allowed_origins[0]\" must be an origin");
	bad("{" REQUIRED_KEYS ", \"allowed_origins\": [\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
	    "\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\"]}",
	    "\"allowed_origins\" must be a list of at most 16");
	bad("{" REQUIRED_KEYS ",}", "invalid JSON at offset");
	bad("{" REQUIRED_KEYS "} {}", "invalid JSON at offset");
	bad("[]", "not a JSON object");
	bad("{" REQUIRED_KEYS ", \"db\": \"x\", \"\\u00e9\\u0001\": 1}", "unknown key \"??");

	is_int(config_load(in_tmp("missing.json"), &cfg, err, sizeof(err)), LD_ERR_IO,
	       "a missing config is LD_ERR_IO");
	ok(strstr(err, "cannot open '") != NULL && strstr(err, "missing.json") != NULL,
	   "the message names it: %s", err);
	ok(cfg.db == NULL, "and cfg is empty");
}

int main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/ld-unit-config.XXXXXX",
		 base != NULL && *base != '\0' ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		bail("cannot create a temporary directory");
	snprintf(cfgpath, sizeof(cfgpath), "%s/c.json", tmpdir);
	t_defaults();
	t_full();
	t_relative_config();
	t_bad();
	unlink(cfgpath);
	rmdir(tmpdir);
	return done_testing();
}
