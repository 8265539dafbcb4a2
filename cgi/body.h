/*
 * body.h - the pure part of reading a request: JSON body bytes to a
 * validated object, or the 4xx problem to answer. Nothing here knows
 * FastCGI, so the fuzzers and tests call it directly.
 */
#ifndef LD_BODY_H
#define LD_BODY_H

#include <stddef.h>

#define BODY_DEPTH 4 /* our bodies are flat objects of strings and numbers */

/* What a field's value must be. */
enum http_field_kind {
	FIELD_IDENT = 0, /* a string of [A-Za-z0-9_-] */
	FIELD_TEXT,      /* a string of UTF-8 text without control characters */
	FIELD_TOKEN,     /* a string of [A-Za-z0-9_.-] (a signed token) */
	FIELD_INT,       /* an integer (not a string, not a real number) */
};

/* A body field: name, whether it is required, the allowed length of its
 * string value in bytes (for FIELD_INT: the range of the integer), and
 * its kind (FIELD_IDENT when left out). */
struct http_field {
	const char *name;
	int required;
	size_t min_len, max_len;
	enum http_field_kind kind;
};

/* What is wrong with a body: the status, the error code and a message
 * naming the field or the offset. */
struct body_problem {
	int status;
	const char *code;
	char message[256];
};

/*
 * Parses len bytes as a JSON object whose members are exactly the fields
 * described by fields (nfields of them), each at most once. An empty body
 * is {}. Returns the object (the caller puts it), or NULL with *p filled:
 * 400 bad_json (not strict JSON, a NUL byte, not an object),
 * duplicate_field, unknown_field, missing_field, invalid_field.
 */
struct json_object *body_parse(const char *body, size_t len, const struct http_field *fields,
			       size_t nfields, struct body_problem *p);

#endif
