#!/usr/bin/env python3
"""verify-signature.py - how a reward or notification service checks an
event from luckydice-dispatch before acting on it. Copy it; it needs only
Python's standard library.

Every event is a POST with these headers:

    Idempotency-Key: <the event's key, the same on every attempt>
    X-Luckydice-Event: reward.issue | notify.win | notify.invite
    X-Luckydice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>

where the HMAC-SHA256, keyed with the contents of the dispatcher's
signing_secret_file (minus one trailing newline), is of the bytes

    <t> "." <Idempotency-Key> "." <the raw body>

A receiver, in this order:

1. verifies the signature over the raw body, before parsing it, with a
   constant-time compare (hmac.compare_digest), and refuses a t more than
   TOLERANCE seconds away from its own clock: a request captured on the
   way can then be sent again neither later nor under another key;
2. deduplicates on Idempotency-Key: delivery is at least once (a timeout
   or a crash makes the dispatcher send the same event again, with the
   same key), so it stores each key it has processed, with the outcome,
   and answers 2xx again, without processing, to a key it has seen. Keep
   the keys at least as long as the dispatcher may retry (hours; the
   config's dispatch.max_attempts and backoff say how long), better for
   good;
3. answers 2xx only once the event is processed (or safely queued). A 4xx
   other than 408 and 429 makes the event dead for an operator to look
   at; 408, 429 and 5xx are retried.

Used as a module (the project's test receiver, t/receiver.py, does):

    verify(secret, signature_header, idempotency_key, body) -> None or reason
    Receiver(secret).check(headers, body) -> (status, reason), .processed(key)

From the command line, it checks one request saved as a file of headers,
a blank line and the body (exit 0 good, 1 refused):

    verify-signature.py SIGNING_SECRET_FILE REQUEST_FILE
"""
import hashlib
import hmac
import sys
import threading
import time

TOLERANCE = 300  # seconds either way between the signature's t and our clock


def read_secret(path):
    """The signing secret: the file's bytes minus one trailing newline."""
    with open(path, "rb") as f:
        key = f.read()
    if key.endswith(b"\r\n"):
        return key[:-2]
    return key[:-1] if key.endswith(b"\n") else key


def verify(secret, signature_header, idempotency_key, body, now=None, tolerance=TOLERANCE):
    """None when signature_header is a good signature of idempotency_key
    and body (bytes) under secret (bytes) made within tolerance seconds
    of now (default: the clock); otherwise why not, in a few words."""
    if not signature_header or not idempotency_key:
        return "missing signature or key"
    t, sigs = None, []
    for part in signature_header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) <= 19:
            t = int(value)
        elif name == "v1":
            sigs.append(value)  # more than one while a secret is replaced
    if t is None or not sigs:
        return "malformed signature"
    if abs((time.time() if now is None else now) - t) > tolerance:
        return "stale signature"
    msg = b"%d.%s." % (t, idempotency_key.encode("utf-8")) + body
    want = hmac.new(secret, msg, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(want, s) for s in sigs):
        return "bad signature"
    return None


class Receiver:
    """Verification and deduplication together, as a service does them:

        status, why = receiver.check(headers, body)
        if status is None:          # good, and not seen before
            issue_the_coupon(...)
            receiver.processed(key)
            status = 200
        answer(status)

    The keys live in memory here; a real service keeps them in its
    database under a unique constraint, in the same transaction as the
    coupon it issues, so that two copies arriving at once cannot both
    pass."""

    def __init__(self, secret, tolerance=TOLERANCE):
        self.secret = secret
        self.tolerance = tolerance
        self.done = set()
        self.lock = threading.Lock()

    def check(self, headers, body, now=None):
        """For a request with headers (a mapping, names in any case) and
        body (bytes): (401, why) for a bad signature, (200, "duplicate")
        for a key already processed, (None, None) for one to process."""
        h = {k.lower(): v for k, v in headers.items()}
        key = h.get("idempotency-key", "")
        why = verify(self.secret, h.get("x-luckydice-signature", ""), key, body,
                     now, self.tolerance)
        if why:
            return 401, why
        with self.lock:
            if key in self.done:
                return 200, "duplicate"
        return None, None

    def processed(self, key):
        """Remembers key as processed: the same event again is a duplicate."""
        with self.lock:
            self.done.add(key)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: verify-signature.py SIGNING_SECRET_FILE REQUEST_FILE\n")
        return 2
    with open(argv[2], "rb") as f:
        data = f.read()
    sep = b"\r\n\r\n" if b"\r\n\r\n" in data else b"\n\n"
    head, _, body = data.partition(sep)
    headers = {}
    for line in head.decode("latin-1").splitlines():
        name, colon, value = line.partition(":")
        if colon and " " not in name.strip():
            headers[name.strip()] = value.strip()
    status, why = Receiver(read_secret(argv[1])).check(headers, body)
    print("refused: " + why if status == 401 else "good")
    return 1 if status == 401 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
