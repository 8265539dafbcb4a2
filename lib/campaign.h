/*
 * campaign.h - what the web console shows of a running promotion beside
 * its days (stats.h): the dispatcher's backlog with the promotion's dead
 * events, and the patterns a campaign owner asks about - the inviters
 * with the most credited invites, the clients with the most refused
 * claims. Each is one JSON object for the console's API; each reads only
 * what an index finds (the per-day and partial indexes of the ledger),
 * so it stays fast on a campaign-sized ledger (bench/console).
 */
#ifndef LD_CAMPAIGN_H
#define LD_CAMPAIGN_H

#include <json-c/json.h>

#include "ledger.h"
#include "promo.h"

#define CAMPAIGN_LIST_MAX 200    /* rows of a list at most */
#define CAMPAIGN_DUE_MAX  100000 /* due events counted at most */

/*
 * The outbox at now_ms into *out (a new object the caller puts): for
 * the dispatcher, which serves every promotion, "due" (pending events
 * due now, at most CAMPAIGN_DUE_MAX; "due_more" true when there are
 * more: luckydice_outbox_due in /metrics has them all), "waiting" (pending, due later: retries), "oldest_due" (when
 * the oldest due event became due, ISO-8601 in p's zone, or null) and
 * "dead" (dead events); for p, "dead_events": its newest dead events,
 * at most limit (1..CAMPAIGN_LIST_MAX), each "id", "kind", "user",
 * "attempts", "last_status", "last_error" and "at" (when it died).
 */
enum ld_err campaign_outbox_json(struct ledger *l, const struct promo *p, int64_t now_ms, int limit,
				 struct json_object **out);

/*
 * The patterns of p into *out (a new object the caller puts), each list
 * at most limit (1..CAMPAIGN_LIST_MAX) long:
 *  - "inviters": the users with the most credited invites, most first
 *    (ties by id), each "user", "credited" (every invitee credited
 *    through their code) and "granted" (those that gave them a dice,
 *    up to the cap). Exact, unless the promotion's cap was lowered
 *    after someone passed the new one without an invite past the old:
 *    when the list is made of inviters past the cap it does not look
 *    at the others (campaign.c);
 *  - "clients": the client identifiers (device ids, or addresses) with
 *    the most refused claims, each "client", "refused", "last_day" and
 *    "credited" (claims from it that were credited).
 */
enum ld_err campaign_watch_json(struct ledger *l, const struct promo *p, int limit,
				struct json_object **out);

#endif
