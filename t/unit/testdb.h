/*
 * testdb.h - a real, migrated SQLite ledger in a fresh temporary directory
 * (under $TMPDIR, else /tmp) for the unit tests that need one, and its
 * removal (with its WAL, shared-memory and writer socket files). Include
 * after tap.h.
 */
#ifndef LD_TESTDB_H
#define LD_TESTDB_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ledger.h"

struct testdb {
	char dir[256];
	char path[300];
	struct ledger *ledger;
};

/* Creates the directory and the database; bails out of the test on error.
 * name becomes part of the directory's name. */
static TAP_UNUSED void testdb_open(struct testdb *t, const char *name)
{
	struct ledger_options lo = { .create = 1 };
	const char *tmp = getenv("TMPDIR");
	char err[256];

	snprintf(t->dir, sizeof t->dir, "%s/ld-unit-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	if (!mkdtemp(t->dir))
		bail("cannot make a temporary directory");
	snprintf(t->path, sizeof t->path, "%s/t.db", t->dir);
	if (ledger_open(t->path, &lo, &t->ledger, err, sizeof err) != LD_OK)
		bail("%s", err);
	if (ledger_migrate(t->ledger, NULL, NULL) != LD_OK)
		bail("%s", ledger_errmsg(t->ledger));
}

/* Closes the ledger and removes the database, its WAL files and the
 * directory. */
static TAP_UNUSED void testdb_remove(struct testdb *t)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-writer" };
	char path[320];

	ledger_free(t->ledger);
	t->ledger = NULL;
	for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
		snprintf(path, sizeof path, "%s%s", t->path, suffix[i]);
		unlink(path);
	}
	rmdir(t->dir);
}

#endif
