/*
 * promoedit.h - changes to a stored promotion: what a reload would break
 * in a running campaign, what changed between two definitions (field by
 * field), and a promotion's history (every file loaded, every pause and
 * resume: ledger_promo_store and ledger_promo_pause record them).
 */
#ifndef LD_PROMOEDIT_H
#define LD_PROMOEDIT_H

#include <json-c/json.h>

#include "ledger.h"
#include "promo.h"

/*
 * The reasons loading next over the stored old at now_ms would break the
 * campaign, into *out: a new JSON array of strings, each naming the field
 * ("time_zone: ..."), empty when there is none. A reload is refused when
 *  - the campaign has started (its first day has begun) and the time
 *    zone or the first day changes: every day's boundary would move under
 *    the days already counted;
 *  - a day's stock of a prize falls below what that day already gave out
 *    (also a day that is no longer among the days);
 *  - a prize that has winners is no longer in the file.
 * Returns LD_OK or a database error.
 */
enum ld_err promo_reload_refusals(struct ledger *l, const struct promo *old,
				  const struct promo *next, int64_t now_ms,
				  struct json_object **out);

/*
 * What changed from definition a to definition b (two JSON texts), field
 * by field: a new JSON array of {"field", "from", "to"} where a missing
 * value is null. Objects are compared key by key ("grants.visit"), the
 * prizes by id ("prizes[coffee].daily_stock", a prize added or removed
 * as a whole), other arrays as a whole. a NULL: everything is new. A
 * text that does not parse is compared as a whole.
 */
struct json_object *promo_diff(const char *a, const char *b);

/*
 * The history of promotion id, oldest first, into *out (a new JSON
 * object: {"promotion": id, "versions": [...]}): each entry has its
 * number, "at" (ISO-8601 UTC), "by", "action" (load, pause, resume),
 * "note", and for a load "version" (1, 2, ...), "content" (the file as
 * loaded) and "changes" (promo_diff from the load before). LD_ERR_NOTFOUND
 * when the promotion has no history.
 */
enum ld_err promo_history_json(struct ledger *l, const char *id, struct json_object **out);

#endif
