/*
 * token.h - user tokens "uid.expiry.signature".
 *
 * uid is 1..64 characters of [A-Za-z0-9_-]; expiry is Unix seconds in
 * decimal; signature is the unpadded base64url HMAC-SHA256 (libsodium) of
 * "uid.expiry" under the server secret, compared in constant time.
 */
#ifndef LD_TOKEN_H
#define LD_TOKEN_H

#include <sys/types.h>

#include <sodium.h>

#include "ld.h"

#define TOKEN_UID_MAX 64
#define TOKEN_MAX 160 /* longest valid token, plus room */

struct token_key {
	unsigned char *bytes;
	size_t len;
	/* HMAC-SHA256 with the key already absorbed: every signature starts
	 * from a copy (the two key blocks are hashed once, not per token) */
	crypto_auth_hmacsha256_state keyed;
};

enum token_status {
	TOKEN_OK = 0,
	TOKEN_MALFORMED,     /* wrong shape, bad uid, bad number */
	TOKEN_BAD_SIGNATURE, /* signature does not match */
	TOKEN_EXPIRED,       /* expiry <= now */
};

/* Reads the secret file (at least 32 bytes, trailing newline ignored). */
enum ld_err token_key_load(const char *path, struct token_key *key,
			   char *err, size_t errlen);
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
enum ld_err token_secret_create(const char *path, int replace, uid_t uid, gid_t gid,
				char *err, size_t errlen);

/* The key from len bytes (copied; no length check: token_key_load's).
 * sodium_init() must have run. token_key_release frees it. */
enum ld_err token_key_set(struct token_key *key, const void *bytes, size_t len);
void token_key_release(struct token_key *key);

/* Writes a token for uid expiring at expiry_s into out (TOKEN_MAX bytes).
 * Returns LD_ERR_INVALID when uid is not a valid uid. */
enum ld_err token_issue(const struct token_key *key, const char *uid,
			int64_t expiry_s, char out[TOKEN_MAX]);

/* Checks tok (len bytes, not necessarily NUL-terminated) at time now_s;
 * on TOKEN_OK copies the uid into uid. */
enum token_status token_verify(const struct token_key *key, const char *tok,
			       size_t len, int64_t now_s,
			       char uid[TOKEN_UID_MAX + 1]);

const char *token_strstatus(enum token_status st);

#endif
