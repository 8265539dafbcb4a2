/*
 * checkpointer.c - the checkpointer: a process of its own that copies
 * the WAL into the database, so that no worker, and the writer only
 * briefly, pays for a checkpoint and its syncs while answering a request.
 *
 * Passive, so it holds no one up: every 10 ms while there are writes,
 * every 2 ms once the WAL holds 90 % of the writer's threshold, every
 * 100 ms when idle. After each pass it syncs the database file: a
 * passive pass that does not reach the WAL's end never does, and
 * without this the writer's own checkpoint would sync every page copied
 * since the WAL began, which grows with the database. The less is left
 * to copy and to sync when the writer starts the WAL over, the shorter
 * its pause.
 *
 * The writer starts the WAL over itself (ledger_checkpoint). Without one
 * ("writes": "direct", or write workers and a database path too long for
 * the writer's socket next to it) a RESTART checkpoint does it, ten times
 * a second. With one, only when the WAL has grown to twice the writer's
 * threshold (the writer is restarting, or a long read held the frames),
 * and at most once a second: a RESTART holds the writes back while it
 * waits for the readers.
 */
#include <stdio.h>
#include <unistd.h>

#include "app.h"
#include "child.h"

void checkpointer_main(const char *config, int writerless)
{
	struct ledger_options lo = { 0 };
	struct ledger *l = NULL;
	struct ld_config cfg;
	char err[512];

	child_start(CHILD_CHECKPOINTER);
	if (config_load(config, &cfg, err, sizeof err) != LD_OK)
		child_fail("%s", err);
	ld_log_set_level(cfg.log_level);
	/* A restart holds new writers back while it waits for readers: never
	 * for more than 20 ms, whatever the workers' busy timeout. */
	lo.busy_timeout_ms = 20;
	lo.synchronous_full = cfg.synchronous_full;
	if (ledger_open(cfg.db, &lo, &l, err, sizeof err) != LD_OK)
		child_fail("%s", err);
	child_ready();
	if (writerless)
		ld_log(LOG_NOTICE,
		       "checkpointer: no writer process; it starts the WAL over"
		       " itself, ten times a second");
	int64_t last_restart_us = 0;
	int last_frames = -1;
	while (!child_stopping) {
		int frames = 0;
		enum ld_err e;

		child_busy = 1;
		e = ledger_checkpoint(l, 0, &frames);
		/* What this pass copied goes to disk now, not in the writer's
		 * pause when it starts the WAL over. */
		if (e == LD_OK && frames > 0 && frames != last_frames)
			e = ledger_sync(l);
		if (e == LD_OK && (writerless || frames >= 2 * cfg.wal_restart_frames) &&
		    ld_mono_us() - last_restart_us >= (writerless ? 100000 : 1000000)) {
			last_restart_us = ld_mono_us();
			e = ledger_checkpoint(l, 1, NULL);
		}
		if (e != LD_OK && e != LD_ERR_BUSY)
			ld_log(LOG_WARNING, "checkpointer: %s", ledger_errmsg(l));
		child_busy = 0;
		/* Near the writer's start-over: more often, less left. */
		int near = !writerless && frames >= cfg.wal_restart_frames / 10 * 9;
		if (!child_stopping)
			usleep(frames == last_frames ? 100 * 1000 : near ? 2 * 1000 : 10 * 1000);
		last_frames = frames;
	}
	ledger_free(l);
	config_release(&cfg);
	_exit(0);
}
