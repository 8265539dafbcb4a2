/*
 * token.h - user tokens "uid.expiry.kid.signature".
 *
 * uid is 1..64 characters of [A-Za-z0-9_-]; expiry is Unix seconds in
 * decimal; kid names the key that signed it (8 base64url characters
 * derived from the key: token_key.id); signature is the unpadded
 * base64url HMAC-SHA256 (libsodium) of everything before it,
 * "uid.expiry.kid", under that key, compared in constant time.
 *
 * Two keys may be accepted at once, so that a secret can be replaced
 * without signing everyone out: the current one, which signs, and the
 * previous one (token_keys_load). Tokens of the older shape
 * "uid.expiry.signature" (no kid, the HMAC of "uid.expiry") are still
 * accepted, under either key, until they expire: host apps that mint them
 * keep working while they move to the shape above.
 */
#ifndef LD_TOKEN_H
#define LD_TOKEN_H

#include <sys/types.h>

#include <sodium.h>

#include "config.h"
#include "ld.h"

#define TOKEN_UID_MAX 64
#define TOKEN_KID_LEN 8
#define TOKEN_MAX     160 /* longest valid token, plus room */

struct token_key {
	unsigned char *bytes;
	size_t len;
	/* HMAC-SHA256 with the key already absorbed: every signature starts
	 * from a copy (the two key blocks are hashed once, not per token) */
	crypto_auth_hmacsha256_state keyed;
	/* The key's id in tokens: the first 6 bytes of HMAC-SHA256(key,
	 * "luckydice token key id"), base64url. Tells which key signed a
	 * token without saying anything about the key. */
	char id[TOKEN_KID_LEN + 1];
	/* The key before the last rotation, whose tokens still verify; owned
	 * (token_key_release frees it), NULL when there is none. */
	struct token_key *previous;
};

enum token_status {
	TOKEN_OK = 0,
	TOKEN_MALFORMED,     /* wrong shape, bad uid, bad number */
	TOKEN_BAD_SIGNATURE, /* signature does not match */
	TOKEN_EXPIRED,       /* expiry <= now */
	TOKEN_UNKNOWN_KEY,   /* signed by a key that is not accepted (any more) */
};

/* Reads the secret file (at least 32 bytes, trailing newline ignored). */
enum ld_err token_key_load(const char *path, struct token_key *key, char *err, size_t errlen);
/*
 * The keys user tokens are checked with: cfg's "token_secret_file" (the
 * current key, which signs) and, when cfg names one,
 * "token_previous_secret_file" in key->previous. A previous file that
 * holds the current secret is an error (LD_ERR_INVALID): a rotation
 * writes a new secret to token_secret_file.
 */
enum ld_err token_keys_load(const struct ld_config *cfg, struct token_key *key, char *err,
			    size_t errlen);
/*
 * Makes a new secret file at path: TOKEN_SECRET_BYTES random bytes
 * (libsodium's randombytes_buf) in base64 and a newline, mode 0640, owned
 * by uid:gid ((uid_t)-1 and (gid_t)-1 keep the creator's). It is written
 * to a temporary file beside path and moved into place, so path never
 * holds half a secret: with replace set over an existing file, otherwise
 * only if path does not exist (LD_ERR_INVALID "... exists" when it does).
 * Other failures are LD_ERR_IO, with a message in err.
 */
#define TOKEN_SECRET_BYTES 32
enum ld_err token_secret_create(const char *path, int replace, uid_t uid, gid_t gid, char *err,
				size_t errlen);

/* The key from len bytes (copied; no length check: token_key_load's),
 * with no previous key. sodium_init() must have run. token_key_release
 * frees it. */
enum ld_err token_key_set(struct token_key *key, const void *bytes, size_t len);
void token_key_release(struct token_key *key);

/* Writes a token for uid expiring at expiry_s into out (TOKEN_MAX bytes),
 * signed with key itself (never its previous key). Returns LD_ERR_INVALID
 * when uid is not a valid uid. */
enum ld_err token_issue(const struct token_key *key, const char *uid, int64_t expiry_s,
			char out[TOKEN_MAX]);

/* Checks tok (len bytes, not necessarily NUL-terminated) at time now_s
 * against key and key->previous; on TOKEN_OK copies the uid into uid. */
enum token_status token_verify(const struct token_key *key, const char *tok, size_t len,
			       int64_t now_s, char uid[TOKEN_UID_MAX + 1]);

const char *token_strstatus(enum token_status st);

/* The unpadded base64url HMAC-SHA256 of msg (n bytes) under key itself
 * (never its previous key) into sig: TOKEN_SIG_LEN characters and a NUL.
 * For other signed strings under a key of this kind (operator tokens,
 * operator.h). */
#define TOKEN_SIG_LEN 43
void token_hmac(const struct token_key *key, const char *msg, size_t n,
		char sig[TOKEN_SIG_LEN + 1]);

#endif
