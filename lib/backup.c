/*
 * backup.c - an online backup checked against the ledger, and a restore
 * that renews the ledger id (see backup.h). The copying itself is the
 * engine's (db_backup in db_sqlite.c); here are the files around it.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup.h"

/* Every table of the schema, counted in the ledger and in the copy. */
static const char *const tables[] = {
	"promotions", "promotion_history", "ledger_meta", "balances", "grants", "invite_codes",
	"invites",    "claim_refusals",    "draws",       "stock",    "outbox",
};
#define NTABLES (sizeof tables / sizeof tables[0])

static double secs_since(int64_t t0_us)
{
	return (double)(ld_mono_us() - t0_us) / 1e6;
}

/* Syncs the directory that holds path, so that a rename in it lasts. */
static int sync_dir(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = -1;

	free(copy);
	if (fd >= 0) {
		rc = fsync(fd);
		close(fd);
	}
	return rc;
}

/* The rows of every table, through the statement layer of another
 * connection (the copy's). */
static enum ld_err count_copy(struct ledger *copy, struct backup_report *r)
{
	static const char *const sql[NTABLES] = {
		"SELECT count(*) FROM promotions",  "SELECT count(*) FROM promotion_history",
		"SELECT count(*) FROM ledger_meta", "SELECT count(*) FROM balances",
		"SELECT count(*) FROM grants",      "SELECT count(*) FROM invite_codes",
		"SELECT count(*) FROM invites",     "SELECT count(*) FROM claim_refusals",
		"SELECT count(*) FROM draws",       "SELECT count(*) FROM stock",
		"SELECT count(*) FROM outbox",
	};
	enum ld_err e = LD_OK;

	for (size_t i = 0; i < NTABLES && e == LD_OK; i++)
		e = db_int(ledger_db(copy), sql[i], "cannot count the copy's rows",
			   &r->copy_rows[i], NULL, "");
	return e;
}

/* Opens the copy at tmp read-only and checks it against r's counts;
 * LD_ERR_INVALID with the finding in l's message when it fails. */
static enum ld_err check_copy(struct ledger *l, const char *tmp, enum db_backup_method method,
			      int schema, struct backup_report *r)
{
	struct ledger_options lo = { .readonly = 1 };
	struct ledger *copy;
	const char *id;
	char err[512];
	enum ld_err e;

	if ((e = ledger_open(tmp, &lo, &copy, err, sizeof err)) != LD_OK)
		return db_error(ledger_db(l), e, "%s", err);
	if ((e = db_integrity(ledger_db(copy))) != LD_OK ||
	    (e = db_schema_version(ledger_db(copy), &r->schema)) != LD_OK ||
	    (e = ledger_id(copy, &id)) != LD_OK || (e = count_copy(copy, r)) != LD_OK) {
		db_error(ledger_db(l), e == LD_ERR_NOTFOUND ? LD_ERR_INVALID : e, "the copy: %s",
			 ledger_errmsg(copy));
		ledger_free(copy);
		return e == LD_ERR_NOTFOUND ? LD_ERR_INVALID : e;
	}
	snprintf(r->ledger_id, sizeof r->ledger_id, "%s", id);
	ledger_free(copy);
	if (r->schema != schema)
		return db_error(ledger_db(l), LD_ERR_INVALID,
				"the copy has schema version %d,"
				" the ledger %d",
				r->schema, schema);
	for (size_t i = 0; i < NTABLES; i++) {
		/* VACUUM INTO copies a later instant than the counts: at least */
		int bad = method == DB_BACKUP_VACUUM ? r->copy_rows[i] < r->rows[i]
						     : r->copy_rows[i] != r->rows[i];
		if (bad)
			return db_error(ledger_db(l), LD_ERR_INVALID,
					"the copy has %lld rows of %s,"
					" the ledger had %lld",
					(long long)r->copy_rows[i], tables[i],
					(long long)r->rows[i]);
	}
	return LD_OK;
}

enum ld_err backup_take(struct ledger *l, const char *dest, enum db_backup_method method,
			struct backup_report *r)
{
	struct db *db = ledger_db(l);
	char tmp[4200];
	struct stat st;
	int64_t t0;
	enum ld_err e;
	int schema;

	memset(r, 0, sizeof *r);
	r->ntables = NTABLES;
	for (size_t i = 0; i < NTABLES; i++)
		r->tables[i] = tables[i];
	if (lstat(dest, &st) == 0)
		return db_error(db, LD_ERR_IO, "'%s' exists: a backup never overwrites a file",
				dest);
	if (ld_fmt(tmp, sizeof tmp, "%s.tmp-%ld", dest, (long)getpid()) != 0)
		return db_error(db, LD_ERR_IO, "the path '%s' is too long", dest);
	unlink(tmp);
	if ((e = db_schema_version(db, &schema)) != LD_OK)
		return e;
	t0 = ld_mono_us();
	if ((e = db_backup(db, tmp, method, tables, NTABLES, r->rows)) != LD_OK) {
		unlink(tmp);
		return e;
	}
	r->seconds = secs_since(t0);
	t0 = ld_mono_us();
	if ((e = check_copy(l, tmp, method, schema, r)) != LD_OK) {
		unlink(tmp);
		return e;
	}
	r->check_seconds = secs_since(t0);
	if (stat(tmp, &st) == 0)
		r->bytes = (int64_t)st.st_size;
	/* link, not rename: never over a file that appeared meanwhile */
	if (link(tmp, dest) != 0) {
		int err = errno;
		unlink(tmp);
		return db_error(db, LD_ERR_IO, "cannot put the backup at '%s': %s", dest,
				strerror(err));
	}
	unlink(tmp);
	if (sync_dir(dest) != 0)
		return db_error(db, LD_ERR_IO, "cannot sync the directory of '%s': %s", dest,
				strerror(errno));
	return LD_OK;
}

/* ---- restore ---- */

/* Copies the file from into the new file to, synced. */
static int copy_file(const char *from, const char *to, char *err, size_t errlen)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	char buf[1 << 16];
	ssize_t n = 0;

	if (in < 0) {
		snprintf(err, errlen, "cannot open the backup '%s': %s", from, strerror(errno));
		return -1;
	}
	if ((out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) < 0) {
		snprintf(err, errlen, "cannot create '%s': %s", to, strerror(errno));
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof buf)) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0) {
				n = -1;
				break;
			}
			off += w;
		}
		if (n < 0)
			break;
	}
	if (n == 0 && fsync(out) == 0)
		rc = 0;
	else
		snprintf(err, errlen, "cannot copy the backup to '%s': %s", to, strerror(errno));
	close(in);
	if (close(out) != 0 && rc == 0) {
		snprintf(err, errlen, "cannot write '%s': %s", to, strerror(errno));
		rc = -1;
	}
	return rc;
}

/*
 * Makes sure no process has the database at path open, and reads its
 * ledger id into id ("" when it has none): the connection takes the file
 * alone and, closing, folds its WAL into it. LD_ERR_BUSY when in use.
 */
static enum ld_err alone(const char *path, const struct ledger_options *opt, char *id, char *err,
			 size_t errlen)
{
	struct ledger_options lo = *opt;
	struct ledger *l;
	const char *lid;
	enum ld_err e;

	lo.alone = 1;
	lo.create = 0;
	id[0] = '\0';
	if ((e = ledger_open(path, &lo, &l, err, errlen)) != LD_OK)
		return e;
	if (ledger_id(l, &lid) == LD_OK)
		snprintf(id, LEDGER_ID_LEN + 1, "%s", lid);
	ledger_free(l);
	return LD_OK;
}

/* The copy at tmp made into the restored ledger: checked, migrated, a
 * new id, its undelivered events due. */
static enum ld_err prepare(const char *backup, const char *tmp, const struct ledger_options *opt,
			   int64_t now_ms, struct restore_report *r, char *err, size_t errlen)
{
	struct ledger_options lo = *opt;
	struct ledger *l;
	const char *lid;
	char because[4200];
	enum ld_err e;

	lo.create = 0;
	lo.alone = 1;
	if ((e = ledger_open(tmp, &lo, &l, err, errlen)) != LD_OK)
		return e;
	if (ledger_id(l, &lid) == LD_OK)
		snprintf(r->backup_id, sizeof r->backup_id, "%s", lid);
	snprintf(because, sizeof because, "restored from '%s'", backup);
	if ((e = db_integrity(ledger_db(l))) != LD_OK ||
	    (e = ledger_migrate(l, &r->from_schema, &r->to_schema)) != LD_OK ||
	    (e = ledger_renew_id(l, now_ms, because, NULL, r->ledger_id)) != LD_OK ||
	    /* a lease of the backup's time is nobody's now */
	    (e = db_exec(ledger_db(l),
			 "UPDATE outbox SET lease_until = 0"
			 " WHERE state = 'pending' AND lease_until <> 0",
			 "cannot free the events' leases", "")) != LD_OK ||
	    (e = db_int(ledger_db(l), "SELECT count(*) FROM outbox WHERE state = 'pending'",
			"cannot count events", &r->pending, NULL, "")) != LD_OK ||
	    (e = db_int(ledger_db(l), "SELECT count(*) FROM outbox WHERE state = 'dead'",
			"cannot count events", &r->dead, NULL, "")) != LD_OK ||
	    (e = db_int(ledger_db(l), "SELECT coalesce(max(id), 0) FROM draws", "cannot read draws",
			&r->last_draw, NULL, "")) != LD_OK)
		snprintf(err, errlen, "the backup '%s': %s", backup, ledger_errmsg(l));
	ledger_free(l);
	return e;
}

/* As root: gives the restored file at tmp the owner of ref (the file it
 * replaces, or its directory). */
static int same_owner(const char *tmp, const char *ref, char *err, size_t errlen)
{
	struct stat st;

	if (geteuid() != 0 || stat(ref, &st) != 0)
		return 0;
	if (chown(tmp, st.st_uid, st.st_gid) != 0) {
		snprintf(err, errlen, "cannot give '%s' to the owner of '%s': %s", tmp, ref,
			 strerror(errno));
		return -1;
	}
	return 0;
}

/* Moves path and its -wal and -shm (if any) to kept. */
static int move_aside(const char *path, const char *kept, char *err, size_t errlen)
{
	static const char *const sfx[] = { "-wal", "-shm" };

	if (rename(path, kept) != 0) {
		snprintf(err, errlen, "cannot move '%s' aside: %s", path, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < 2; i++) {
		char from[4200], to[4300];
		snprintf(from, sizeof from, "%s%s", path, sfx[i]);
		snprintf(to, sizeof to, "%s%s", kept, sfx[i]);
		if (access(from, F_OK) == 0 && rename(from, to) != 0) {
			snprintf(err, errlen, "cannot move '%s' aside: %s", from, strerror(errno));
			return -1;
		}
	}
	return 0;
}

enum ld_err restore_put(const char *backup, const char *path, const struct ledger_options *opt,
			int64_t now_ms, struct restore_report *r, char *err, size_t errlen)
{
	char tmp[4200], stamp[32];
	time_t secs = (time_t)(now_ms / 1000);
	struct tm tm;
	struct stat st = { 0 };
	enum ld_err e;
	int exists;

	memset(r, 0, sizeof *r);
	if (stat(backup, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "cannot read the backup '%s': %s", backup,
			 S_ISREG(st.st_mode) ? strerror(errno) : "not a file");
		return LD_ERR_IO;
	}
	if (ld_fmt(tmp, sizeof tmp, "%s.restore-tmp", path) != 0) {
		snprintf(err, errlen, "the path '%s' is too long", path);
		return LD_ERR_IO;
	}
	gmtime_r(&secs, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	if (ld_fmt(r->kept, sizeof r->kept, "%s.before-restore-%s", path, stamp) != 0) {
		snprintf(err, errlen, "the path '%s' is too long", path);
		return LD_ERR_IO;
	}
	/* Before any work: nobody has the database open. */
	exists = access(path, F_OK) == 0;
	if (exists && (e = alone(path, opt, r->replaced_id, err, errlen)) != LD_OK)
		return e;
	unlink(tmp); /* a restore that stopped half-way */
	if (copy_file(backup, tmp, err, errlen) != 0) {
		unlink(tmp);
		return LD_ERR_IO;
	}
	if ((e = prepare(backup, tmp, opt, now_ms, r, err, errlen)) != LD_OK) {
		unlink(tmp);
		return e;
	}
	char *dir = xstrdup(path);
	int owned = same_owner(tmp, exists ? path : dirname(dir), err, errlen);
	free(dir);
	if (owned != 0) {
		unlink(tmp);
		return LD_ERR_IO;
	}
	/* Again, right before the swap: still nobody. */
	if (exists) {
		char again[LEDGER_ID_LEN + 1];
		if ((e = alone(path, opt, again, err, errlen)) != LD_OK) {
			unlink(tmp);
			return e;
		}
		if (move_aside(path, r->kept, err, errlen) != 0) {
			unlink(tmp);
			return LD_ERR_IO;
		}
	} else {
		r->kept[0] = '\0';
	}
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot put the restored ledger at '%s': %s", path,
			 strerror(errno));
		return LD_ERR_IO;
	}
	if (sync_dir(path) != 0) {
		snprintf(err, errlen, "cannot sync the directory of '%s': %s", path,
			 strerror(errno));
		return LD_ERR_IO;
	}
	return LD_OK;
}
