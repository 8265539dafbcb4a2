/*
 * backup.h - the life of a SQLite ledger file: an online backup checked
 * against the ledger it came from, and a restore that cannot lose a
 * prize (docs/backup.md is the runbook).
 *
 * A backup is one self-contained SQLite file, copied at one instant while
 * the service writes (db_backup), then opened read-only and checked:
 * PRAGMA integrity_check, the schema version, and the rows of every table
 * against the ledger's at the copy's instant.
 *
 * A restore puts a backup in the place of the database while nothing has
 * it open, and gives the restored ledger a new ledger id (ledger.h): the
 * events it issues from then on have keys that were never issued before,
 * even where its draw ids repeat ones issued after the backup; its Redis
 * keys start cold; its events that were not delivered (pending, or leased
 * when the backup was taken) are due at once. The database it replaces is
 * kept beside it, not deleted.
 */
#ifndef LD_BACKUP_H
#define LD_BACKUP_H

#include "ledger.h"

#define BACKUP_TABLES_MAX 16

/* What a backup wrote, and what its check found. */
struct backup_report {
	int schema;                        /* the copy's schema version */
	char ledger_id[LEDGER_ID_LEN + 1]; /* the copy's (the ledger's) id */
	int64_t bytes;                     /* the file's size */
	double seconds;                    /* the copy alone */
	double check_seconds;              /* its check */
	size_t ntables;
	const char *tables[BACKUP_TABLES_MAX];
	int64_t rows[BACKUP_TABLES_MAX];      /* the ledger's, at the copy's instant */
	int64_t copy_rows[BACKUP_TABLES_MAX]; /* the copy's */
};

/*
 * Copies the ledger into the new file dest (which must not exist; it is
 * written under a temporary name beside it and linked into place only
 * once checked) with method, and checks the copy. Returns LD_OK with *r
 * filled, LD_ERR_INVALID when the copy fails its check (it is removed),
 * LD_ERR_IO (dest exists, cannot be written), or a database error; the
 * message is on the ledger.
 */
enum ld_err backup_take(struct ledger *l, const char *dest, enum db_backup_method method,
			struct backup_report *r);

/* What a restore did. */
struct restore_report {
	int from_schema, to_schema;          /* the backup's, and after migrating */
	char backup_id[LEDGER_ID_LEN + 1];   /* the id the backup had ("" before 011) */
	char replaced_id[LEDGER_ID_LEN + 1]; /* the id of the ledger replaced ("": none) */
	char ledger_id[LEDGER_ID_LEN + 1];   /* the restored ledger's new id */
	char kept[4200];                     /* where the replaced database went ("": none) */
	int64_t pending, dead; /* events waiting for the dispatcher, for an operator */
	int64_t last_draw;     /* the restored ledger's last draw id */
};

/*
 * Restores the backup file backup into the SQLite database at path, which
 * no process may have open (the service and the dispatcher stopped):
 * copies it beside path, checks it (integrity), migrates it to this
 * program's schema, gives it a new ledger id, makes its undelivered
 * events due, then moves the database at path (if any) to
 * "path.before-restore-<UTC time>" and the copy into its place. As root,
 * the restored file gets the owner of the file it replaces (or of its
 * directory). opt: the config's options (busy timeout, synchronous).
 * Returns LD_OK with *r filled, or an error with its message in err
 * (LD_ERR_BUSY: the database is in use).
 */
enum ld_err restore_put(const char *backup, const char *path, const struct ledger_options *opt,
			int64_t now_ms, struct restore_report *r, char *err, size_t errlen);

#endif
