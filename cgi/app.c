/*
 * app.c - what a worker process opens once, after the fork, and closes
 * at its end (see struct app in app.h).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "child.h"
#include "log.h"

int app_writer_socket(const struct ld_config *cfg, char path[108])
{
	return !cfg->writes_direct && writer_socket_path(cfg->db, path, 108) == 0;
}

void app_no_writer_socket(const struct ld_config *cfg, char *why, size_t n)
{
	if (ld_is_conninfo(cfg->db))
		snprintf(why, n,
			 "the database is on a server, with no file to put a socket beside");
	else
		snprintf(why, n,
			 "the path of the database '%s' is too long for a socket"
			 " next to it",
			 cfg->db);
}

int app_ledger_open(const struct ld_config *cfg, struct ledger_options *lo, struct ledger **out,
		    char *err, size_t errlen)
{
	struct ledger *l;

	lo->lazy = ld_is_conninfo(cfg->db);
	if (ledger_open(cfg->db, lo, &l, err, errlen) != LD_OK)
		return -1;
	for (int waited = 0;; waited = 1) {
		enum ld_err e = ledger_check_schema(l);

		if (e == LD_OK)
			break;
		if (e != LD_ERR_BUSY || !lo->lazy || child_stopping) {
			snprintf(err, errlen, "%s", ledger_errmsg(l));
			ledger_free(l);
			return -1;
		}
		if (!waited)
			ld_log(LOG_WARNING, "luckydice-fcgi: waiting for the database: %s",
			       ledger_errmsg(l));
		sleep(1);
	}
	*out = l;
	return 0;
}

int app_load(struct app *app, const char *config, char *err, size_t errlen)
{
	enum ld_err e;

	memset(app, 0, sizeof *app);
	if (config_load(config, &app->cfg, err, errlen) != LD_OK)
		return -1;
	ld_log_set_level(app->cfg.log_level);
	if (token_keys_load(&app->cfg, &app->key, err, errlen) != LD_OK)
		return -1;
	/* no "console_secret_file": no console; a bad one stops the start */
	e = operator_key_load(&app->cfg, &app->console_key, err, errlen);
	if (e != LD_OK && e != LD_ERR_NOTFOUND)
		return -1;
	app->console = e == LD_OK;
	err[0] = '\0';
	return 0;
}

int app_open(struct app *app, const char *config, char *err, size_t errlen)
{
	struct ledger_options lo = { 0 };
	char path[108];

	if (app_load(app, config, err, errlen) != 0)
		return -1;
	lo.busy_timeout_ms = app->cfg.busy_timeout_ms;
	lo.synchronous_full = app->cfg.synchronous_full;
	lo.defer_checkpoints = 1;
	if (app_ledger_open(&app->cfg, &lo, &app->ledger, err, errlen) != 0)
		return -1;
	const char *lid;
	if (ledger_id(app->ledger, &lid) != LD_OK) {
		snprintf(err, errlen, "%s", ledger_errmsg(app->ledger));
		return -1;
	}
	if (app->cfg.redis &&
	    !(app->cache = cache_new(app->cfg.redis, app->cfg.redis_timeout_ms, lid))) {
		snprintf(err, errlen, "bad \"redis\" address '%s'", app->cfg.redis);
		return -1;
	}
	if (app_writer_socket(&app->cfg, path))
		/* wait for the writer as long as it may wait for the lock */
		app->writer = writer_client_new(path, app->cfg.busy_timeout_ms + 3000);
	return 0;
}

void app_release(struct app *app)
{
	writer_client_free(app->writer);
	cache_free(app->cache);
	ledger_free(app->ledger);
	token_key_release(&app->key);
	token_key_release(&app->console_key);
	config_release(&app->cfg);
}
