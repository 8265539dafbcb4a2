/*
 * t/unit/body.c - cgi/body.c: a request body to a validated JSON object,
 * or the 400 to answer with its code and a message naming the field.
 * Strict JSON only, an object only, each field once, only the fields of
 * the table, required ones there, every value an identifier string of
 * the allowed length; text, token and integer fields of the console's
 * bodies. The member count that finds a duplicate key is tested on its
 * own (the file is included for its static functions).
 */
#include <string.h>

#include <json-c/json.h>

#include "../../cgi/body.c"
#include "../tap.h"

static const struct http_field fields[] = {
	{ "code", 1, 1, 10, FIELD_IDENT },
	{ "note", 0, 0, 8, FIELD_IDENT },
};

/* The console's kinds of field. */
static const struct http_field console[] = {
	{ "amount", 1, 1, 1000, FIELD_INT },
	{ "reason", 0, 1, 16, FIELD_TEXT },
	{ "token", 0, 4, 20, FIELD_TOKEN },
};

static const struct http_field *table = fields;
static size_t ntable = 2;

/* Parses s (len bytes, or strlen when len is 0 and s not empty) against
 * table; checks the problem's code (NULL: a success) and that its
 * message holds want. */
static void check(const char *s, size_t len, const char *code, const char *want, const char *what)
{
	struct body_problem p = { 0 };
	struct json_object *o;

	if (!len)
		len = strlen(s);
	o = body_parse(s, len, table, ntable, &p);
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
		"{}",
		"{\"a\":\"b\"}",
		"{\"a\":\"b\",\"c\":\"d\"}",
		"{\"a\":\"x:y\"}",
		"{\"a\":\"\\\":\"}",
		"{\"a\":{\"b\":1,\"c\":2}}",
		"{\"a\":[1,{\"b\":2}]}",
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
		   strcmp(json_object_get_string(v), "abc-DEF_9") == 0,
	   "a good body gives its object");
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

	table = console;
	ntable = 3;
	check("{\"amount\":5,\"reason\":\"\xec\x82\xac\xea\xb3\xbc \xeb\xb3\xb4\xec\x83\x81\",\"token\":\"op.a.1.2.x\"}",
	      0, NULL, NULL, "an integer, Korean text, a token with dots");
	check("{\"amount\":1000}", 0, NULL, NULL, "the integer at its top");
	check("{\"amount\":0}", 0, "invalid_field", "from 1 to 1000", "below the range");
	check("{\"amount\":1001}", 0, "invalid_field", "from 1 to 1000", "above the range");
	check("{\"amount\":-5}", 0, "invalid_field", "from 1 to 1000", "negative");
	check("{\"amount\":99999999999999999999999}", 0, "invalid_field", "from 1 to 1000",
	      "past 64 bits (json-c clamps it)");
	check("{\"amount\":\"5\"}", 0, "invalid_field", "must be an integer", "a string of digits");
	check("{\"amount\":1.5}", 0, "invalid_field", "must be an integer", "a real number");
	check("{\"amount\":5.0}", 0, "invalid_field", "must be an integer", "5.0");
	check("{\"amount\":true}", 0, "invalid_field", "must be an integer", "a boolean");
	check("{\"amount\":1,\"reason\":\"a\\nb\"}", 0, "invalid_field", "bytes of text",
	      "a newline in text");
	check("{\"amount\":1,\"reason\":\"a\\u007fb\"}", 0, "invalid_field", "bytes of text",
	      "DEL in text");
	check("{\"amount\":1,\"reason\":\"\xec\x82\xac\xea\xb3\xbc\xec\x82\xac\xea\xb3\xbc\xec\x82\xac\xea\xb3\xbc\"}",
	      0, "invalid_field", "1 to 16 bytes", "text longer in bytes than allowed");
	check("{\"amount\":1,\"reason\":\"\"}", 0, "invalid_field", "1 to 16 bytes", "empty text");
	check("{\"amount\":1,\"token\":\"op.a b\"}", 0, "invalid_field", "_ - .",
	      "a space in a token");
	check("{\"amount\":1,\"token\":\"op/x.1\"}", 0, "invalid_field", "_ - .",
	      "a slash in a token");
	return done_testing();
}
