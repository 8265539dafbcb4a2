/*
 * purge.h - personal data past its retention: the client identifiers
 * (an address or a device id) kept with every credited invite
 * (invites.client) and refused claim (claim_refusals.client) are
 * replaced, once older than the retention, by a keyed hash of
 * themselves: "~" and 32 hex digits. The rows stay, so every count a
 * report makes stays; one client's rows still group together (the same
 * client, the same key: the same pseudonym); but without the key nobody
 * can tell which address or device it was, nor test a guess.
 *
 * The key is derived from the token secret file: it is not in the
 * database, so a copy of the database (a backup) cannot undo it. A new
 * token secret makes new pseudonyms for the clients purged after it.
 */
#ifndef LD_PURGE_H
#define LD_PURGE_H

#include "ledger.h"

#define PURGE_KEY_LEN 32
#define PURGE_MARK    '~' /* first character of a pseudonym; of no address or device id */

/* The purge key from the bytes of a secret (the token secret). */
void purge_key(const unsigned char *secret, size_t len, unsigned char key[PURGE_KEY_LEN]);

/* The pseudonym of client under key into out ("~" + 32 hex digits). */
#define PURGE_PSEUDONYM_LEN 33
void purge_pseudonym(const unsigned char key[PURGE_KEY_LEN], const char *client,
		     char out[PURGE_PSEUDONYM_LEN + 1]);

struct purge_report {
	int64_t invites;  /* rows of invites whose client was replaced */
	int64_t refusals; /* rows of claim_refusals */
	int64_t clients;  /* distinct identifiers replaced */
};

/*
 * Replaces every client identifier of a row created before cutoff_ms
 * (and not a pseudonym yet) with its pseudonym, a few hundred clients per
 * transaction, so that the service writes on meanwhile. Running it again
 * finds nothing more to do. Returns LD_OK with *r, or a database error
 * (what was done before it stays done).
 */
enum ld_err purge_clients(struct ledger *l, const unsigned char key[PURGE_KEY_LEN],
			  int64_t cutoff_ms, struct purge_report *r);

#endif
