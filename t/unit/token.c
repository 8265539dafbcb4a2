/*
 * t/unit/token.c - lib/token.c: secret loading, issue/verify round trip,
 * expiry, tampering, a wrong key, every malformed shape, tokens of the
 * older shape without a key id, and two keys at once (rotation).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "token.h"
#include "../tap.h"

#define SECRET "0123456789abcdef0123456789abcdef-test-secret"
#define NOW    1720364400 /* 2024-07-07T15:00:00Z */

static char tmpdir[256];

/* Writes s to tmpdir/name and returns the path (in buf). */
static const char *write_tmp(const char *name, const char *s, char buf[512])
{
	int fd;

	snprintf(buf, 512, "%s/%s", tmpdir, name);
	if ((fd = open(buf, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, s, strlen(s)) != (ssize_t)strlen(s) || close(fd) == -1)
		bail("cannot write '%s'", buf);
	return buf;
}

static enum token_status verify(const struct token_key *key, const char *tok,
				char uid[TOKEN_UID_MAX + 1])
{
	return token_verify(key, tok, strlen(tok), NOW, uid);
}

static void t_key(struct token_key *key, struct token_key *other)
{
	char path[512], err[256], big[TOKEN_MAX];
	struct token_key k;

	is_int(token_key_load(write_tmp("nl", SECRET "\n", path), &k, err, sizeof(err)), LD_OK,
	       "load a secret with a newline");
	is_int((long long)k.len, strlen(SECRET), "the newline is not part of it");
	ok(memcmp(k.bytes, SECRET, k.len) == 0, "the bytes are the file's");
	token_key_release(&k);
	ok(k.bytes == NULL && k.len == 0, "release clears the key");
	token_key_release(&k);

	is_int(token_key_load(write_tmp("crlf", SECRET "\r\n", path), &k, err, sizeof(err)), LD_OK,
	       "load a secret with CRLF");
	is_int((long long)k.len, strlen(SECRET), "CRLF is not part of it");
	token_key_release(&k);

	is_int(token_key_load(write_tmp("two", SECRET "\n\n", path), &k, err, sizeof(err)), LD_OK,
	       "only one newline is dropped");
	is_int((long long)k.len, strlen(SECRET) + 1, "the other stays");
	token_key_release(&k);

	is_int(token_key_load(write_tmp("short", "0123456789abcdef0123456789abcde\n", path), &k,
			      err, sizeof(err)),
	       LD_ERR_INVALID, "31 bytes are too short");
	ok(strstr(err, path) != NULL && strstr(err, "too short") != NULL && k.bytes == NULL,
	   "the message names the file: %s", err);
	is_int(token_key_load(write_tmp("32", "0123456789abcdef0123456789abcdef", path), &k, err,
			      sizeof(err)),
	       LD_OK, "32 bytes are enough");
	token_key_release(&k);

	/* A key longer than SHA-256's block is hashed first, as HMAC says. */
	memset(big, 'k', 100);
	big[100] = '\0';
	if (token_key_load(write_tmp("long", big, path), &k, err, sizeof(err)) != LD_OK ||
	    token_issue(&k, "u", 2000000000, big) != LD_OK)
		bail("cannot use a 100-byte key: %s", err);
	is_string(big, "u.2000000000.P5lsjISi.TN5Xi0l87LurzqZMfIufqMEkHEpXSxtg2nSAsMGeYps",
		  "a 100-byte key (known answer)");
	token_key_release(&k);

	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	is_int(token_key_load(path, &k, err, sizeof(err)), LD_ERR_IO,
	       "a missing secret is LD_ERR_IO");
	ok(strstr(err, path) != NULL, "the message names the file: %s", err);

	if (token_key_load(write_tmp("key", SECRET "\n", path), key, err, sizeof(err)) != LD_OK ||
	    token_key_load(write_tmp("other", "another-secret-of-32-bytes-or-more!!", path), other,
			   err, sizeof(err)) != LD_OK)
		bail("cannot load the test keys: %s", err);
}

static void t_round_trip(const struct token_key *key, const struct token_key *other)
{
	char tok[TOKEN_MAX], bad[TOKEN_MAX + 64], uid[TOKEN_UID_MAX + 1];
	char uid64[TOKEN_UID_MAX + 2];
	size_t n;

	is_int(token_issue(key, "user_1-A", NOW + 3600, tok), LD_OK, "issue");
	n = strlen(tok);
	ok(strncmp(tok, "user_1-A.1720368000.", 20) == 0 && n == 20 + 8 + 1 + 43 &&
		   strncmp(tok + 20, key->id, 8) == 0 && tok[28] == '.',
	   "shape uid.expiry.kid.43-character signature: %s", tok);
	ok(strspn(tok + 29,
		  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		  "0123456789-_") == 43,
	   "the signature is base64url without padding");
	/* Known answers from Python's hmac module: what a host app computes.
	 * kid: base64url of the first 6 bytes of HMAC(key, "luckydice token
	 * key id"); signature: HMAC(key, "uid.expiry.kid"). */
	is_string(key->id, "NMhV8gt7", "the key id (known answer)");
	is_string(tok, "user_1-A.1720368000.NMhV8gt7.fEwIfGm0E0aDTZyWNsXnBu7UtP0dOHbrGX6Xb1qnK-w",
		  "HMAC-SHA256 of \"uid.expiry.kid\", base64url (known answer)");
	ok(strcmp(key->id, other->id) != 0, "another key has another id");
	is_int(verify(key, tok, uid), TOKEN_OK, "verify");
	is_string(uid, "user_1-A", "the uid comes back");
	is_int(token_verify(key, tok, n, NOW + 3599, uid), TOKEN_OK, "valid 1s before expiry");
	is_int(token_verify(key, tok, n, NOW + 3600, uid), TOKEN_EXPIRED,
	       "expiry == now is expired");
	ok(uid[0] == '\0', "no uid for an expired token");
	is_int(verify(other, tok, uid), TOKEN_UNKNOWN_KEY,
	       "a wrong key: its id is not the token's");
	snprintf(bad, sizeof(bad), "user_1-A.1720368000.%s.%s", other->id, tok + 29);
	is_int(verify(other, bad, uid), TOKEN_BAD_SIGNATURE,
	       "the other key's id on this key's signature");

	/* Not NUL-terminated: only len bytes count. */
	memcpy(bad, tok, n);
	memcpy(bad + n, "junk", 5);
	is_int(token_verify(key, bad, n, NOW, uid), TOKEN_OK, "bytes past len are ignored");
	is_int(token_verify(key, bad, n + 4, NOW, uid), TOKEN_MALFORMED,
	       "bytes within len are not");

	strcpy(bad, tok);
	bad[n - 5] = bad[n - 5] == 'A' ? 'B' : 'A';
	is_int(verify(key, bad, uid), TOKEN_BAD_SIGNATURE, "one signature character flipped");
	strcpy(bad, tok);
	bad[n - 1] = bad[n - 1] == 'A' ? 'B' : 'A';
	is_int(verify(key, bad, uid), TOKEN_BAD_SIGNATURE, "the last character flipped");
	strcpy(bad, tok);
	bad[0] = 'U';
	is_int(verify(key, bad, uid), TOKEN_BAD_SIGNATURE, "another uid, same signature");
	snprintf(bad, sizeof(bad), "user_1-A.1720368001%s", tok + 19);
	is_int(verify(key, bad, uid), TOKEN_BAD_SIGNATURE, "a later expiry, same signature");

	is_int(token_issue(key, "user_1-A", 0, tok), LD_OK, "issue expiry 0");
	is_int(verify(key, tok, uid), TOKEN_EXPIRED, "it is expired");
	is_int(token_issue(key, "user_1-A", INT64_MAX, tok), LD_OK, "issue expiry INT64_MAX");
	is_int(verify(key, tok, uid), TOKEN_OK, "19 digits verify");
	is_int(token_issue(key, "user_1-A", -1, tok), LD_ERR_INVALID,
	       "a negative expiry is refused");
	is_int(token_issue(key, "a.b", NOW, tok), LD_ERR_INVALID, "uid with a dot");
	is_int(token_issue(key, "", NOW, tok), LD_ERR_INVALID, "empty uid");
	memset(uid64, 'u', TOKEN_UID_MAX + 1);
	uid64[TOKEN_UID_MAX + 1] = '\0';
	is_int(token_issue(key, uid64, NOW, tok), LD_ERR_INVALID, "65-character uid");
	uid64[TOKEN_UID_MAX] = '\0';
	is_int(token_issue(key, uid64, NOW + 1, tok), LD_OK, "64-character uid");
	is_int(verify(key, tok, uid), TOKEN_OK, "it verifies");
	is_string(uid, uid64, "and gives the whole uid back");
	ok(strlen(tok) < TOKEN_MAX, "the longest token fits TOKEN_MAX");
}

/* Token "uid.expiry.<signature of uid.expiry>" even when uid or expiry
 * are malformed, so that only the shape can make it fail. */
static const char *forge(const struct token_key *key, const char *uid, const char *expiry)
{
	static char buf[512];
	char tok[TOKEN_MAX];

	/* Sign a valid token, then splice its signature in. */
	token_issue(key, "x", NOW + 1, tok);
	snprintf(buf, sizeof(buf), "%s.%s.%s", uid, expiry, strrchr(tok, '.') + 1);
	return buf;
}

static void t_malformed(const struct token_key *key)
{
	char uid[TOKEN_UID_MAX + 1], long_uid[80], tok[TOKEN_MAX], big[400];
	const char *sig;

	token_issue(key, "x", NOW + 100, tok);
	sig = strrchr(tok, '.') + 1;
	is_int(verify(key, "", uid), TOKEN_MALFORMED, "empty");
	is_int(token_verify(key, NULL, 0, NOW, uid), TOKEN_MALFORMED, "NULL");
	is_int(verify(key, "nodots", uid), TOKEN_MALFORMED, "no dots");
	is_int(verify(key, "x.1720364500", uid), TOKEN_MALFORMED, "one dot");
	snprintf(big, sizeof(big), "x.1720364500.%s.", sig);
	is_int(verify(key, big, uid), TOKEN_MALFORMED, "three dots");
	snprintf(big, sizeof(big), "x.1720364500..%s", sig);
	is_int(verify(key, big, uid), TOKEN_MALFORMED, "three dots, empty kid");
	snprintf(big, sizeof(big), "x.1720364500.%.7s.%s", key->id, sig);
	is_int(verify(key, big, uid), TOKEN_MALFORMED, "a kid of 7 characters");
	snprintf(big, sizeof(big), "x.1720364500.%sA.%s", key->id, sig);
	is_int(verify(key, big, uid), TOKEN_MALFORMED, "a kid of 9 characters");
	snprintf(big, sizeof(big), "x.1720364500.%.7s=.%s", key->id, sig);
	is_int(verify(key, big, uid), TOKEN_MALFORMED, "a kid with '='");
	snprintf(big, sizeof(big), "x.1720364500.%s.%s.%s", key->id, key->id, sig);
	is_int(verify(key, big, uid), TOKEN_MALFORMED, "four dots");
	is_int(verify(key, forge(key, "", "1720364500"), uid), TOKEN_MALFORMED, "empty uid");
	memset(long_uid, 'u', 65);
	long_uid[65] = '\0';
	is_int(verify(key, forge(key, long_uid, "1720364500"), uid), TOKEN_MALFORMED,
	       "uid of 65 characters");
	is_int(verify(key, forge(key, "a b", "1720364500"), uid), TOKEN_MALFORMED,
	       "uid with a space");
	is_int(verify(key, forge(key, "a/b", "1720364500"), uid), TOKEN_MALFORMED,
	       "uid with a slash");
	is_int(verify(key, forge(key, "caf\xc3\xa9", "1720364500"), uid), TOKEN_MALFORMED,
	       "uid with UTF-8");
	is_int(verify(key, forge(key, "x", "+1720364500"), uid), TOKEN_MALFORMED, "expiry with +");
	is_int(verify(key, forge(key, "x", "-1720364500"), uid), TOKEN_MALFORMED, "expiry with -");
	is_int(verify(key, forge(key, "x", " 1720364500"), uid), TOKEN_MALFORMED,
	       "expiry with a leading space");
	is_int(verify(key, forge(key, "x", "01720364500"), uid), TOKEN_MALFORMED,
	       "expiry with a leading zero");
	is_int(verify(key, forge(key, "x", "1720364500x"), uid), TOKEN_MALFORMED,
	       "expiry with junk after");
	is_int(verify(key, forge(key, "x", ""), uid), TOKEN_MALFORMED, "empty expiry");
	is_int(verify(key, forge(key, "x", "0x10"), uid), TOKEN_MALFORMED, "hex expiry");
	is_int(verify(key, forge(key, "x", "9223372036854775808"), uid), TOKEN_MALFORMED,
	       "expiry past INT64_MAX");
	is_int(verify(key, forge(key, "x", "99999999999999999999"), uid), TOKEN_MALFORMED,
	       "20-digit expiry");
	snprintf(big, sizeof(big), "x.1720364500.%.42s", sig);
	is_int(verify(key, big, uid), TOKEN_MALFORMED, "signature of 42 characters");
	snprintf(big, sizeof(big), "x.1720364500.%sA", sig);
	is_int(verify(key, big, uid), TOKEN_MALFORMED, "signature of 44 characters");
	snprintf(big, sizeof(big), "x.1720364500.%s=", sig);
	is_int(verify(key, big, uid), TOKEN_MALFORMED, "padded signature");
	memset(big, 'a', sizeof(big));
	memcpy(big, "x.1.", 4);
	big[sizeof(big) - 1] = '\0';
	is_int(verify(key, big, uid), TOKEN_MALFORMED, "overlong token");
	is_int(verify(key, "x.1720364500.", uid), TOKEN_MALFORMED, "empty signature");

	is_int(verify(key, tok, uid), TOKEN_OK, "the untouched token still verifies");
	is_string(token_strstatus(TOKEN_EXPIRED), "expired token", "token_strstatus");
	is_string(token_strstatus(TOKEN_MALFORMED), "malformed token", "token_strstatus malformed");
	ok(strstr(token_strstatus(TOKEN_UNKNOWN_KEY), "key") != NULL,
	   "token_strstatus unknown key: %s", token_strstatus(TOKEN_UNKNOWN_KEY));
}

/* Tokens of the older shape "uid.expiry.signature": the HMAC of
 * "uid.expiry", with no key id. Host apps made them before key ids. */
#define LEGACY "user_1-A.1720368000.pDzViolvD28N12oA-ifKnLmrZe5bdumdkWw1hkT_uhc"

static void t_legacy(const struct token_key *key, const struct token_key *other)
{
	char uid[TOKEN_UID_MAX + 1], bad[TOKEN_MAX];

	is_int(verify(key, LEGACY, uid), TOKEN_OK,
	       "a token of the older shape verifies (known answer from Python)");
	is_string(uid, "user_1-A", "its uid comes back");
	is_int(token_verify(key, LEGACY, strlen(LEGACY), 1720368000, uid), TOKEN_EXPIRED,
	       "it expires like the others");
	is_int(verify(other, LEGACY, uid), TOKEN_BAD_SIGNATURE, "under another key it does not");
	snprintf(bad, sizeof(bad), "user_1-A.1720368000.%s.%s", key->id, strrchr(LEGACY, '.') + 1);
	is_int(verify(key, bad, uid), TOKEN_BAD_SIGNATURE,
	       "its signature under a kid is not a signature of the new shape");
}

/* Two keys at once: "token_previous_secret_file" keeps the tokens of
 * the key before a rotation good; the current key signs. */
static void t_rotation(const struct token_key *oldkey)
{
	struct ld_config cfg;
	struct token_key ring, alone;
	char path[512], path2[512], err[256], tok[TOKEN_MAX], uid[TOKEN_UID_MAX + 1];
	char before[TOKEN_MAX], forged[TOKEN_MAX];

	memset(&cfg, 0, sizeof cfg);
	cfg.token_secret_file = (char *)write_tmp("new", "a-new-secret-after-the-rotation-0123\n",
						  path);
	cfg.token_previous_secret_file = (char *)write_tmp("key", SECRET "\n", path2);
	if (!is_int(token_keys_load(&cfg, &ring, err, sizeof(err)), LD_OK,
		    "load the current and the previous secret"))
		bail("%s", err);
	ok(ring.previous != NULL && strcmp(ring.previous->id, oldkey->id) == 0,
	   "the previous key is the old one");
	if (token_issue(oldkey, "rot-1", NOW + 60, before) != LD_OK)
		bail("cannot issue");
	is_int(verify(&ring, before, uid), TOKEN_OK, "a token of the previous key verifies");
	is_string(uid, "rot-1", "with its uid");
	is_int(verify(&ring, LEGACY, uid), TOKEN_OK,
	       "an older-shape token of the previous key verifies");
	is_int(token_issue(&ring, "rot-2", NOW + 60, tok), LD_OK, "issue after the rotation");
	ok(strncmp(tok + strlen("rot-2.1720364460."), ring.id, TOKEN_KID_LEN) == 0 &&
		   strcmp(ring.id, oldkey->id) != 0,
	   "it is signed with the current key: %s", tok);
	is_int(verify(&ring, tok, uid), TOKEN_OK, "and verifies");
	is_int(verify(oldkey, tok, uid), TOKEN_UNKNOWN_KEY, "the old key alone does not know it");
	snprintf(forged, sizeof(forged), "rot-2.1720364460.%s.%s", oldkey->id,
		 strrchr(tok, '.') + 1);
	is_int(verify(&ring, forged, uid), TOKEN_BAD_SIGNATURE,
	       "the previous key's id on the current key's signature");
	token_key_release(&ring);
	ok(ring.bytes == NULL && ring.previous == NULL, "release frees both keys");

	cfg.token_previous_secret_file = NULL;
	if (token_keys_load(&cfg, &alone, err, sizeof(err)) != LD_OK)
		bail("%s", err);
	ok(alone.previous == NULL, "without a previous file, one key");
	is_int(verify(&alone, before, uid), TOKEN_UNKNOWN_KEY,
	       "once the previous key is dropped its tokens stop verifying");
	is_int(verify(&alone, LEGACY, uid), TOKEN_BAD_SIGNATURE,
	       "and so do its older-shape tokens");
	token_key_release(&alone);

	cfg.token_previous_secret_file = cfg.token_secret_file;
	is_int(token_keys_load(&cfg, &ring, err, sizeof(err)), LD_ERR_INVALID,
	       "the same secret as current and previous is refused");
	ok(strstr(err, "same secret") != NULL && ring.bytes == NULL, "%s", err);
	snprintf(path2, sizeof(path2), "%s/missing", tmpdir);
	cfg.token_previous_secret_file = path2;
	is_int(token_keys_load(&cfg, &ring, err, sizeof(err)), LD_ERR_IO,
	       "a missing previous secret is LD_ERR_IO");
	ok(strstr(err, "missing") != NULL && ring.bytes == NULL,
	   "it names the file and holds no key: %s", err);
}

int main(void)
{
	const char *base = getenv("TMPDIR"),
		   *names[] = { "nl", "crlf", "two", "short", "32", "long", "key", "other", "new" };
	struct token_key key, other;
	char path[512];
	size_t i;

	snprintf(tmpdir, sizeof(tmpdir), "%s/ld-unit-token.XXXXXX",
		 base != NULL && *base != '\0' ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		bail("cannot create a temporary directory");
	t_key(&key, &other);
	t_round_trip(&key, &other);
	t_malformed(&key);
	t_legacy(&key, &other);
	t_rotation(&key);
	token_key_release(&key);
	token_key_release(&other);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	rmdir(tmpdir);
	return done_testing();
}
