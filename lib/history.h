/*
 * history.h - everything the ledger knows about one user in one
 * promotion, as JSON: what the user sees in GET me and what support sees
 * in `luckydicectl user show`.
 */
#ifndef LD_HISTORY_H
#define LD_HISTORY_H

#include <json-c/json.h>
#include "ledger.h"
#include "promo.h"

enum history_view {
	HISTORY_USER,    /* balance, grants, draws, invites credited: public
			  * text only (no grant's ref or note, other users'
			  * ids masked) */
	HISTORY_SUPPORT, /* everything: also each grant's ref and note,
			  * refused claims, who invited whom, reward delivery */
};

/* What a user's own view says of a grant or revoke made by support. */
#define HISTORY_SUPPORT_TEXT "adjusted by support"

/*
 * Builds the history of uid in promotion p at now_ms into *out (a new
 * json-c object the caller puts). Times are ISO-8601 in the promotion's
 * time zone. Lists are capped at HISTORY_MAX_ROWS, newest first.
 */
#define HISTORY_MAX_ROWS 500
enum ld_err history_json(struct ledger *l, const struct promo *p, const char *uid, int64_t now_ms,
			 enum history_view view, struct json_object **out);

#endif
