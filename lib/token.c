/*
 * token.c - user tokens "uid.expiry.kid.signature", signed with
 * HMAC-SHA256 (libsodium) under the current server secret and checked in
 * constant time against the current and the previous one.
 *
 * Parsing is strict so that one token has exactly one spelling: a uid of
 * 1..64 [A-Za-z0-9_-], an expiry of 1..19 decimal digits without sign or
 * leading zeros, a kid of 8 base64url characters (absent in the older
 * shape "uid.expiry.signature") and a signature of exactly 43 base64url
 * characters. The signature covers everything before its dot.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "token.h"

#define TOKEN_KEY_MIN     32
#define TOKEN_KEY_MAX     4096
#define SIG_LEN           TOKEN_SIG_LEN /* base64url of 32 bytes, unpadded */
#define EXPIRY_DIGITS_MAX 19
#define KID_CONTEXT       "luckydice token key id"

/*
 * A new secret file (see token.h): mkstemp beside path, mode and owner set
 * before a byte is written, fsync, then rename (replace) or link (keep an
 * existing file) into place.
 */
enum ld_err token_secret_create(const char *path, int replace, uid_t uid, gid_t gid, char *err,
				size_t errlen)
{
	unsigned char raw[TOKEN_SECRET_BYTES];
	char text[sodium_base64_ENCODED_LEN(TOKEN_SECRET_BYTES, sodium_base64_VARIANT_ORIGINAL) + 1];
	char tmp[4096];
	const char *what;
	size_t len;
	int fd, e;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "cannot initialise libsodium");
		return LD_ERR_IO;
	}
	if (ld_fmt(tmp, sizeof(tmp), "%s.new-XXXXXX", path) != 0) {
		snprintf(err, errlen, "secret path '%s' is too long", path);
		return LD_ERR_IO;
	}
	if ((fd = mkstemp(tmp)) < 0) {
		snprintf(err, errlen, "cannot create a file beside '%s': %s", path,
			 strerror(errno));
		return LD_ERR_IO;
	}
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(text, sizeof(text) - 1, raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(raw, sizeof(raw));
	len = strlen(text);
	text[len++] = '\n';
	what = "write";
	errno = EIO; /* what a short write leaves */
	if (fchmod(fd, 0640) != 0)
		what = "set the mode of";
	else if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) != 0)
		what = "set the owner of";
	else if (write(fd, text, len) == (ssize_t)len && fsync(fd) == 0)
		what = NULL;
	e = errno;
	sodium_memzero(text, sizeof(text));
	if (close(fd) != 0 && what == NULL) {
		what = "write";
		e = errno;
	}
	if (what == NULL && (replace ? rename(tmp, path) : link(tmp, path)) != 0) {
		what = replace ? "replace" : "create";
		e = errno;
	}
	/* a rename took tmp away; after a link or a failure it is still there */
	if (!replace || what != NULL)
		unlink(tmp);
	if (what == NULL)
		return LD_OK;
	if (!replace && e == EEXIST) {
		snprintf(err, errlen, "secret file '%s' exists", path);
		return LD_ERR_INVALID;
	}
	snprintf(err, errlen, "cannot %s secret file '%s': %s", what, path, strerror(e));
	return LD_ERR_IO;
}

/*
 * Reads the secret at path. One trailing "\n" or "\r\n" is dropped (files
 * written by echo or an editor end with one); what remains must be at
 * least 32 bytes. The bytes are used as they are, whatever they are.
 */
enum ld_err token_key_load(const char *path, struct token_key *key, char *err, size_t errlen)
{
	enum ld_err rc;
	char *buf;
	size_t len;

	key->bytes = NULL;
	key->len = 0;
	key->id[0] = '\0';
	key->previous = NULL;
	if (sodium_init() < 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "cannot initialise libsodium");
		return LD_ERR_IO;
	}
	rc = ld_read_file(path, TOKEN_KEY_MAX, &buf, &len, err, errlen);
	if (rc == LD_ERR_INVALID) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen,
				 "token secret '%s' is larger than "
				 "%d bytes",
				 path, TOKEN_KEY_MAX);
		return rc;
	}
	if (rc != LD_OK)
		return rc;
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	if (len < TOKEN_KEY_MIN) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen,
				 "token secret '%s' is too short: "
				 "%zu bytes, need at least %d",
				 path, len, TOKEN_KEY_MIN);
		sodium_memzero(buf, len);
		free(buf);
		return LD_ERR_INVALID;
	}
	rc = token_key_set(key, buf, len);
	sodium_memzero(buf, len);
	free(buf);
	if (rc != LD_OK && err != NULL && errlen > 0)
		snprintf(err, errlen, "out of memory");
	return rc;
}

enum ld_err token_key_set(struct token_key *key, const void *bytes, size_t len)
{
	crypto_auth_hmacsha256_state st;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char id[12];

	key->previous = NULL;
	key->id[0] = '\0';
	key->bytes = malloc(len > 0 ? len : 1);
	key->len = 0;
	if (key->bytes == NULL)
		return LD_ERR_NOMEM;
	memcpy(key->bytes, bytes, len);
	key->len = len;
	crypto_auth_hmacsha256_init(&key->keyed, key->bytes, key->len);
	st = key->keyed;
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)KID_CONTEXT,
				      sizeof KID_CONTEXT - 1);
	crypto_auth_hmacsha256_final(&st, mac);
	/* 6 bytes are 8 base64 characters exactly */
	sodium_bin2base64(id, sizeof id, mac, 6, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	memcpy(key->id, id, TOKEN_KID_LEN);
	key->id[TOKEN_KID_LEN] = '\0';
	sodium_memzero(&st, sizeof st);
	return LD_OK;
}

enum ld_err token_keys_load(const struct ld_config *cfg, struct token_key *key, char *err,
			    size_t errlen)
{
	struct token_key *prev;
	enum ld_err rc;

	if ((rc = token_key_load(cfg->token_secret_file, key, err, errlen)) != LD_OK)
		return rc;
	if (cfg->token_previous_secret_file == NULL)
		return LD_OK;
	if ((prev = malloc(sizeof *prev)) == NULL) {
		token_key_release(key);
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "out of memory");
		return LD_ERR_NOMEM;
	}
	if ((rc = token_key_load(cfg->token_previous_secret_file, prev, err, errlen)) != LD_OK) {
		free(prev);
		token_key_release(key);
		return rc;
	}
	if (prev->len == key->len && sodium_memcmp(prev->bytes, key->bytes, key->len) == 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen,
				 "token_previous_secret_file '%s' holds the same "
				 "secret as token_secret_file: a rotation writes a new "
				 "secret there",
				 cfg->token_previous_secret_file);
		token_key_release(prev);
		free(prev);
		token_key_release(key);
		return LD_ERR_INVALID;
	}
	key->previous = prev;
	return LD_OK;
}

void token_key_release(struct token_key *key)
{
	if (key == NULL)
		return;
	if (key->previous != NULL) {
		token_key_release(key->previous);
		free(key->previous);
	}
	if (key->bytes != NULL) {
		sodium_memzero(key->bytes, key->len);
		free(key->bytes);
	}
	sodium_memzero(&key->keyed, sizeof key->keyed);
	key->bytes = NULL;
	key->len = 0;
	key->id[0] = '\0';
	key->previous = NULL;
}

void token_hmac(const struct token_key *key, const char *msg, size_t n, char sig[TOKEN_SIG_LEN + 1])
{
	crypto_auth_hmacsha256_state st = key->keyed;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, n);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2base64(sig, SIG_LEN + 1, mac, sizeof(mac),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(&st, sizeof(st));
}

enum ld_err token_issue(const struct token_key *key, const char *uid, int64_t expiry_s,
			char out[TOKEN_MAX])
{
	char sig[SIG_LEN + 1];
	int n;

	out[0] = '\0';
	if (key == NULL || key->bytes == NULL || !ld_is_ident(uid, TOKEN_UID_MAX) || expiry_s < 0)
		return LD_ERR_INVALID;
	n = snprintf(out, TOKEN_MAX, "%s.%lld.%s", uid, (long long)expiry_s, key->id);
	if (n < 0 || (size_t)n + 1 + SIG_LEN >= TOKEN_MAX) {
		out[0] = '\0';
		return LD_ERR_INVALID;
	}
	token_hmac(key, out, (size_t)n, sig);
	out[n] = '.';
	memcpy(out + n + 1, sig, SIG_LEN + 1);
	return LD_OK;
}

/* Parses the expiry digits s[0..n) into *out. Returns 0, or -1 for an
 * empty, overlong, non-digit, leading-zero or overflowing number. */
static int parse_expiry(const char *s, size_t n, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (n == 0 || n > EXPIRY_DIGITS_MAX || (s[0] == '0' && n > 1))
		return -1;
	for (i = 0; i < n; i++) {
		int dgt = s[i] - '0';

		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (INT64_MAX - dgt) / 10)
			return -1;
		v = v * 10 + dgt;
	}
	*out = v;
	return 0;
}

/* Whether s[0..n) is n base64url characters. */
static int is_base64url(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/*
 * Checks tok in the order shape, signature, expiry, so that only a token
 * we issued can be told "expired". The signature is recomputed under each
 * accepted key that may have made it (the key its kid names; both for the
 * older shape without one) and its text compared in constant time: a
 * non-canonical base64 spelling of the right MAC is rejected too.
 */
enum token_status token_verify(const struct token_key *key, const char *tok, size_t len,
			       int64_t now_s, char uid[TOKEN_UID_MAX + 1])
{
	const char *dot1, *dot2, *dot3, *last, *kid = NULL;
	const struct token_key *k;
	char sig[SIG_LEN + 1];
	size_t uidlen;
	int64_t expiry;
	int tried = 0, good = 0;

	if (uid != NULL)
		uid[0] = '\0';
	if (key == NULL || key->bytes == NULL || tok == NULL || len == 0 || len >= TOKEN_MAX)
		return TOKEN_MALFORMED;
	if ((dot1 = memchr(tok, '.', len)) == NULL)
		return TOKEN_MALFORMED;
	dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok));
	if (dot2 == NULL)
		return TOKEN_MALFORMED;
	dot3 = memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - tok));
	last = dot3 != NULL ? dot3 : dot2;
	if (memchr(last + 1, '.', len - (size_t)(last + 1 - tok)) != NULL)
		return TOKEN_MALFORMED;
	uidlen = (size_t)(dot1 - tok);
	if (uidlen == 0 || uidlen > TOKEN_UID_MAX || !is_base64url(tok, uidlen))
		return TOKEN_MALFORMED;
	if (parse_expiry(dot1 + 1, (size_t)(dot2 - dot1 - 1), &expiry) == -1)
		return TOKEN_MALFORMED;
	if (dot3 != NULL) {
		kid = dot2 + 1;
		if (dot3 - kid != TOKEN_KID_LEN || !is_base64url(kid, TOKEN_KID_LEN))
			return TOKEN_MALFORMED;
	}
	if (len - (size_t)(last + 1 - tok) != SIG_LEN)
		return TOKEN_MALFORMED;
	for (k = key; k != NULL && k->bytes != NULL; k = k->previous) {
		if (kid != NULL && memcmp(kid, k->id, TOKEN_KID_LEN) != 0)
			continue;
		tried = 1;
		token_hmac(k, tok, (size_t)(last - tok), sig);
		good |= sodium_memcmp(sig, last + 1, SIG_LEN) == 0;
	}
	if (!tried)
		return TOKEN_UNKNOWN_KEY;
	if (!good)
		return TOKEN_BAD_SIGNATURE;
	if (expiry <= now_s)
		return TOKEN_EXPIRED;
	if (uid != NULL) {
		memcpy(uid, tok, uidlen);
		uid[uidlen] = '\0';
	}
	return TOKEN_OK;
}

const char *token_strstatus(enum token_status st)
{
	switch (st) {
	case TOKEN_OK: return "valid token";
	case TOKEN_MALFORMED: return "malformed token";
	case TOKEN_BAD_SIGNATURE: return "bad token signature";
	case TOKEN_EXPIRED: return "expired token";
	case TOKEN_UNKNOWN_KEY: return "token signed by a key no longer accepted";
	}
	return "unknown token status";
}
