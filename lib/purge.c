/*
 * purge.c - client identifiers past the retention made pseudonyms
 * (see purge.h).
 */
#include <string.h>

#include <sodium.h>

#include "buf.h"
#include "purge.h"

#define PURGE_BATCH 200 /* clients per transaction */

void purge_key(const unsigned char *secret, size_t len, unsigned char key[PURGE_KEY_LEN])
{
	static const char ctx[] = "luckydice purge of client identifiers v1";

	/* BLAKE2b keyed with the secret (at most 64 bytes of it) */
	crypto_generichash(key, PURGE_KEY_LEN, (const unsigned char *)ctx, sizeof ctx - 1, secret,
			   len > crypto_generichash_KEYBYTES_MAX ? crypto_generichash_KEYBYTES_MAX
								 : len);
}

void purge_pseudonym(const unsigned char key[PURGE_KEY_LEN], const char *client,
		     char out[PURGE_PSEUDONYM_LEN + 1])
{
	unsigned char h[16];

	crypto_generichash(h, sizeof h, (const unsigned char *)client, strlen(client), key,
			   PURGE_KEY_LEN);
	out[0] = PURGE_MARK;
	sodium_bin2hex(out + 1, PURGE_PSEUDONYM_LEN, h, sizeof h);
}

/* Rows before ?1 whose client is not a pseudonym yet: the same test in
 * both queries and both updates. */
#define OLD_CLEAR " created_at < ?1 AND client IS NOT NULL AND substr(client, 1, 1) <> '~'"

static const char SQL_CLIENTS[] = "SELECT client FROM invites WHERE" OLD_CLEAR
				  " UNION SELECT client FROM claim_refusals WHERE" OLD_CLEAR
				  " LIMIT ?2";
static const char SQL_SET_INVITES[] =
	"UPDATE invites SET client = ?3 WHERE client = ?2 AND" OLD_CLEAR;
static const char SQL_SET_REFUSALS[] =
	"UPDATE claim_refusals SET client = ?3 WHERE client = ?2 AND" OLD_CLEAR;

/* The next batch of clients to replace, as an array of strings. */
static enum ld_err next_batch(struct db *db, int64_t cutoff_ms, struct buf *names, size_t *n)
{
	struct db_stmt *st;
	enum ld_err e;

	*n = 0;
	buf_reset(names);
	if ((e = db_query(db, &st, SQL_CLIENTS, "li", cutoff_ms, PURGE_BATCH)) != LD_OK)
		return e;
	while (db_step(st) > 0) {
		const char *c = db_col_text(st, 0);
		char *slot = buf_grow(names, 65);
		if (!slot)
			break;
		snprintf(slot, 65, "%s", c ? c : "");
		(*n)++;
	}
	return db_end(db, st, "cannot read client identifiers");
}

enum ld_err purge_clients(struct ledger *l, const unsigned char key[PURGE_KEY_LEN],
			  int64_t cutoff_ms, struct purge_report *r)
{
	struct db *db = ledger_db(l);
	struct buf names;
	enum ld_err e;
	size_t n;

	memset(r, 0, sizeof *r);
	buf_init(&names, PURGE_BATCH * 65);
	for (;;) {
		if ((e = next_batch(db, cutoff_ms, &names, &n)) != LD_OK || n == 0)
			break;
		if ((e = db_begin(db)) != LD_OK)
			break;
		for (size_t i = 0; i < n && e == LD_OK; i++) {
			const char *client = (const char *)names.p + i * 65;
			char alias[PURGE_PSEUDONYM_LEN + 1];
			purge_pseudonym(key, client, alias);
			if ((e = db_exec(db, SQL_SET_INVITES, "cannot replace a client identifier",
					 "ltt", cutoff_ms, client, alias)) != LD_OK)
				break;
			r->invites += db_changes(db);
			if ((e = db_exec(db, SQL_SET_REFUSALS, "cannot replace a client identifier",
					 "ltt", cutoff_ms, client, alias)) != LD_OK)
				break;
			r->refusals += db_changes(db);
			r->clients++;
		}
		if (e != LD_OK) {
			db_rollback(db);
			break;
		}
		if ((e = db_commit(db)) != LD_OK)
			break;
	}
	buf_free(&names);
	return e;
}
