/*
 * ledger.h - the ledger: its connection (a struct db, db.h), schema
 * migrations, promotions and balances, and the SQLite-only operations
 * the programs drive (checkpoints, syncs, the writer's batches).
 *
 * One struct ledger per process (open it after fork, never before). It
 * owns its struct db, and through it every prepared statement;
 * ledger_free() finalizes them all. The modules of lib/ reach the
 * statements through ledger_db(); only lib/ does.
 *
 * Write transactions always take the write lock at once (db_begin), so
 * two writers queue on the busy timeout instead of failing on a stale
 * read snapshot. A lock held past the busy timeout is LD_ERR_BUSY, which
 * the HTTP layer answers 503 with Retry-After.
 *
 * Errors: a function that fails returns enum ld_err and keeps its
 * message on the ledger (ledger_errmsg), with SQLite's own words.
 */
#ifndef LD_LEDGER_H
#define LD_LEDGER_H

#include "db.h"
#include "ld.h"
#include "promo.h"

struct ledger;

struct ledger_options {
	int busy_timeout_ms;   /* 0 = 2000 */
	int synchronous_full;  /* PRAGMA synchronous=FULL instead of NORMAL */
	int create;            /* create the file if missing (luckydicectl init) */
	int defer_checkpoints; /* leave WAL checkpoints to ledger_checkpoint()
				* in another process (the FastCGI workers do) */
	int own_checkpoints;   /* no automatic checkpoints at all: the caller
				* watches ledger_wal_frames() and checkpoints
				* between its transactions (the writer does) */
	int lazy;              /* PostgreSQL: open even when the server is
				* not there yet (the first call connects);
				* the FastCGI children, which answer 503
				* meanwhile */
	int bulk;              /* a batch program with a throwaway database to
				* itself (bench/replay): no syncs, an exclusive
				* lock, a large page cache */
	int readonly;          /* SQLite: open read-only and change nothing,
				* not even the journal mode (a backup's check) */
	int alone;             /* SQLite: take the file for this connection
				* alone (an exclusive lock, kept until closed);
				* LD_ERR_BUSY at once when another process has it
				* open (luckydicectl restore) */
};

/* A migration compiled in from sql/NNN-name.sql (lib/schema.c). */
struct ld_migration {
	int version;
	const char *name;
	const char *sql;
};
extern const struct ld_migration ld_migrations[], ld_pg_migrations[];
extern const int ld_nmigrations, ld_pg_nmigrations;
/* PostgreSQL's rule functions (sql/pg/rules.sql), made again by every
 * ledger_migrate after the migrations. */
extern const char ld_pg_functions[];

struct ld_balance {
	int64_t granted, spent, version;
};
#define BALANCE(b) ((b).granted - (b).spent)

/*
 * Opens the database at path in WAL mode with the options' pragmas. On
 * error returns LD_ERR_DB or LD_ERR_IO with a message in err (there is
 * no handle yet to keep it).
 */
enum ld_err ledger_open(const char *path, const struct ledger_options *opt, struct ledger **out,
			char *err, size_t errlen);
void ledger_free(struct ledger *l);

/* The last error's message ("cannot ...: <sqlite message>"). */
const char *ledger_errmsg(const struct ledger *l);

/* The connection, for the modules of lib/ (db.h). */
struct db *ledger_db(struct ledger *l);

/* Applies the migrations newer than the database's user_version, each in
 * its own transaction. *from and *to (may be NULL) get the versions. */
enum ld_err ledger_migrate(struct ledger *l, int *from, int *to);

/* LD_OK when the schema is at the version this program was built with,
 * else LD_ERR_INVALID with "run 'luckydicectl init'" in the message. */
enum ld_err ledger_check_schema(struct ledger *l);

/*
 * One WAL checkpoint: syncs the WAL, copies what no reader still needs
 * from it into the database and, only if that reached the WAL's end,
 * syncs the database (see ledger_sync). The FastCGI supervisor
 * runs passive ones in a separate process many times a second, so that
 * copying and syncing stay off the request path (workers open with
 * defer_checkpoints).
 *
 * The WAL starts over from its beginning only when a write transaction
 * begins with every frame copied. When the writes pause, a passive
 * checkpoint gets there; under a steady load someone is always writing,
 * so a passive checkpoint alone never does and the WAL grows without end
 * (and once it is past SQLite's own threshold, every commit runs a
 * checkpoint and a sync of its own). Two ways out:
 *
 * - The one writer, between two of its transactions, runs a passive
 *   checkpoint itself (own_checkpoints): it copies the little the
 *   checkpointer has not, nothing is written meanwhile, and its next
 *   transaction starts the WAL over. It waits for no lock, but the copy,
 *   the two syncs and the wait for a CPU after each make a pause of its
 *   own under full load, once per "wal_restart_frames" frames; the less
 *   the checkpointer has left unsynced (ledger_sync), the shorter.
 * - restart = 1 (RESTART) holds new writers back while it copies, syncs
 *   and waits for the readers. It works without a writer process, but on
 *   a busy machine the writers wait for it each time (the checkpointer,
 *   holding the lock, waits for a CPU like everyone).
 *
 * LD_ERR_BUSY: another checkpoint was running, or (RESTART) the readers
 * stayed; not an error, try again later. *frames (may be NULL) gets the
 * WAL's size in frames.
 */
enum ld_err ledger_checkpoint(struct ledger *l, int restart, int *frames);

/*
 * Flushes the database file to disk (SQLite's own sync of the file). A
 * passive checkpoint that copies only part of the WAL does not sync the
 * database: the one that copies the rest does, and then syncs every page
 * copied since the last time. The checkpointer calls this after each of
 * its passes, so that the writer's checkpoint, which starts the WAL over,
 * has only its own few pages left to sync.
 */
enum ld_err ledger_sync(struct ledger *l);

/* With own_checkpoints: the WAL's size in frames after this connection's
 * last commit (0 before the first, or without own_checkpoints). */
int ledger_wal_frames(const struct ledger *l);

/*
 * Group commit (the writer process): ledger_batch_begin opens one
 * transaction; until ledger_batch_end, db_begin/commit/rollback make,
 * release and roll back a savepoint inside it, so each rule call stays
 * all-or-nothing while many share one commit. Some errors (I/O, out of
 * memory, busy) make SQLite roll the whole transaction back: then
 * ledger_batch_intact is 0, db_begin refuses, and nothing done in the
 * batch so far was kept. ledger_batch_end commits (commit = 1) or rolls
 * back; it fails when the transaction is gone or the commit fails.
 *
 * With savepoints = 0 there are none (each costs a copy of every page it
 * touches that the batch had changed already): a rule call that rolls
 * back after it wrote cannot undo alone, so it spoils the batch
 * (ledger_batch_spoiled), whose end then only rolls back; the caller
 * runs the batch again with savepoints. Refusals never roll back a
 * write (a refused claim's record is kept), so only errors spoil.
 */
enum ld_err ledger_batch_begin(struct ledger *l, int savepoints);
int ledger_batch_intact(struct ledger *l);
int ledger_batch_spoiled(struct ledger *l);
enum ld_err ledger_batch_end(struct ledger *l, int commit);

/*
 * The ledger id: 16 hex digits, random, made by migration 011 (so by
 * 'luckydicectl init') and made anew by ledger_renew_id after a restore.
 * Every new event key (outbox.h) and every Redis key (cache.h) carries it,
 * so that a ledger restored from a backup never issues a key that the one
 * it replaced issued after the backup was taken. Read once per process:
 * *id stays valid until ledger_free. LD_ERR_NOTFOUND when the ledger has
 * none (a schema older than 011).
 */
#define LEDGER_ID_LEN 16
enum ld_err ledger_id(struct ledger *l, const char **id);

/*
 * Gives the ledger a new random id in one transaction, and records
 * what it was and why in ledger_meta ("previous_ledger_id",
 * "renewed_at", "renewed_because"). old and now (LEDGER_ID_LEN + 1
 * bytes each, may be NULL) get the ids. Run only while no program has
 * the ledger open: a running one keeps the id it read.
 */
enum ld_err ledger_renew_id(struct ledger *l, int64_t now_ms, const char *because, char *old,
			    char *now);

/* A value of ledger_meta into buf (*found: whether there is one) and
 * the setting of one (insert or replace), in the caller's transaction or
 * on its own. */
enum ld_err ledger_meta_get(struct ledger *l, const char *key, char *buf, size_t len, int *found);
enum ld_err ledger_meta_set(struct ledger *l, const char *key, const char *value);

/*
 * Stores a promotion (insert or update by id; what was granted or won is
 * not touched) and adds a 'load' entry to its history with who loaded it,
 * the file's content as read and a note (the refusals an operator
 * overrode), all in one transaction. ch may be NULL (nobody known, the
 * canonical definition as content). *created (may be NULL) tells whether
 * the promotion is new. A pause is kept across a reload.
 */
struct promo_change {
	const char *actor;   /* the operator ($SUDO_USER or $USER) */
	const char *content; /* the file as read; NULL: the canonical definition */
	const char *note;    /* NULL: none */
};
enum ld_err ledger_promo_store(struct ledger *l, const struct promo *p, int64_t now_ms,
			       const struct promo_change *ch, int *created);

/*
 * Pauses (paused = 1, with ch->note the reason) or resumes (paused = 0)
 * promotion id and adds the change to its history, in one transaction.
 * The workers see it at their next look at the table (within a second).
 * *changed (may be NULL) is 0 when it was so already (then nothing is
 * recorded); LD_ERR_NOTFOUND when there is no such promotion.
 */
enum ld_err ledger_promo_pause(struct ledger *l, const char *id, int paused, int64_t now_ms,
			       const struct promo_change *ch, int *changed);

/*
 * Returns the promotion id as loaded in the database, or NULL when there
 * is none. The ledger owns the result: it stays valid until a later call
 * of ledger_promo() or ledger_promos() re-reads the promotions, which it
 * does when the table has changed, looking at most once per second: after
 * a call at now_ms, calls at the same now_ms never re-read, so their
 * results stay valid together (the writer's rounds rely on it, writer.h).
 */
const struct promo *ledger_promo(struct ledger *l, const char *id, int64_t now_ms);

/* All loaded promotions, sorted by id; *n gets the count. Same lifetime
 * as ledger_promo(). */
const struct promo *const *ledger_promos(struct ledger *l, int64_t now_ms, size_t *n);

/* The user's balance; zeros when the user has none. */
enum ld_err ledger_balance(struct ledger *l, const char *promo, const char *uid,
			   struct ld_balance *b);

/* The same, inside a transaction that will change it from what it reads:
 * on PostgreSQL the row stays locked until the transaction ends, so that
 * two changes at once (two revokes) are checked one after the other.
 * (SQLite's write transaction holds every other writer off already.) */
enum ld_err ledger_balance_for_update(struct ledger *l, const char *promo, const char *uid,
				      struct ld_balance *b);

/* After a db_exec that inserted, upserted or updated uid's balances row:
 * *changed tells whether it changed the row, and then bal gets the row
 * as it is now. (Not RETURNING: SQLite gathers a RETURNING statement's
 * rows in a temporary b-tree it opens and closes on every run, which
 * costs more than reading the row again.) */
enum ld_err ledger_balance_changed(struct ledger *l, const char *promo, const char *uid,
				   struct ld_balance *bal, int *changed);

#endif
