/* fuzz-token: token_verify on any bytes; a token it accepts has a valid
 * uid, and a token issued for a valid uid verifies. */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "token.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const unsigned char secret[32] = "0123456789abcdef0123456789abcdef";
	static struct token_key key; /* one for the whole run */
	char uid[TOKEN_UID_MAX + 1], tok[TOKEN_MAX], name[TOKEN_UID_MAX + 1];

	if (!key.bytes &&
	    (sodium_init() < 0 || token_key_set(&key, secret, sizeof secret) != LD_OK))
		abort();
	if (token_verify(&key, (const char *)data, size, 1700000000, uid) == TOKEN_OK &&
	    !ld_is_ident(uid, TOKEN_UID_MAX))
		abort();
	if (size <= TOKEN_UID_MAX) {
		memcpy(name, data, size);
		name[size] = '\0';
		if (token_issue(&key, name, 1700000100, tok) == LD_OK &&
		    (token_verify(&key, tok, strlen(tok), 1700000000, uid) != TOKEN_OK ||
		     strcmp(uid, name) != 0 ||
		     token_verify(&key, tok, strlen(tok), 1700000100, uid) != TOKEN_EXPIRED))
			abort();
	}
	return 0;
}
