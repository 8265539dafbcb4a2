/*
 * http.h - the FastCGI side of a request: reading the body within a hard
 * cap, parsing JSON bodies against a table of fields, and writing JSON
 * answers with the headers every answer carries.
 *
 * A struct http_req lives for one request; http_req_release() frees all
 * it owns (body, parsed JSON). Strings taken from the FastCGI environment
 * die at FCGX_Finish_r: copy what must outlive the request.
 */
#ifndef LD_HTTP_H
#define LD_HTTP_H

#include <fcgiapp.h>
#include <json-c/json.h>
#include "body.h"
#include "ld.h"

#define HTTP_BODY_MAX 4096 /* nginx caps at the same size */

enum http_method { HTTP_GET = 1, HTTP_POST = 2, HTTP_OTHER = 4 };

struct http_req {
	FCGX_Request *fcgi;
	enum http_method method;
	const char *path; /* DOCUMENT_URI / path part of REQUEST_URI */
	char *body;       /* NUL-terminated, body_len bytes; NULL if none */
	size_t body_len;
	struct json_object *json; /* the parsed body, owned */
	int status;               /* what was answered, for the log */
	const char *outcome;      /* short word for the log ("granted", "no_tickets") */
	const char *allow;        /* methods of the matched route, for a 405 */
	int strict;               /* the console's: every answer also says it may not
			      * be framed, run or sent as a referrer (CSP
			      * default-src 'none', X-Frame-Options DENY,
			      * Referrer-Policy no-referrer) */
};

/* The status table (http.c): the index of status in it, or -1; the
 * status at index i, or 0 past its end; status's reason phrase. */
int http_status_index(int status);
int http_status_at(int i);
const char *http_reason(int status);

/* Starts a request: method, path. */
void http_req_init(struct http_req *r, FCGX_Request *fcgi);
void http_req_release(struct http_req *r);

/* A CGI parameter of the request, or NULL. */
const char *http_param(const struct http_req *r, const char *name);

/* Whether the request says its body is JSON: a Content-Type of
 * application/json, in any case, with or without parameters such as
 * "; charset=utf-8". */
int http_is_json(const struct http_req *r);

/*
 * Reads the body (CONTENT_LENGTH parsed strictly, at most HTTP_BODY_MAX)
 * and, when fields is not NULL, parses it as a JSON object whose members
 * are exactly the identifier strings described by fields (nfields of
 * them; see body_parse). On a problem it answers the 4xx itself (400
 * bad_json, duplicate_field, missing_field, invalid_field, unknown_field;
 * 413 body_too_large) and
 * returns -1; 0 when the caller may go on. An empty body is {} .
 */
int http_read_json(struct http_req *r, const struct http_field *fields, size_t nfields);

/* The string value of a field validated by http_read_json, or NULL. */
const char *http_field_str(const struct http_req *r, const char *name);

/* The integer value of a FIELD_INT field validated by http_read_json, or
 * 0 when it is not there. */
int64_t http_field_int(const struct http_req *r, const char *name);

/* The value of cookie name in the request's Cookie header (the first
 * one of that name), *len its length; NULL when there is none. Not
 * NUL-terminated at *len. */
const char *http_cookie(const struct http_req *r, const char *name, size_t *len);

/* Whether the request came over https (nginx's HTTPS parameter). */
int http_is_https(const struct http_req *r);

/* Answers status with body (a JSON object, which it puts). extra_headers
 * (may be NULL) is a preformatted "Name: value\r\n" block. */
void http_send(struct http_req *r, int status, struct json_object *body, const char *extra_headers);

/* Answers status with a body that is not JSON (len bytes of text of
 * content_type), with the same security headers. */
void http_send_text(struct http_req *r, int status, const char *content_type, const char *text,
		    size_t len);

/* Answers a JSON error {"error": code, "message": fmt...}. */
void http_error(struct http_req *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
