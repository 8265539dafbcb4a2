/*
 * t/unit/promo.c - lib/promo.c: parsing and validation of promotion
 * files (every error names its field), the calendar in Asia/Seoul and
 * across DST changes, RELEASE_EVEN stock, and promo_pick's slices.
 */
#include <stdlib.h>
#include <string.h>

#include "promo.h"
#include "../tap.h"

#define H (3600 * 1000LL)

/* A Lucky-Dice-2024-like definition; the bad cases below each change one
 * piece of it. */
static const char base[] =
	"{\n"
	"  \"id\": \"lucky-dice-2024\",\n"
	"  \"name\": \"\xed\x96\x89\xec\x9a\xb4 \xec\xa3\xbc\xec\x82\xac\xec\x9c\x84\",\n"
	"  \"time_zone\": \"Asia/Seoul\",\n"
	"  \"first_day\": \"2024-07-08\",\n"
	"  \"last_day\": \"2024-07-31\",\n"
	"  \"grants\": { \"visit\": 1, \"inviter\": 2, \"invitee\": 3 },\n"
	"  \"invites\": { \"max_credited_per_inviter\": 30, "
	"\"invitee_new_within_hours\": 24 },\n"
	"  \"prizes\": [\n"
	"    { \"id\": \"coffee\", \"name\": \"coffee/gifticon\", "
	"\"daily_stock\": 5000, \"probability\": 0.05 },\n"
	"    { \"id\": \"cake\", \"name\": \"cake\", \"daily_stock\": 100, "
	"\"probability\": 0.001, \"release\": \"even\" },\n"
	"    { \"id\": \"voucher\", \"name\": \"voucher\", \"daily_stock\": 10, "
	"\"probability\": 0.000000001 }\n"
	"  ]\n"
	"}\n";

/* base with the first "from" replaced by "to" (static buffer). */
static const char *mk(const char *from, const char *to)
{
	static char buf[8192];
	const char *at = strstr(base, from);

	if (at == NULL)
		bail("'%s' is not in the base promotion", from);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
	return buf;
}

/* base with everything from "prizes" on replaced by tail and "}". */
static const char *with_prizes(const char *tail)
{
	static char buf[8192];
	const char *at = strstr(base, "\"prizes\"");

	snprintf(buf, sizeof(buf), "%.*s\"prizes\": %s}", (int)(at - base), base, tail);
	return buf;
}

/* UTC instant in ms. */
static int64_t utc(int y, int mo, int d, int h, int mi, int s, int ms)
{
	return (ld_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000 + ms;
}

static struct promo *parse_ok(const char *json, const char *what)
{
	struct promo *p = NULL;
	char err[256] = "";
	enum ld_err rc = promo_parse(json, strlen(json), &p, err, sizeof(err));

	if (!ok(rc == LD_OK && p != NULL, "parses: %s", what))
		diag("error: %s", err);
	if (p == NULL)
		bail("cannot go on without '%s'", what);
	return p;
}

/* One bad file: LD_ERR_INVALID, no promo, and a message containing want. */
static void bad(const char *json, size_t len, const char *want)
{
	struct promo *p = (struct promo *)1;
	char err[256] = "";
	enum ld_err rc = promo_parse(json, len, &p, err, sizeof(err));

	ok(rc == LD_ERR_INVALID && p == NULL && strstr(err, want) != NULL, "rejected with '%s': %s",
	   want, err);
}

#define BAD(from, to, want) bad(mk(from, to), strlen(mk(from, to)), want)

static void t_fields(void)
{
	struct promo *p, *q;

	unsetenv("TZ");
	p = parse_ok(base, "lucky-dice-2024");
	ok(getenv("TZ") == NULL, "TZ is unset again after parsing");
	is_string(p->id, "lucky-dice-2024", "id");
	is_string(p->name, "\xed\x96\x89\xec\x9a\xb4 \xec\xa3\xbc\xec\x82\xac\xec\x9c\x84",
		  "name (UTF-8)");
	is_string(p->time_zone, "Asia/Seoul", "time_zone");
	is_string(p->first_day, "2024-07-08", "first_day");
	is_string(p->last_day, "2024-07-31", "last_day");
	is_int(p->ndays, 24, "ndays");
	ok(p->grant_visit == 1 && p->grant_inviter == 2 && p->grant_invitee == 3, "grants");
	is_int(p->max_credited_per_inviter, 30, "max_credited_per_inviter");
	is_int(p->invitee_new_within_ms, 24 * H, "invitee_new_within_ms");
	is_int(p->claims_per_client_per_day, 0, "no abuse section: no cap");
	is_int((long long)p->nprizes, 3, "nprizes");
	ok(p->prizes[0].release == RELEASE_MIDNIGHT && p->prizes[1].release == RELEASE_EVEN &&
		   p->prizes[2].release == RELEASE_MIDNIGHT,
	   "release kinds");
	is_int(p->prizes[0].daily_stock, 5000, "daily_stock");
	ok(promo_prize_find(p, "cake") == &p->prizes[1], "promo_prize_find");
	ok(promo_prize_find(p, "nope") == NULL, "promo_prize_find unknown");
	ok(p->json != NULL && strchr(p->json, '\n') == NULL &&
		   strstr(p->json, "\"id\":\"lucky-dice-2024\"") != NULL &&
		   strstr(p->json, "coffee/gifticon") != NULL,
	   "json is canonical and plain: %.60s...", p->json);
	setenv("TZ", "Europe/Paris", 1);
	q = parse_ok(p->json, "its own canonical json");
	is_string(getenv("TZ"), "Europe/Paris", "a set TZ is restored");
	unsetenv("TZ");
	is_string(q->json, p->json, "canonical json is a fixed point");
	promo_free(q);
	promo_free(p);

	p = parse_ok(mk("\"prizes\"",
			"\"abuse\": { \"claims_per_client_per_day\": 5 },"
			"\n  \"prizes\""),
		     "with abuse");
	is_int(p->claims_per_client_per_day, 5, "abuse.claims_per_client_per_day");
	promo_free(p);
	p = parse_ok(mk("\"invitee_new_within_hours\": 24", "\"invitee_new_within_hours\": 0.5"),
		     "fractional hours");
	is_int(p->invitee_new_within_ms, 1800000, "0.5 hours in ms");
	promo_free(p);
	p = parse_ok(mk("\"first_day\": \"2024-07-08\",\n  \"last_day\": \"2024-07-31\"",
			"\"first_day\": \"2024-01-01\",\n  \"last_day\": \"2024-12-31\""),
		     "366 days");
	is_int(p->ndays, 366, "a leap year is 366 days");
	promo_free(p);
}

static void t_calendar(void)
{
	struct promo *p = parse_ok(base, "Seoul");
	int64_t start = utc(2024, 7, 7, 15, 0, 0, 0);
	char name[11];

	is_int(p->day_start_ms[0], start, "day 0 starts 2024-07-07T15:00:00Z");
	is_int(p->day_start_ms[24], utc(2024, 7, 31, 15, 0, 0, 0),
	       "the end is 2024-07-31T15:00:00Z");
	is_int(promo_day(p, start - 1), -1, "14:59:59.999Z is before day 0");
	is_int(promo_day(p, start), 0, "15:00:00.000Z is day 0");
	is_int(promo_day(p, start + 24 * H - 1), 0, "day 0 ends after 24h");
	is_int(promo_day(p, start + 24 * H), 1, "then day 1");
	is_int(promo_day(p, utc(2024, 7, 31, 14, 59, 59, 999)), 23,
	       "2024-07-31T14:59:59.999Z is day 23");
	ok(promo_active(p, utc(2024, 7, 31, 14, 59, 59, 999)), "and active");
	is_int(promo_day(p, utc(2024, 7, 31, 15, 0, 0, 0)), 24, "2024-07-31T15:00:00Z is ndays");
	ok(!promo_active(p, utc(2024, 7, 31, 15, 0, 0, 0)), "and not active");
	ok(!promo_active(p, start - 1), "not active before day 0");
	is_int(promo_day(p, INT64_MIN), -1, "the distant past");
	is_int(promo_day(p, INT64_MAX), 24, "the distant future");

	promo_day_name(p, 0, name);
	is_string(name, "2024-07-08", "day 0 name");
	promo_day_name(p, 23, name);
	is_string(name, "2024-07-31", "day 23 name");
	promo_day_name(p, 24, name);
	is_string(name, "2024-08-01", "day 24 name (outside)");
	promo_day_name(p, -8, name);
	is_string(name, "2024-06-30", "day -8 name (outside)");
	is_int(promo_day_index(p, "2024-07-08"), 0, "index of the first day");
	is_int(promo_day_index(p, "2024-07-31"), 23, "index of the last day");
	is_int(promo_day_index(p, "2024-08-01"), -1, "index after the days");
	is_int(promo_day_index(p, "2024-07-07"), -1, "index before the days");
	is_int(promo_day_index(p, "2024-7-8"), -1, "index of a malformed day");
	is_int(promo_day_index(p, "2024-07-08x"), -1, "index with junk after");
	is_int(promo_utc_offset(p, start), 9 * 3600, "Seoul is UTC+9");
	promo_free(p);
}

static void t_dst(void)
{
	struct promo *p;
	struct promo_prize *cake;

	p = parse_ok(mk("\"time_zone\": \"Asia/Seoul\",\n  \"first_day\": \"2024-07-08\","
			"\n  \"last_day\": \"2024-07-31\"",
			"\"time_zone\": \"America/New_York\",\n  \"first_day\": "
			"\"2024-03-09\",\n  \"last_day\": \"2024-11-04\""),
		     "New York, March to November");
	is_int(p->day_start_ms[0], utc(2024, 3, 9, 5, 0, 0, 0),
	       "NY 2024-03-09 starts 05:00Z (EST)");
	is_int(p->day_start_ms[1] - p->day_start_ms[0], 24 * H, "2024-03-09: 24h");
	is_int(p->day_start_ms[2] - p->day_start_ms[1], 23 * H, "2024-03-10: 23h");
	is_int(p->day_start_ms[3] - p->day_start_ms[2], 24 * H, "2024-03-11: 24h");
	is_int(promo_day_index(p, "2024-11-03"), 239, "2024-11-03 is day 239");
	is_int(p->day_start_ms[239], utc(2024, 11, 3, 4, 0, 0, 0),
	       "NY 2024-11-03 starts 04:00Z (EDT)");
	is_int(p->day_start_ms[240] - p->day_start_ms[239], 25 * H, "2024-11-03: 25h");
	is_int(promo_utc_offset(p, p->day_start_ms[0]), -5 * 3600, "EST");
	is_int(promo_utc_offset(p, p->day_start_ms[3]), -4 * 3600, "EDT");

	/* RELEASE_EVEN over the 25-hour day. */
	cake = &p->prizes[1];
	is_int(promo_released(p, cake, 239, p->day_start_ms[239]), 0,
	       "even: nothing at the first instant");
	is_int(promo_released(p, cake, 239, p->day_start_ms[239] + H), 4,
	       "even: 1h of 25h opens 4 of 100");
	is_int(promo_released(p, cake, 239, p->day_start_ms[239] + 25 * H / 2), 50,
	       "even: half of a 25h day opens half");
	is_int(promo_released(p, cake, 239, p->day_start_ms[240] - 1), 99,
	       "even: 1ms before the end opens less than all");
	promo_free(p);

	/* Havana changes clocks at midnight: 2024-03-10 00:00 never happens
	 * and 2024-11-03 00:00 happens twice. */
	p = parse_ok(mk("\"time_zone\": \"Asia/Seoul\",\n  \"first_day\": \"2024-07-08\","
			"\n  \"last_day\": \"2024-07-31\"",
			"\"time_zone\": \"America/Havana\",\n  \"first_day\": "
			"\"2024-03-09\",\n  \"last_day\": \"2024-11-04\""),
		     "Havana");
	is_int(p->day_start_ms[1], utc(2024, 3, 10, 5, 0, 0, 0),
	       "a missing midnight: the day starts at the jump (01:00 CDT)");
	is_int(p->day_start_ms[1] - p->day_start_ms[0], 24 * H, "2024-03-09: 24h");
	is_int(p->day_start_ms[2] - p->day_start_ms[1], 23 * H, "2024-03-10: 23h");
	is_int(p->day_start_ms[239], utc(2024, 11, 3, 4, 0, 0, 0),
	       "a doubled midnight: the day starts at the first one");
	is_int(promo_day(p, utc(2024, 11, 3, 4, 59, 59, 999)), 239,
	       "between the two midnights is the new day");
	{
		/* The fast offset (from the calendar) agrees with the zone
		 * database at every quarter hour of every day. */
		int bad = 0;
		for (int64_t t = p->day_start_ms[0]; t < p->day_start_ms[p->ndays]; t += H / 4)
			bad += promo_utc_offset(p, t) != ld_zone_offset(p->time_zone, t);
		is_int(bad, 0, "promo_utc_offset agrees with the zone database all year (Havana)");
	}
	promo_free(p);
}

static void t_stock_and_pick(void)
{
	struct promo *p = parse_ok(base, "Seoul");
	const struct promo_prize *coffee = &p->prizes[0], *cake = &p->prizes[1];
	int64_t s = p->day_start_ms[3];

	is_int(promo_released(p, coffee, 3, s), 5000, "midnight: all at once");
	is_int(promo_released(p, coffee, 3, s - 1), 0, "midnight: none before the day");
	is_int(promo_released(p, coffee, -1, s), 0, "day -1 has no stock");
	is_int(promo_released(p, coffee, 24, s), 0, "day ndays has no stock");
	is_int(promo_released(p, cake, 3, s), 0, "even: 0 at the start");
	is_int(promo_released(p, cake, 3, s + 1), 0, "even: 0 after 1ms");
	is_int(promo_released(p, cake, 3, s + 12 * H), 50, "even: half at noon");
	is_int(promo_released(p, cake, 3, s + 12 * H - 1), 49, "even: floor");
	is_int(promo_released(p, cake, 3, s + 24 * H - 1), 99,
	       "even: 1ms before the end is less than the stock");
	is_int(promo_released(p, cake, 3, s + 24 * H), 100, "even: all at the end");

	ok(coffee->lo == 0 && coffee->hi == 50000000, "coffee slice [0, 5e7)");
	ok(cake->lo == 50000000 && cake->hi == 51000000, "cake slice [5e7, 5.1e7)");
	ok(p->prizes[2].lo == 51000000 && p->prizes[2].hi == 51000001, "1e-9 is exactly one unit");
	is_int(promo_pick(p, 0), 0, "pick 0");
	is_int(promo_pick(p, 49999999), 0, "pick last of coffee");
	is_int(promo_pick(p, 50000000), 1, "pick first of cake");
	is_int(promo_pick(p, 50999999), 1, "pick last of cake");
	is_int(promo_pick(p, 51000000), 2, "pick the voucher's only value");
	is_int(promo_pick(p, 51000001), -1, "pick a miss");
	is_int(promo_pick(p, PROMO_SCALE - 1), -1, "pick the top value");
	promo_free(p);

	p = parse_ok(mk("0.000000001", "0.949"), "probabilities add up to 1");
	is_int(p->prizes[2].hi, PROMO_SCALE, "the last slice ends at PROMO_SCALE");
	is_int(promo_pick(p, PROMO_SCALE - 1), 2, "so there is no miss");
	promo_free(p);
	p = parse_ok(mk("\"probability\": 0.05", "\"probability\": 0.9989999995"),
		     "a sum of 1 + 5e-10 is within the float slack");
	ok(p->prizes[2].hi == PROMO_SCALE && p->prizes[2].lo <= PROMO_SCALE &&
		   p->prizes[1].hi <= p->prizes[2].lo,
	   "and clamped to PROMO_SCALE");
	promo_free(p);
	p = parse_ok(with_prizes("[{\"id\": \"a\", \"name\": \"a\", \"daily_stock\": 1, "
				 "\"probability\": 0.1}, {\"id\": \"b\", \"name\": \"b\", "
				 "\"daily_stock\": 1, \"probability\": 0.7}]"),
		     "0.1 and 0.7");
	is_int(p->prizes[1].hi, 800000000,
	       "0.1 + 0.7 (799999999.99... in floating point) rounds to 8e8");
	promo_free(p);
	p = parse_ok(with_prizes("[]"), "no prizes");
	is_int((long long)p->nprizes, 0, "zero prizes");
	is_int(promo_pick(p, 0), -1, "every pick misses");
	promo_free(p);
}

static void t_bad(void)
{
	static char big[PROMO_FILE_MAX + 2];
	char prizes[4096], *q = prizes;
	struct promo *p = NULL;
	int i;

	bad("[]", 2, "promotion: not a JSON object");
	bad("", 0, "invalid JSON");
	bad(base, strlen(base) - 2, "invalid JSON");
	BAD("\n}\n", "\n} x", "invalid JSON at offset");
	BAD("\"cake\"", "'cake'", "invalid JSON");
	BAD("\"name\": \"cake\"", "\"name\": \"\xc0\xa0\"", "invalid UTF-8");
	BAD("\"prizes\"", "\"abuse\": [[[[[[[[[[[1]]]]]]]]]]], \"prizes\"", "nesting too deep");
	memset(big, ' ', sizeof(big));
	memcpy(big, base, strlen(base));
	bad(big, sizeof(big), "promotion: larger than");

	BAD("\"id\": \"lucky", "\"colour\": 1, \"id\": \"lucky", "colour: unknown key");
	BAD("\"visit\": 1", "\"bonus\": 1, \"visit\": 1", "grants.bonus: unknown key");
	BAD("\"release\": \"even\"", "\"weight\": 2", "prizes[1].weight: unknown key");
	BAD("\"id\": \"lucky-dice-2024\",", "", "id: is required");
	BAD("\"lucky-dice-2024\"", "\"lucky dice\"", "id: must be 1 to 64 characters");
	BAD("\"lucky-dice-2024\"",
	    "\"x123456789x123456789x123456789x123456789"
	    "x123456789x123456789x1234\"",
	    "id: must be a string of 1 to 64");
	BAD("\"lucky-dice-2024\"", "2024", "id: must be a string");
	BAD("\"time_zone\": \"Asia/Seoul\",", "", "time_zone: is required");
	BAD("\"Asia/Seoul\"", "\"Mars/Olympus\"", "time_zone: unknown time zone");
	BAD("\"Asia/Seoul\"", "\"../../../etc/passwd\"", "time_zone: unknown");
	BAD("\"Asia/Seoul\"", "\"/etc/localtime\"", "time_zone: unknown");
	BAD("\"Asia/Seoul\"", "\"Asia/../Asia/Seoul\"", "time_zone: unknown");
	BAD("\"Asia/Seoul\"", "\"Asia\"", "time_zone: unknown");
	BAD("\"Asia/Seoul\"", "\"zone.tab\"", "time_zone: unknown");
	BAD("\"Asia/Seoul\"", "\"\"", "time_zone: must be a string");
	BAD("\"2024-07-08\"", "\"2024-07-32\"", "first_day: not a date (YYYY-MM-DD)");
	BAD("\"2024-07-08\"", "\"2024-7-8\"", "first_day: not a date");
	BAD("\"2024-07-08\"", "\"2023-02-29\"", "first_day: not a date");
	BAD("\"2024-07-08\"", "20240708", "first_day: not a date");
	BAD("\"2024-07-31\"", "\"2024-07-31T00:00\"", "last_day: not a date");
	BAD("\"2024-07-31\"", "\"2024-07-07\"", "last_day: before first_day");
	BAD("\"2024-07-31\"", "\"2025-07-09\"", "last_day: more than 366 days");
	BAD("\"grants\": { \"visit\": 1, \"inviter\": 2, \"invitee\": 3 },", "",
	    "grants: is required");
	BAD("{ \"visit\": 1, \"inviter\": 2, \"invitee\": 3 }", "[1, 2, 3]",
	    "grants: must be an object");
	BAD("\"visit\": 1", "\"visit\": 1001", "grants.visit: must be an integer from 0 to 1000");
	BAD("\"visit\": 1", "\"visit\": true", "grants.visit: must be an integer");
	BAD("\"visit\": 1", "\"visit\": \"1\"", "grants.visit: must be an integer");
	BAD("\"inviter\": 2, ", "", "grants.inviter: is required");
	BAD("\"max_credited_per_inviter\": 30", "\"max_credited_per_inviter\": -1",
	    "invites.max_credited_per_inviter: must be an integer from 0 to 1000000");
	BAD("within_hours\": 24", "within_hours\": 0",
	    "invites.invitee_new_within_hours: must be more than 0");
	BAD("within_hours\": 24", "within_hours\": 8761",
	    "invites.invitee_new_within_hours: must be a number from 0 to 8760");
	BAD("\"prizes\"", "\"abuse\": { \"claims_per_client_per_day\": 1.5 }, \"prizes\"",
	    "abuse.claims_per_client_per_day: must be an integer");
	BAD("\"prizes\"", "\"abuse\": 5, \"prizes\"", "abuse: must be an object");
	BAD("\"name\": \"cake\"", "\"name\": \"\"", "prizes[1].name: must be a string of 1 to 200");
	BAD("\"name\": \"cake\"", "\"name\": \"a\\nb\"",
	    "prizes[1].name: must not contain control characters");
	BAD("\"probability\": 0.001", "\"probability\": 1.5",
	    "prizes[1].probability: must be a number from 0 to 1");
	BAD("\"probability\": 0.001", "\"probability\": -0.1",
	    "prizes[1].probability: must be a number from 0 to 1");
	BAD("\"probability\": 0.001", "\"probability\": \"0.1\"",
	    "prizes[1].probability: must be a number");
	BAD("\"probability\": 0.001", "\"probability\": 1e400",
	    "prizes[1].probability: must be a number");
	BAD("\"probability\": 0.001", "\"probability\": 0.96",
	    "prizes: probabilities add up to 1.01");
	BAD("\"id\": \"cake\"", "\"id\": \"coffee\"", "prizes[1].id: duplicate \"coffee\"");
	BAD("\"id\": \"cake\"", "\"id\": \"ca ke\"", "prizes[1].id: must be 1 to 64");
	BAD("\"daily_stock\": 100", "\"daily_stock\": 1.5",
	    "prizes[1].daily_stock: must be an integer from 0 to 1000000000");
	BAD("\"daily_stock\": 100", "\"daily_stock\": 1e2",
	    "prizes[1].daily_stock: must be an integer");
	BAD("\"daily_stock\": 100", "\"daily_stock\": 99999999999999999999",
	    "prizes[1].daily_stock: must be an integer");
	BAD("\"daily_stock\": 100", "\"daily_stock\": -9223372036854775809",
	    "prizes[1].daily_stock: must be an integer");
	BAD("\"daily_stock\": 100", "\"daily_stock\": 1000000001",
	    "prizes[1].daily_stock: must be an integer");
	BAD("\"daily_stock\": 100, ", "", "prizes[1].daily_stock: is required");
	BAD("\"release\": \"even\"", "\"release\": \"dawn\"",
	    "prizes[1].release: must be \"midnight\" or \"even\"");
	BAD("{ \"id\": \"coffee\"", "7, { \"id\": \"coffee\"", "prizes[0]: must be an object");
	bad(with_prizes("{}"), strlen(with_prizes("{}")), "prizes: must be an array");
	bad(with_prizes("null"), strlen(with_prizes("null")), "prizes: is required");
	BAD("\"prizes\": [", "\"prizes\": 3, \"x\": [", "x: unknown key");

	q += sprintf(q, "[");
	for (i = 0; i < PROMO_MAX_PRIZES + 1; i++)
		q += sprintf(q,
			     "%s{\"id\": \"p%d\", \"name\": \"p\", \"daily_stock\": 1, "
			     "\"probability\": 0}",
			     i ? "," : "", i);
	sprintf(q, "]");
	bad(with_prizes(prizes), strlen(with_prizes(prizes)), "prizes: at most 32 prizes");
	strcpy(strstr(prizes, ",{\"id\": \"p32\""), "]"); /* drop the 33rd */
	q = (char *)with_prizes(prizes);
	ok(promo_parse(q, strlen(q), &p, big, sizeof(big)) == LD_OK && p->nprizes == 32,
	   "32 prizes are fine");
	if (p == NULL)
		diag("%s", big);
	promo_free(p);
}

int main(void)
{
	t_fields();
	t_calendar();
	t_dst();
	t_stock_and_pick();
	t_bad();
	return done_testing();
}
