/*
 * http.c - request bodies, JSON validation and answers for the FastCGI
 * program. Nothing here knows about promotions.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

void http_req_init(struct http_req *r, FCGX_Request *fcgi)
{
	const char *m, *uri;

	memset(r, 0, sizeof *r);
	r->fcgi = fcgi;
	m = FCGX_GetParam("REQUEST_METHOD", fcgi->envp);
	r->method = !m                   ? HTTP_OTHER
		: strcmp(m, "GET") == 0  ? HTTP_GET
		: strcmp(m, "POST") == 0 ? HTTP_POST
					 : HTTP_OTHER;
	/* DOCUMENT_URI is the decoded, normalised path nginx matched. */
	uri = FCGX_GetParam("DOCUMENT_URI", fcgi->envp);
	if (!uri)
		uri = FCGX_GetParam("SCRIPT_NAME", fcgi->envp);
	r->path = uri ? uri : "";
}

void http_req_release(struct http_req *r)
{
	free(r->body);
	if (r->json)
		json_object_put(r->json);
	r->body = NULL;
	r->json = NULL;
}

const char *http_param(const struct http_req *r, const char *name)
{
	return FCGX_GetParam(name, r->fcgi->envp);
}

int http_is_json(const struct http_req *r)
{
	static const char json[] = "application/json";
	const char *t = http_param(r, "CONTENT_TYPE");

	if (!t)
		return 0;
	while (*t == ' ' || *t == '\t')
		t++;
	if (strncasecmp(t, json, sizeof json - 1) != 0)
		return 0;
	t += sizeof json - 1;
	while (*t == ' ' || *t == '\t')
		t++;
	return *t == '\0' || *t == ';';
}

/* Every status this program answers with, and its reason phrase: the
 * one table, for the answers' status lines and the counters' labels. */
static const struct {
	int status;
	const char *reason;
} statuses[] = {
	{ 200, "OK" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 409, "Conflict" },
	{ 413, "Payload Too Large" },
	{ 415, "Unsupported Media Type" },
	{ 422, "Unprocessable Entity" },
	{ 429, "Too Many Requests" },
	{ 500, "Internal Server Error" },
	{ 503, "Service Unavailable" },
};
#define NSTATUSES (sizeof statuses / sizeof statuses[0])

int http_status_index(int status)
{
	for (size_t i = 0; i < NSTATUSES; i++)
		if (statuses[i].status == status)
			return (int)i;
	return -1;
}

int http_status_at(int i)
{
	return i >= 0 && (size_t)i < NSTATUSES ? statuses[i].status : 0;
}

const char *http_reason(int status)
{
	int i = http_status_index(status);

	return i >= 0 ? statuses[i].reason : "Unknown";
}

/* What every answer of the console adds (http_req.strict). */
#define STRICT_HEADERS                                                            \
	"Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n" \
	"X-Frame-Options: DENY\r\n"                                               \
	"Referrer-Policy: no-referrer\r\n"

void http_send(struct http_req *r, int status, struct json_object *body, const char *extra_headers)
{
	char head[1024];
	size_t len;
	const char *s = json_object_to_json_string_length(
		body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	int n;

	/* FCGX_FPrintF has its own printf without %zu: format here. */
	r->status = status;
	n = snprintf(head, sizeof head,
		     "Status: %d %s\r\n"
		     "Content-Type: application/json; charset=utf-8\r\n"
		     "Content-Length: %zu\r\n"
		     "Cache-Control: no-store\r\n"
		     "X-Content-Type-Options: nosniff\r\n"
		     "%s%s\r\n",
		     status, http_reason(status), len + 1, r->strict ? STRICT_HEADERS : "",
		     extra_headers ? extra_headers : "");
	if (n < 0 || (size_t)n >= sizeof head)
		n = 0; /* cannot happen with our fixed headers */
	FCGX_PutStr(head, n, r->fcgi->out);
	FCGX_PutStr(s, (int)len, r->fcgi->out);
	FCGX_PutChar('\n', r->fcgi->out);
	json_object_put(body);
}

void http_send_text(struct http_req *r, int status, const char *content_type, const char *text,
		    size_t len)
{
	char head[1024];
	int n;

	r->status = status;
	n = snprintf(head, sizeof head,
		     "Status: %d %s\r\n"
		     "Content-Type: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "Cache-Control: no-store\r\n"
		     "X-Content-Type-Options: nosniff\r\n%s\r\n",
		     status, http_reason(status), content_type, len,
		     r->strict ? STRICT_HEADERS : "");
	if (n < 0 || (size_t)n >= sizeof head)
		n = 0; /* cannot happen with our fixed headers */
	FCGX_PutStr(head, n, r->fcgi->out);
	FCGX_PutStr(text, (int)len, r->fcgi->out);
}

void http_error(struct http_req *r, int status, const char *code, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(code));
	json_object_object_add(o, "message", json_object_new_string(msg));
	if (!r->outcome)
		r->outcome = code;
	http_send(r, status, o,
		  status == 405 && r->allow ? r->allow
			  : status == 503   ? "Retry-After: 1\r\n"
					    : NULL);
}

/* Parses CONTENT_LENGTH: empty or absent is 0; anything but 1..7 digits
 * is -1. */
static long content_length(const struct http_req *r)
{
	const char *s = http_param(r, "CONTENT_LENGTH");
	long n = 0;

	if (!s || !*s)
		return 0;
	if (strlen(s) > 7)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (*s - '0');
	}
	return n;
}

int http_read_json(struct http_req *r, const struct http_field *fields, size_t nfields)
{
	long n = content_length(r);
	struct body_problem p;
	int got;

	if (n < 0) {
		http_error(r, 400, "bad_request", "Content-Length is not a number");
		return -1;
	}
	if (n > HTTP_BODY_MAX) {
		http_error(r, 413, "body_too_large", "the body is larger than %d bytes",
			   HTTP_BODY_MAX);
		return -1;
	}
	r->body = xmalloc((size_t)n + 1);
	got = n ? FCGX_GetStr(r->body, (int)n, r->fcgi->in) : 0;
	if (got != n) {
		http_error(r, 400, "bad_request", "the body ended after %d of %ld bytes", got, n);
		return -1;
	}
	r->body[n] = '\0';
	r->body_len = (size_t)n;
	if (!fields)
		return 0;
	if (!(r->json = body_parse(r->body, r->body_len, fields, nfields, &p))) {
		http_error(r, p.status, p.code, "%s", p.message);
		return -1;
	}
	return 0;
}

const char *http_field_str(const struct http_req *r, const char *name)
{
	struct json_object *v;

	if (!r->json || !json_object_object_get_ex(r->json, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int64_t http_field_int(const struct http_req *r, const char *name)
{
	struct json_object *v;

	if (!r->json || !json_object_object_get_ex(r->json, name, &v) ||
	    !json_object_is_type(v, json_type_int))
		return 0;
	return json_object_get_int64(v);
}

const char *http_cookie(const struct http_req *r, const char *name, size_t *len)
{
	size_t n = strlen(name);
	const char *c, *end;

	for (c = http_param(r, "HTTP_COOKIE"); c && *c; c = end) {
		while (*c == ' ' || *c == ';')
			c++;
		end = strchr(c, ';');
		if (!end)
			end = c + strlen(c);
		if (strncmp(c, name, n) == 0 && c[n] == '=') {
			*len = (size_t)(end - c - (ptrdiff_t)n - 1);
			return c + n + 1;
		}
	}
	return NULL;
}

int http_is_https(const struct http_req *r)
{
	const char *h = http_param(r, "HTTPS");

	return h && strcmp(h, "on") == 0;
}
