/*
 * outbox.h - events for the outside world (reward and notification
 * services), written in the same transaction as what caused them and
 * delivered later by luckydice-dispatch.
 */
#ifndef LD_OUTBOX_H
#define LD_OUTBOX_H

#include "ledger.h"

/*
 * Adds one pending event inside the caller's open transaction. key is the
 * stable Idempotency-Key (unique: adding an existing key is a no-op);
 * payload is the JSON body to send. Returns LD_OK or a database error.
 */
enum ld_err outbox_add(struct ledger *l, const char *kind, const char *key,
		       const char *promo, const char *uid, const char *payload,
		       int64_t now_ms);

#endif
