/*
 * send.h - the dispatcher's HTTP half: POSTs claimed outbox events with
 * libcurl's multi interface (several transfers at once, connections kept
 * alive and reused) and turns each answer into an outbox verdict.
 */
#ifndef LD_SEND_H
#define LD_SEND_H

#include "config.h"
#include "outbox.h"
#include "token.h"

struct sender;

/* The config and key must outlive the sender. Call curl_global_init()
 * once before. Returns NULL (message in err) when libcurl cannot start. */
struct sender *sender_new(const struct ld_config *cfg, const struct token_key *key, char *err,
			  size_t errlen);
void sender_free(struct sender *s);

/* The URL an event of this kind goes to, NULL when not configured. */
const char *sender_url(const struct sender *s, const char *kind);

/* Called as a batch runs (often: throttle inside), with how many are done. */
typedef void (*sender_progress)(void *arg, size_t done);

/*
 * Sends ev[0..n) (each must have a URL) and fills marks[i] with the
 * verdict of ev[i]: 2xx delivered; 4xx other than 408 and 429 (and any
 * other non-retryable status) dead; 408, 429, 5xx and transport failures
 * retried after outbox_backoff_ms, or dead once ev[i].attempts reached
 * max_attempts. No transfer starts after send_until (ms): those events
 * get OUTBOX_RELEASE. Error strings in marks stay valid until the next
 * sender_run or sender_free.
 */
void sender_run(struct sender *s, const struct outbox_event *ev, size_t n, int64_t send_until,
		struct outbox_mark *marks, sender_progress progress, void *arg);

#endif
