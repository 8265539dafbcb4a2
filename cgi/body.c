/*
 * body.c - JSON request bodies: strict parsing (lib's ld_json_parse) and
 * validation against a table of fields.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "body.h"
#include "ld.h"

static struct json_object *problem(struct body_problem *p, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static struct json_object *problem(struct body_problem *p, const char *code, const char *fmt, ...)
{
	va_list ap;

	p->status = 400;
	p->code = code;
	va_start(ap, fmt);
	vsnprintf(p->message, sizeof p->message, fmt, ap);
	va_end(ap);
	return NULL;
}

/*
 * Counts the members of the top-level object in s (valid JSON, already
 * parsed): the colons outside strings at depth 1. json-c keeps only the
 * last of duplicate keys, so a count above the object's length means a
 * key came twice.
 */
static size_t count_members(const char *s, size_t len)
{
	size_t n = 0;
	int depth = 0, in_str = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"')
			in_str = 1;
		else if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']')
			depth--;
		else if (c == ':' && depth == 1)
			n++;
	}
	return n;
}

/* Whether s (len bytes) is a string of kind: no control characters in
 * text (the parser made sure it is UTF-8), only [A-Za-z0-9_.-] in a
 * token, only [A-Za-z0-9_-] in an identifier. */
static int string_ok(const char *s, size_t len, enum http_field_kind kind)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int ident = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') || c == '_' || c == '-';

		if (kind == FIELD_TEXT            ? c < 0x20 || c == 0x7f
			    : kind == FIELD_TOKEN ? !ident && c != '.'
						  : !ident)
			return 0;
	}
	return 1;
}

/* Checks one present field's value v; NULL and *p when it is wrong. */
static struct json_object *check_value(struct json_object *obj, const struct http_field *f,
				       struct json_object *v, struct body_problem *p)
{
	size_t len;

	if (f->kind == FIELD_INT) {
		int64_t n;
		if (!json_object_is_type(v, json_type_int))
			return problem(p, "invalid_field", "field '%s' must be an integer",
				       f->name);
		n = json_object_get_int64(v);
		/* json-c clamps what does not fit into INT64 to its ends */
		if (n < (int64_t)f->min_len || n > (int64_t)f->max_len)
			return problem(p, "invalid_field", "field '%s' must be from %zu to %zu",
				       f->name, f->min_len, f->max_len);
		return obj;
	}
	if (!json_object_is_type(v, json_type_string))
		return problem(p, "invalid_field", "field '%s' must be a string", f->name);
	len = (size_t)json_object_get_string_len(v);
	if (len < f->min_len || len > f->max_len || strlen(json_object_get_string(v)) != len ||
	    !string_ok(json_object_get_string(v), len, f->kind))
		return problem(p, "invalid_field",
			       f->kind == FIELD_TEXT ? "field '%s' must be %zu to %zu bytes of text"
				       : f->kind == FIELD_TOKEN
				       ? "field '%s' must be %zu to %zu characters"
					 " of A-Z a-z 0-9 _ - ."
				       : "field '%s' must be %zu to %zu characters"
					 " of A-Z a-z 0-9 _ -",
			       f->name, f->min_len, f->max_len);
	return obj;
}

/* Checks obj against the field table; NULL and *p on the first problem. */
static struct json_object *check_fields(struct json_object *obj, const struct http_field *fields,
					size_t nfields, struct body_problem *p)
{
	struct json_object *v;

	json_object_object_foreach(obj, key, val)
	{
		size_t i;
		(void)val;
		for (i = 0; i < nfields && strcmp(fields[i].name, key) != 0; i++)
			;
		if (i == nfields)
			return problem(p, "unknown_field", "unknown field '%.64s'", key);
	}
	for (size_t i = 0; i < nfields; i++) {
		const struct http_field *f = &fields[i];
		if (!json_object_object_get_ex(obj, f->name, &v)) {
			if (!f->required)
				continue;
			return problem(p, "missing_field", "field '%s' is required", f->name);
		}
		if (!check_value(obj, f, v, p))
			return NULL;
	}
	return obj;
}

struct json_object *body_parse(const char *body, size_t len, const struct http_field *fields,
			       size_t nfields, struct body_problem *p)
{
	struct json_object *obj;
	char err[200];

	if (len == 0)
		obj = json_object_new_object();
	else if (memchr(body, '\0', len))
		return problem(p, "bad_json", "the body contains a NUL byte");
	else if (!(obj = ld_json_parse(body, len, BODY_DEPTH, err, sizeof err)))
		return problem(p, "bad_json", "the body is not valid JSON: %s", err);
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return problem(p, "bad_json", "the body must be a JSON object");
	}
	if (len > 0 && count_members(body, len) != (size_t)json_object_object_length(obj)) {
		json_object_put(obj);
		return problem(p, "duplicate_field", "the body has a field more than once");
	}
	if (!check_fields(obj, fields, nfields, p)) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}
