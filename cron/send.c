/*
 * send.c - POSTs outbox events with the libcurl multi interface.
 *
 * One easy handle per concurrent slot, reused transfer after transfer, so
 * the multi handle's connection cache keeps keep-alive connections to the
 * services open across the whole run. Each request carries:
 *
 *   Content-Type: application/json
 *   Idempotency-Key: <the event's key, the same on every attempt>
 *   X-Luckydice-Event: <kind>
 *   X-Luckydice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
 *                          "<t>.<Idempotency-Key>.<body>">
 *
 * The signature covers the time it was made and the key with the body,
 * so that a captured request can neither be sent again later (a receiver
 * refuses a t older than its tolerance) nor under another key (which a
 * receiver deduplicating on the key would pay again).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "send.h"

#define ANSWER_KEEP       200 /* bytes of an answer kept for the operator */
#define ERROR_MAX         320
#define RETRY_AFTER_MAX_S 86400
#define SIGNATURE_MAX     96 /* "t=" 19 digits ",v1=" 64 hex digits */

struct slot {
	CURL *easy;
	struct curl_slist *headers;
	size_t idx; /* the event it is sending */
	int busy;
	char answer[ANSWER_KEEP + 1];
	size_t answer_len;
	char errbuf[CURL_ERROR_SIZE];
};

struct sender {
	const struct ld_config *cfg;
	const struct token_key *key;
	CURLM *multi;
	struct slot *slots;
	int nslots;
	char (*errors)[ERROR_MAX]; /* one per event of the current batch */
	size_t nerrors;
};

/* Keeps the first ANSWER_KEEP bytes of an answer, swallows the rest. */
static size_t on_answer(char *data, size_t size, size_t nmemb, void *arg)
{
	struct slot *sl = arg;
	size_t n = size * nmemb, room = ANSWER_KEEP - sl->answer_len;

	if (room > 0) {
		if (room > n)
			room = n;
		memcpy(sl->answer + sl->answer_len, data, room);
		sl->answer_len += room;
	}
	return n;
}

struct sender *sender_new(const struct ld_config *cfg, const struct token_key *key, char *err,
			  size_t errlen)
{
	struct sender *s = xcalloc(1, sizeof *s);
	long conc = cfg->dispatch.concurrency;

	s->cfg = cfg;
	s->key = key;
	s->nslots = cfg->dispatch.concurrency;
	if (!(s->multi = curl_multi_init())) {
		snprintf(err, errlen, "cannot start libcurl");
		free(s);
		return NULL;
	}
	curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, conc);
	curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, conc * 2);
	s->slots = xcalloc((size_t)s->nslots, sizeof *s->slots);
	for (int i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];
		long timeout = cfg->dispatch.timeout_ms;
		if (!(sl->easy = curl_easy_init())) {
			snprintf(err, errlen, "cannot start libcurl");
			sender_free(s);
			return NULL;
		}
		curl_easy_setopt(sl->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(sl->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(sl->easy, CURLOPT_TIMEOUT_MS, timeout);
		curl_easy_setopt(sl->easy, CURLOPT_CONNECTTIMEOUT_MS,
				 timeout < 3000 ? timeout : 3000L);
		curl_easy_setopt(sl->easy, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(sl->easy, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(sl->easy, CURLOPT_USERAGENT,
				 "luckydice-dispatch/" PACKAGE_VERSION);
		curl_easy_setopt(sl->easy, CURLOPT_WRITEFUNCTION, on_answer);
		curl_easy_setopt(sl->easy, CURLOPT_WRITEDATA, sl);
		curl_easy_setopt(sl->easy, CURLOPT_ERRORBUFFER, sl->errbuf);
		curl_easy_setopt(sl->easy, CURLOPT_PRIVATE, sl);
	}
	return s;
}

void sender_free(struct sender *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];
		if (!sl->easy)
			continue;
		if (sl->busy)
			curl_multi_remove_handle(s->multi, sl->easy);
		curl_easy_cleanup(sl->easy);
		curl_slist_free_all(sl->headers);
	}
	curl_multi_cleanup(s->multi);
	free(s->slots);
	free(s->errors);
	free(s);
}

const char *sender_url(const struct sender *s, const char *kind)
{
	return strcmp(kind, "reward.issue") == 0 ? s->cfg->reward_url : s->cfg->notify_url;
}

/* Appends "name: value" (value NULL: name is the whole line) to a header
 * list; a failed append is out of memory. Keys and kinds are short (the
 * schema's writers cap them), so truncation cannot happen. */
static struct curl_slist *header(struct curl_slist *h, const char *name, const char *value)
{
	char line[512];
	struct curl_slist *n;

	if (!value)
		snprintf(line, sizeof line, "%s", name);
	else if (ld_fmt(line, sizeof line, "%s: %s", name, value) != 0)
		line[0] = '\0';
	if (!(n = curl_slist_append(h, line))) {
		ld_oom();
		return h;
	}
	return n;
}

/*
 * The X-Luckydice-Signature value of an event with key and body (len
 * bytes) sent at now_s: "t=<now_s>,v1=<hex HMAC-SHA256 of
 * "<now_s>.<key>.<body>">" under the signing key, into out.
 */
static void sign(const struct token_key *k, int64_t now_s, const char *key, const char *body,
		 size_t len, char out[SIGNATURE_MAX])
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char hex[2 * crypto_auth_hmacsha256_BYTES + 1], t[24];
	crypto_auth_hmacsha256_state st = k->keyed;
	int n = snprintf(t, sizeof t, "%lld.", (long long)now_s);

	crypto_auth_hmacsha256_update(&st, (const unsigned char *)t, (size_t)n);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)key, strlen(key));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof st);
	sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
	snprintf(out, SIGNATURE_MAX, "t=%lld,v1=%s", (long long)now_s, hex);
}

/* Starts the transfer of ev on a free slot. */
static void start(struct sender *s, struct slot *sl, const struct outbox_event *ev, size_t idx)
{
	char sig[SIGNATURE_MAX];
	size_t len = strlen(ev->payload);
	struct curl_slist *h = NULL;

	sign(s->key, ld_now_ms() / 1000, ev->key, ev->payload, len, sig);

	h = header(h, "Content-Type: application/json", NULL);
	h = header(h, "Idempotency-Key", ev->key);
	h = header(h, "X-Luckydice-Event", ev->kind);
	h = header(h, "X-Luckydice-Signature", sig);
	h = header(h, "Expect:", NULL);
	curl_slist_free_all(sl->headers);
	sl->headers = h;
	sl->idx = idx;
	sl->busy = 1;
	sl->answer_len = 0;
	sl->errbuf[0] = '\0';
	curl_easy_setopt(sl->easy, CURLOPT_URL, sender_url(s, ev->kind));
	curl_easy_setopt(sl->easy, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(sl->easy, CURLOPT_POSTFIELDS, ev->payload);
	curl_easy_setopt(sl->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_multi_add_handle(s->multi, sl->easy);
}

/* The kept answer as printable text: whole UTF-8 characters, control
 * characters as spaces. */
static void answer_text(struct slot *sl)
{
	size_t n = sl->answer_len;

	while (n > 0 && !ld_utf8_valid(sl->answer, n))
		n--;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)sl->answer[i] < 0x20 || sl->answer[i] == 0x7f)
			sl->answer[i] = ' ';
	sl->answer[n] = '\0';
}

/*
 * Decides the verdict of a finished transfer: res is curl's result. The
 * error text goes into err (ERROR_MAX bytes), which the mark points at.
 */
static void finish(struct sender *s, struct slot *sl, CURLcode res, const struct outbox_event *ev,
		   struct outbox_mark *m, char *err)
{
	const struct ld_dispatch_config *d = &s->cfg->dispatch;
	curl_off_t retry_after = 0;
	long status = 0;
	int retry;

	m->id = ev->id;
	m->lease_until = ev->lease_until;
	m->kind = ev->kind;
	m->status = 0;
	m->error = err;
	m->next_at = 0;
	answer_text(sl);
	if (res != CURLE_OK) {
		snprintf(err, ERROR_MAX, "%s",
			 sl->errbuf[0] ? sl->errbuf : curl_easy_strerror(res));
		retry = 1;
	} else {
		curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &status);
		m->status = (int)status;
		if (status >= 200 && status <= 299) {
			m->verdict = OUTBOX_DELIVERED;
			m->error = NULL;
			return;
		}
		snprintf(err, ERROR_MAX, "HTTP %ld: %s", status, sl->answer);
		retry = status == 408 || status == 429 || (status >= 500 && status <= 599);
		if (retry &&
		    curl_easy_getinfo(sl->easy, CURLINFO_RETRY_AFTER, &retry_after) != CURLE_OK)
			retry_after = 0;
	}
	if (!retry) {
		m->verdict = OUTBOX_DEAD;
		return;
	}
	if (ev->attempts >= d->max_attempts) {
		char last[ERROR_MAX];
		memcpy(last, err, ERROR_MAX);
		snprintf(err, ERROR_MAX, "gave up after %d attempts: %.280s", ev->attempts, last);
		m->verdict = OUTBOX_DEAD;
		return;
	}
	if (retry_after < 0 || retry_after > RETRY_AFTER_MAX_S)
		retry_after = retry_after < 0 ? 0 : RETRY_AFTER_MAX_S;
	m->verdict = OUTBOX_RETRY;
	m->next_at = ld_now_ms() +
		outbox_backoff_ms(d, ev->attempts, (int64_t)retry_after * 1000, NULL);
}

void sender_run(struct sender *s, const struct outbox_event *ev, size_t n, int64_t send_until,
		struct outbox_mark *marks, sender_progress progress, void *arg)
{
	size_t next = 0, done = 0;
	int active = 0;

	if (n > s->nerrors) {
		free(s->errors);
		s->errors = xcalloc(n, sizeof *s->errors);
		s->nerrors = n;
	}
	while (done < n) {
		struct CURLMsg *msg;
		int running, left;

		for (int i = 0; i < s->nslots && next < n; i++) {
			if (s->slots[i].busy)
				continue;
			if (ld_now_ms() >= send_until) {
				for (; next < n; next++, done++) {
					memset(&marks[next], 0, sizeof marks[next]);
					marks[next].id = ev[next].id;
					marks[next].lease_until = ev[next].lease_until;
					marks[next].kind = ev[next].kind;
					marks[next].verdict = OUTBOX_RELEASE;
				}
				break;
			}
			start(s, &s->slots[i], &ev[next], next);
			next++;
			active++;
		}
		if (done == n)
			break;
		curl_multi_perform(s->multi, &running);
		while ((msg = curl_multi_info_read(s->multi, &left))) {
			struct slot *sl;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
			finish(s, sl, msg->data.result, &ev[sl->idx], &marks[sl->idx],
			       s->errors[sl->idx]);
			curl_multi_remove_handle(s->multi, sl->easy);
			sl->busy = 0;
			active--;
			done++;
		}
		if (progress)
			progress(arg, done);
		if (done < n && (next == n || active == s->nslots))
			curl_multi_poll(s->multi, NULL, 0, 100, NULL);
	}
}
