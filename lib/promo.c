/*
 * promo.c - promotion definitions and their calendar.
 *
 * promo_parse checks a promotion file field by field (every message names
 * the field's path, "prizes[1].probability: ..."), then works out once the
 * UTC instant of every local midnight of the promotion (ld_zone_midnights),
 * so that the request path only binary-searches an array and never
 * touches TZ.
 */
#include <math.h> /* isfinite only: no libm needed */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "promo.h"

#define PROMO_DEPTH    10
#define NAME_MAX_BYTES 200
#define ZONE_MAX       64

/*
 * A parse in progress: where messages go and the path of the object being
 * read, with a trailing dot ("", "grants.", "prizes[3].").
 */
struct pparse {
	char *err;
	size_t errlen;
	char at[64];
};

static int perr(struct pparse *pp, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Sets "<at><key>: <message>" and returns -1, so "return perr(...)" reads. */
static int perr(struct pparse *pp, const char *key, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	if (pp->err == NULL || pp->errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(pp->err, pp->errlen, "%s%s: %s", pp->at, key, msg);
	return -1;
}

/* Rejects any key of obj not in allowed (NULL-terminated), naming it with
 * anything but printable ASCII shown as '?'. */
static int check_keys(struct pparse *pp, struct json_object *obj, const char *const *allowed)
{
	json_object_object_foreach(obj, key, val)
	{
		const char *const *a;
		char shown[44];
		size_t i;

		(void)val;
		for (a = allowed; *a != NULL && strcmp(key, *a) != 0; a++)
			;
		if (*a != NULL)
			continue;
		for (i = 0; key[i] != '\0' && i < 40; i++)
			shown[i] = key[i] >= 0x20 && key[i] < 0x7f ? key[i] : '?';
		shown[i] = '\0';
		return perr(pp, shown, "unknown key");
	}
	return 0;
}

/* The member key of obj, or NULL when absent or null. */
static struct json_object *member(struct json_object *obj, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return v;
}

/* The object member key, checked against its allowed keys, or NULL. */
static struct json_object *get_object(struct pparse *pp, struct json_object *obj, const char *key,
				      const char *const *allowed)
{
	struct json_object *v = member(obj, key);

	if (v == NULL)
		perr(pp, key, "is required");
	else if (!json_object_is_type(v, json_type_object))
		perr(pp, key, "must be an object");
	else {
		snprintf(pp->at, sizeof(pp->at), "%s.", key);
		if (check_keys(pp, v, allowed) == 0)
			return v;
	}
	return NULL;
}

/*
 * An integer member in [min, max]. json-c clamps what it cannot hold and
 * keeps 1.5 as a double, so the type must be int and the range is checked
 * here (every max is far below the clamp). An absent optional member
 * leaves *out alone.
 */
static int get_int(struct pparse *pp, struct json_object *obj, const char *key, int required,
		   int64_t min, int64_t max, int64_t *out)
{
	struct json_object *v = member(obj, key);
	int64_t x;

	if (v == NULL)
		return required ? perr(pp, key, "is required") : 0;
	x = json_object_get_int64(v);
	if (!json_object_is_type(v, json_type_int) || x < min || x > max)
		return perr(pp, key, "must be an integer from %lld to %lld", (long long)min,
			    (long long)max);
	*out = x;
	return 0;
}

/* A required number member (integer or not), finite, in [min, max]. */
static int get_number(struct pparse *pp, struct json_object *obj, const char *key, double min,
		      double max, double *out)
{
	struct json_object *v = member(obj, key);
	double x;

	if (v == NULL)
		return perr(pp, key, "is required");
	x = json_object_get_double(v);
	if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) ||
	    !isfinite(x) || x < min || x > max)
		return perr(pp, key, "must be a number from %g to %g", min, max);
	*out = x;
	return 0;
}

/* A required string member of 1..max bytes (ld_json_parse already made it
 * valid UTF-8 without NUL), borrowed, or NULL. */
static const char *get_string(struct pparse *pp, struct json_object *obj, const char *key,
			      size_t max)
{
	struct json_object *v = member(obj, key);
	size_t n;

	if (v == NULL) {
		perr(pp, key, "is required");
		return NULL;
	}
	if (!json_object_is_type(v, json_type_string) ||
	    (n = (size_t)json_object_get_string_len(v)) == 0 || n > max) {
		perr(pp, key, "must be a string of 1 to %zu bytes", max);
		return NULL;
	}
	return json_object_get_string(v);
}

/* A display name, 1..200 bytes without control characters, copied. */
static char *get_name(struct pparse *pp, struct json_object *obj)
{
	const char *s = get_string(pp, obj, "name", NAME_MAX_BYTES);
	const unsigned char *q;

	for (q = (const unsigned char *)s; q != NULL && *q != '\0'; q++) {
		if (*q < 0x20 || *q == 0x7f) {
			perr(pp, "name", "must not contain control characters");
			return NULL;
		}
	}
	return s != NULL ? xstrdup(s) : NULL;
}

/* The "id" member: 1..max of [A-Za-z0-9_-], copied into out. */
static int get_ident(struct pparse *pp, struct json_object *obj, size_t max, char *out)
{
	const char *s = get_string(pp, obj, "id", max);

	if (s == NULL)
		return -1;
	if (!ld_is_ident(s, max))
		return perr(pp, "id",
			    "must be 1 to %zu characters of A-Z, a-z, "
			    "0-9, _ and -",
			    max);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* Day number (days since 1970-01-01) of a real date "YYYY-MM-DD" with a
 * year from 1970 to 9999, or -1 when s is anything else. */
static int64_t parse_date(const char *s)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int i, y, m, d, leap;

	for (i = 0; i < 10; i++)
		if ((i == 4 || i == 7) ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
			return -1;
	if (s[10] != '\0')
		return -1;
	y = atoi(s);
	m = atoi(s + 5);
	d = atoi(s + 8);
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && leap))
		return -1;
	return ld_days_from_civil(y, m, d);
}

/* A date member into buf and its day number. */
static int get_date(struct pparse *pp, struct json_object *obj, const char *key, char buf[11],
		    int64_t *dn)
{
	struct json_object *v = member(obj, key);

	if (v == NULL)
		return perr(pp, key, "is required");
	if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) != 10 ||
	    (*dn = parse_date(json_object_get_string(v))) == -1)
		return perr(pp, key, "not a date (YYYY-MM-DD)");
	memcpy(buf, json_object_get_string(v), 11);
	return 0;
}

/* Fills p->day_start_ms from first_day, ndays and time_zone. */
static void promo_calendar(struct promo *p)
{
	p->day_start_ms = xcalloc((size_t)p->ndays + 1, sizeof(int64_t));
	ld_zone_midnights(p->time_zone, parse_date(p->first_day), p->ndays + 1, p->day_start_ms);
}

static const char *const top_keys[] = { "id",     "name",    "time_zone", "first_day", "last_day",
					"grants", "invites", "abuse",     "prizes",    NULL };
static const char *const grant_keys[] = { "visit", "inviter", "invitee", NULL };
static const char *const invite_keys[] = { "max_credited_per_inviter", "invitee_new_within_hours",
					   NULL };
static const char *const abuse_keys[] = { "claims_per_client_per_day", NULL };
static const char *const prize_keys[] = { "id",      "name",         "daily_stock", "probability",
					  "release", "stock_by_day", NULL };

/* Reads prize i (object v) into z. */
static int parse_prize(struct pparse *pp, struct json_object *v, size_t i, struct promo_prize *z)
{
	struct json_object *rel;
	const char *s;
	char key[24];

	snprintf(key, sizeof(key), "prizes[%zu]", i);
	pp->at[0] = '\0';
	if (!json_object_is_type(v, json_type_object))
		return perr(pp, key, "must be an object");
	snprintf(pp->at, sizeof(pp->at), "%s.", key);
	if (check_keys(pp, v, prize_keys) == -1 || get_ident(pp, v, PRIZE_ID_MAX, z->id) == -1 ||
	    (z->name = get_name(pp, v)) == NULL ||
	    get_int(pp, v, "daily_stock", 1, 0, 1000000000, &z->daily_stock) == -1 ||
	    get_number(pp, v, "probability", 0, 1, &z->probability) == -1)
		return -1;
	z->release = RELEASE_MIDNIGHT;
	if ((rel = member(v, "release")) == NULL)
		return 0;
	s = json_object_is_type(rel, json_type_string) ? json_object_get_string(rel) : "";
	if (strcmp(s, "even") == 0)
		z->release = RELEASE_EVEN;
	else if (strcmp(s, "midnight") != 0)
		return perr(pp, "release", "must be \"midnight\" or \"even\"");
	return 0;
}

/*
 * Gives every prize its stock per day: daily_stock, except the days named
 * in the prize's optional "stock_by_day" object ({"YYYY-MM-DD": n}), which
 * must be days of the promotion. Runs after the calendar is known.
 */
static int parse_stock_by_day(struct pparse *pp, struct promo *p, struct json_object *root)
{
	struct json_object *arr = member(root, "prizes");

	for (size_t i = 0; i < p->nprizes; i++) {
		struct promo_prize *z = &p->prizes[i];
		struct json_object *by;
		char key[48];

		z->stock = xcalloc((size_t)p->ndays, sizeof *z->stock);
		for (int d = 0; d < p->ndays; d++)
			z->stock[d] = z->daily_stock;
		by = member(json_object_array_get_idx(arr, i), "stock_by_day");
		if (by == NULL)
			continue;
		snprintf(key, sizeof key, "prizes[%zu].stock_by_day", i);
		pp->at[0] = '\0';
		if (!json_object_is_type(by, json_type_object))
			return perr(pp, key, "must be an object of \"YYYY-MM-DD\": stock");
		snprintf(pp->at, sizeof pp->at, "%s.", key);
		json_object_object_foreach(by, day, v)
		{
			int d = promo_day_index(p, day);
			int64_t n;
			if (d < 0)
				return perr(pp, day, "not a day of the promotion");
			if (get_int(pp, by, day, 1, 0, 1000000000, &n) == -1)
				return -1;
			(void)v;
			z->stock[d] = n;
		}
	}
	pp->at[0] = '\0';
	return 0;
}

/*
 * Reads the prizes array and gives each prize its slice [lo, hi) of
 * [0, PROMO_SCALE): hi is the cumulative probability scaled and rounded,
 * lo the previous hi, so nine-decimal probabilities are exact and the
 * slices never overlap or pass PROMO_SCALE.
 */
static int parse_prizes(struct pparse *pp, struct promo *p, struct json_object *root)
{
	struct json_object *arr = member(root, "prizes");
	double sum = 0;
	uint32_t lo = 0;
	size_t i, j, n;

	if (arr == NULL)
		return perr(pp, "prizes", "is required");
	if (!json_object_is_type(arr, json_type_array))
		return perr(pp, "prizes", "must be an array");
	if ((n = json_object_array_length(arr)) > PROMO_MAX_PRIZES)
		return perr(pp, "prizes", "at most %d prizes", PROMO_MAX_PRIZES);
	p->prizes = xcalloc(n, sizeof(*p->prizes));
	for (i = 0; i < n; i++) {
		struct promo_prize *z = &p->prizes[i];
		int64_t hi;

		p->nprizes = i + 1; /* so promo_free frees the names so far */
		if (parse_prize(pp, json_object_array_get_idx(arr, i), i, z) == -1)
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(p->prizes[j].id, z->id) == 0)
				return perr(pp, "id", "duplicate \"%s\"", z->id);
		pp->at[0] = '\0';
		sum += z->probability;
		if (sum > 1 + 1e-9)
			return perr(pp, "prizes",
				    "probabilities add up to %.9g, "
				    "more than 1",
				    sum);
		hi = (int64_t)(sum * PROMO_SCALE + 0.5); /* round; sum >= 0 */
		z->lo = lo;
		z->hi = hi >= (int64_t)PROMO_SCALE ? PROMO_SCALE
			: hi <= (int64_t)lo        ? lo
						   : (uint32_t)hi;
		lo = z->hi;
	}
	return 0;
}

/* Reads root (an object) into p. */
static int promo_fields(struct pparse *pp, struct promo *p, struct json_object *root)
{
	struct json_object *o;
	const char *s;
	int64_t first, last;
	double hours;

	if (check_keys(pp, root, top_keys) == -1 ||
	    get_ident(pp, root, PROMO_ID_MAX, p->id) == -1 ||
	    (p->name = get_name(pp, root)) == NULL ||
	    (s = get_string(pp, root, "time_zone", ZONE_MAX)) == NULL)
		return -1;
	if (!ld_zone_exists(s))
		return perr(pp, "time_zone", "unknown time zone \"%s\"", s);
	p->time_zone = xstrdup(s);

	if (get_date(pp, root, "first_day", p->first_day, &first) == -1 ||
	    get_date(pp, root, "last_day", p->last_day, &last) == -1)
		return -1;
	if (last < first)
		return perr(pp, "last_day", "before first_day");
	if (last - first + 1 > PROMO_MAX_DAYS)
		return perr(pp, "last_day", "more than %d days after first_day", PROMO_MAX_DAYS);
	p->ndays = (int)(last - first + 1);

	if ((o = get_object(pp, root, "grants", grant_keys)) == NULL ||
	    get_int(pp, o, "visit", 1, 0, 1000, &p->grant_visit) == -1 ||
	    get_int(pp, o, "inviter", 1, 0, 1000, &p->grant_inviter) == -1 ||
	    get_int(pp, o, "invitee", 1, 0, 1000, &p->grant_invitee) == -1)
		return -1;
	pp->at[0] = '\0';
	if ((o = get_object(pp, root, "invites", invite_keys)) == NULL ||
	    get_int(pp, o, "max_credited_per_inviter", 1, 0, 1000000,
		    &p->max_credited_per_inviter) == -1 ||
	    get_number(pp, o, "invitee_new_within_hours", 0, 8760, &hours) == -1)
		return -1;
	p->invitee_new_within_ms = (int64_t)(hours * 3600000.0 + 0.5);
	if (p->invitee_new_within_ms < 1)
		return perr(pp, "invitee_new_within_hours", "must be more than 0");
	pp->at[0] = '\0';
	if (member(root, "abuse") != NULL &&
	    ((o = get_object(pp, root, "abuse", abuse_keys)) == NULL ||
	     get_int(pp, o, "claims_per_client_per_day", 0, 0, 1000000,
		     &p->claims_per_client_per_day) == -1))
		return -1;
	pp->at[0] = '\0';
	return parse_prizes(pp, p, root);
}

enum ld_err promo_parse(const char *json, size_t len, struct promo **out, char *err, size_t errlen)
{
	struct pparse pp = { err, errlen, "" };
	struct json_object *root;
	struct promo *p;

	*out = NULL;
	if (len > PROMO_FILE_MAX) {
		perr(&pp, "promotion", "larger than %d bytes", PROMO_FILE_MAX);
		return LD_ERR_INVALID;
	}
	if ((root = ld_json_parse(json, len, PROMO_DEPTH, err, errlen)) == NULL)
		return LD_ERR_INVALID;
	if (!json_object_is_type(root, json_type_object)) {
		perr(&pp, "promotion", "not a JSON object");
		json_object_put(root);
		return LD_ERR_INVALID;
	}
	p = xcalloc(1, sizeof(*p));
	if (promo_fields(&pp, p, root) == -1) {
		json_object_put(root);
		promo_free(p);
		return LD_ERR_INVALID;
	}
	promo_calendar(p);
	if (parse_stock_by_day(&pp, p, root) == -1) {
		json_object_put(root);
		promo_free(p);
		return LD_ERR_INVALID;
	}
	p->json = xstrdup(json_object_to_json_string_ext(
		root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	*out = p;
	return LD_OK;
}

void promo_free(struct promo *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nprizes; i++) {
		free(p->prizes[i].name);
		free(p->prizes[i].stock);
	}
	free(p->prizes);
	free(p->name);
	free(p->time_zone);
	free(p->day_start_ms);
	free(p->json);
	free(p->paused_reason);
	free(p);
}

int promo_day(const struct promo *p, int64_t now_ms)
{
	int lo = 0, hi = p->ndays;

	if (now_ms < p->day_start_ms[0])
		return -1;
	if (now_ms >= p->day_start_ms[p->ndays])
		return p->ndays;
	/* day_start_ms[lo] <= now_ms < day_start_ms[hi] */
	while (hi - lo > 1) {
		int mid = lo + (hi - lo) / 2;

		if (p->day_start_ms[mid] <= now_ms)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

int promo_active(const struct promo *p, int64_t now_ms)
{
	int d = promo_day(p, now_ms);

	return d >= 0 && d < p->ndays;
}

void promo_day_name(const struct promo *p, int d, char buf[11])
{
	int64_t y;
	int m, dd;

	ld_civil_from_days(parse_date(p->first_day) + d, &y, &m, &dd);
	if (y < 0 || y > 9999) {
		memcpy(buf, "0000-00-00", 11);
		return;
	}
	snprintf(buf, 11, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 13u,
		 (unsigned)dd % 32u);
}

int promo_day_index(const struct promo *p, const char *name)
{
	int64_t dn = name != NULL && strlen(name) == 10 ? parse_date(name) : -1;
	int64_t d;

	if (dn == -1)
		return -1;
	d = dn - parse_date(p->first_day);
	return d >= 0 && d < p->ndays ? (int)d : -1;
}

struct json_object *promo_time_json(const struct promo *p, int64_t ms)
{
	char buf[32];

	ld_iso_time(ms, promo_utc_offset(p, ms), buf);
	return json_object_new_string(buf);
}

int32_t promo_utc_offset(const struct promo *p, int64_t ms)
{
	return ld_zone_offset(p->time_zone, ms);
}

/*
 * RELEASE_EVEN opens floor(stock * elapsed / length) of day d, in exact
 * integer arithmetic (128-bit product), so 0 at the day's first instant
 * and the whole stock only at its end. Nothing is open before day d
 * starts or for a day outside the promotion.
 */
int64_t promo_released(const struct promo *p, const struct promo_prize *z, int d, int64_t now_ms)
{
	int64_t start, end;

	if (d < 0 || d >= p->ndays || z->stock[d] <= 0)
		return 0;
	start = p->day_start_ms[d];
	end = p->day_start_ms[d + 1];
	if (now_ms < start)
		return 0;
	if (z->release == RELEASE_MIDNIGHT || now_ms >= end || end <= start)
		return z->stock[d];
	return (int64_t)((__int128)z->stock[d] * (now_ms - start) / (end - start));
}

int promo_pick(const struct promo *p, uint32_t r)
{
	size_t i;

	for (i = 0; i < p->nprizes; i++)
		if (p->prizes[i].lo <= r && r < p->prizes[i].hi)
			return (int)i;
	return -1;
}

const struct promo_prize *promo_prize_find(const struct promo *p, const char *id)
{
	size_t i;

	for (i = 0; i < p->nprizes; i++)
		if (strcmp(p->prizes[i].id, id) == 0)
			return &p->prizes[i];
	return NULL;
}

int64_t promo_stock(const struct promo *p, const struct promo_prize *z, int d)
{
	return d < 0 || d >= p->ndays ? 0 : z->stock[d];
}
