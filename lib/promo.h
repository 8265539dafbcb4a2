/*
 * promo.h - promotion definitions (one JSON file per promotion) and the
 * calendar of a promotion: which local day an instant falls on, in the
 * promotion's IANA time zone.
 *
 * Every time is passed in (ms since the epoch): nothing here reads the
 * clock, so tests pick the instant.
 */
#ifndef LD_PROMO_H
#define LD_PROMO_H

#include "ld.h"

#define PROMO_ID_MAX     64
#define PRIZE_ID_MAX     64
#define PROMO_MAX_PRIZES 32
#define PROMO_MAX_DAYS   366
#define PROMO_FILE_MAX   (64 * 1024)
/* Probabilities are compared against a uniform integer in [0, PROMO_SCALE). */
#define PROMO_SCALE 1000000000u

enum prize_release {
	RELEASE_MIDNIGHT = 0, /* the whole day's stock at local midnight */
	RELEASE_EVEN,         /* opens in proportion to the elapsed local day */
};

struct promo_prize {
	char id[PRIZE_ID_MAX + 1];
	char *name;
	int64_t daily_stock;
	double probability;
	uint32_t lo, hi; /* wins when lo <= r < hi, r uniform in [0, PROMO_SCALE) */
	enum prize_release release;
	int64_t *stock; /* stock of each day (ndays): daily_stock or "stock_by_day" */
};

struct promo {
	char id[PROMO_ID_MAX + 1];
	char *name;
	char *time_zone;
	char first_day[11], last_day[11]; /* "YYYY-MM-DD" */
	int64_t grant_visit, grant_inviter, grant_invitee;
	int64_t max_credited_per_inviter;
	int64_t invitee_new_within_ms;     /* from invitee_new_within_hours */
	int64_t claims_per_client_per_day; /* 0 = no cap ("abuse" section) */
	size_t nprizes;
	struct promo_prize *prizes;
	int ndays;             /* last_day - first_day + 1 */
	int64_t *day_start_ms; /* ndays + 1 local midnights, UTC ms */
	char *json;            /* the definition as loaded (canonical JSON) */
	/* Not in the file: the kill switch, as the ledger's registry read it
	 * (ledger_promo_pause). Visits, claims and draws are refused while
	 * paused_reason is not NULL. */
	int64_t paused_at;
	char *paused_reason;
};

/*
 * Parses and validates a promotion definition (len bytes of JSON). On
 * success *out is a new promo the caller frees with promo_free. On error
 * returns LD_ERR_INVALID with a message naming the field
 * ("prizes[1].probability: must be between 0 and 1"), and *out is NULL.
 * The time zone must exist in the system's zoneinfo.
 */
enum ld_err promo_parse(const char *json, size_t len, struct promo **out, char *err, size_t errlen);
void promo_free(struct promo *p);

/* Index of the local day containing now_ms: 0..ndays-1, -1 before the
 * first day, ndays after the last. */
int promo_day(const struct promo *p, int64_t now_ms);

/* True when now_ms is within the promotion's days. */
int promo_active(const struct promo *p, int64_t now_ms);

/* "YYYY-MM-DD" of day index d (any d, also outside the range). */
void promo_day_name(const struct promo *p, int d, char buf[11]);

/* Day index of "YYYY-MM-DD", or -1 if malformed or outside the days. */
int promo_day_index(const struct promo *p, const char *name);

/* UTC offset in seconds of the promotion's zone at instant ms. */
int32_t promo_utc_offset(const struct promo *p, int64_t ms);

struct json_object;

/* Instant ms as a JSON string in the promotion's local time, ISO 8601
 * with its offset ("2024-07-08T09:00:00.000+09:00"). */
struct json_object *promo_time_json(const struct promo *p, int64_t ms);

/* Stock of prize open so far on day d at instant now_ms: the whole day's
 * stock for RELEASE_MIDNIGHT, floor(stock * elapsed / day length)
 * for RELEASE_EVEN. */
int64_t promo_released(const struct promo *p, const struct promo_prize *z, int d, int64_t now_ms);

/* The stock of prize z on day d (0 outside the days). */
int64_t promo_stock(const struct promo *p, const struct promo_prize *z, int d);

/* Prize index for a uniform r in [0, PROMO_SCALE), or -1 for a miss. */
int promo_pick(const struct promo *p, uint32_t r);

/* Prize by id, or NULL. */
const struct promo_prize *promo_prize_find(const struct promo *p, const char *id);

#endif
