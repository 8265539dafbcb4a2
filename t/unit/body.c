/*
 * t/unit/body.c - cgi/body.c: a request body to a validated JSON object,
 * or the 400 to answer with its code and a message naming the field.
 * Strict JSON only, an object only, each field once, only the fields of
 * the table, required ones there, every value an identifier string of
 * the allowed length. The member count that finds a duplicate key is
 * tested on its own (the file is included for its static functions).
 */
#include <string.h>

#include <json-c/json.h>

#include "../../cgi/body.c"
#include "../tap.h"

static const struct http_field fields[] = {
	{ "code", 1, 1, 10 },
	{ "note", 0, 0, 8 },
};

/* Parses s (len bytes, or strlen when len is 0 and s not empty); checks
 * the problem's code (NULL: a success) and that its message holds want. */
static void check(const char *s, size_t len, const char *code, const char *want,
		  const char *what)
{
	struct body_problem p = { 0 };
	struct json_object *o;

	if (!len)
		len = strlen(s);
	o = body_parse(s, len, fields, 2, &p);
	if (!code) {
		ok(o != NULL, "%s: accepted", what);
	} else {
		ok(!o && p.status == 400 && p.code && strcmp(p.code, code) == 0 &&
		   strstr(p.message, want) != NULL,
		   "%s: 400 %s (%s: %s)", what, code, p.code ? p.code : "-", p.message);
	}
	if (o)
		json_object_put(o);
}

static void test_members(void)
{
	static const char *const s[] = {
		"{}", "{\"a\":\"b\"}", "{\"a\":\"b\",\"c\":\"d\"}", "{\"a\":\"x:y\"}",
		"{\"a\":\"\\\":\"}", "{\"a\":{\"b\":1,\"c\":2}}", "{\"a\":[1,{\"b\":2}]}",
	};
	static const size_t want[] = { 0, 1, 2, 1, 1, 1, 1 };

	for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
		is_int((long long)count_members(s[i], strlen(s[i])), (long long)want[i],
		       "count_members('%s'): colons at depth 1 outside strings", s[i]);
}

int main(void)
{
	struct body_problem p;
	struct json_object *o, *v;

	test_members();

	const char *good = "{\"code\":\"abc-DEF_9\",\"note\":\"n1\"}";
	o = body_parse(good, strlen(good), fields, 2, &p);
	ok(o && json_object_object_get_ex(o, "code", &v) &&
	   strcmp(json_object_get_string(v), "abc-DEF_9") == 0, "a good body gives its object");
	if (o)
		json_object_put(o);
	o = body_parse("", 0, NULL, 0, &p);
	ok(o && json_object_is_type(o, json_type_object) && json_object_object_length(o) == 0,
	   "an empty body is {}");
	if (o)
		json_object_put(o);
	check("{\"code\":\"abc\"}", 0, NULL, NULL, "an optional field left out");
	check("{\"code\":\"abc\",\"note\":\"\"}", 0, NULL, NULL, "an optional field empty");

	check("{\"code\":\"a\"\0}", 13, "bad_json", "NUL byte", "a NUL byte");
	check("{\"code\":", 0, "bad_json", "not valid JSON", "a body cut short");
	check("{\"code\":\"abc\"} x", 0, "bad_json", "not valid JSON", "trailing garbage");
	check("{'code':'abc'}", 0, "bad_json", "not valid JSON", "single quotes");
	check("[\"abc\"]", 0, "bad_json", "must be a JSON object", "an array");
	check("\"abc\"", 0, "bad_json", "must be a JSON object", "a string");
	check("{\"code\":{\"a\":{\"b\":{\"c\":{\"d\":1}}}}}", 0, "bad_json", "not valid JSON",
	      "nesting past the depth limit");
	check("{\"code\":\"abc\",\"code\":\"def\"}", 0, "duplicate_field", "more than once",
	      "a field twice");
	check("{\"code\":\"abc\",\"extra\":\"x\"}", 0, "unknown_field", "'extra'",
	      "a field not in the table");
	check("{\"note\":\"n\"}", 0, "missing_field", "'code'", "a required field left out");
	check("{}", 0, "missing_field", "'code'", "an empty object");
	check("{\"code\":12}", 0, "invalid_field", "'code' must be a string", "a number");
	check("{\"code\":null}", 0, "invalid_field", "must be a string", "null");
	check("{\"code\":\"\"}", 0, "invalid_field", "1 to 10 characters", "shorter than allowed");
	check("{\"code\":\"abcdefghijk\"}", 0, "invalid_field", "1 to 10 characters",
	      "longer than allowed");
	check("{\"code\":\"a b\"}", 0, "invalid_field", "A-Z a-z 0-9 _ -", "a space");
	check("{\"code\":\"a\\u0000b\"}", 0, "bad_json", "\\u0000", "an escaped NUL");
	check("{\"code\":\"\xc3\xa9t\xc3\xa9\"}", 0, "invalid_field", "'code'", "not ASCII");
	return done_testing();
}
