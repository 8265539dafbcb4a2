/* fuzz-json-body: request body validation (cgi/body.c) on any bytes,
 * against the field tables of claim and draws; an accepted body has
 * exactly valid identifier strings. */
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "body.h"
#include "ld.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const struct http_field claim[] = { { "code", 1, 1, 32, FIELD_IDENT } };
	static const struct http_field draw[] = { { "request_id", 1, 8, 64, FIELD_IDENT } };
	const struct http_field *f;
	struct body_problem p;
	struct json_object *o, *v;

	if (size == 0)
		return 0;
	f = data[0] & 1 ? claim : draw;
	o = body_parse((const char *)data + 1, size - 1, f, 1, &p);
	if (!o) {
		if (p.status != 400 || !p.code || !p.message[0])
			abort();
		return 0;
	}
	if (json_object_object_length(o) != 1 || !json_object_object_get_ex(o, f->name, &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    !ld_is_ident(json_object_get_string(v), f->max_len) ||
	    strlen(json_object_get_string(v)) < f->min_len)
		abort();
	json_object_put(o);
	return 0;
}
