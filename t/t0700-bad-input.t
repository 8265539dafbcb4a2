#!/usr/bin/env python3
# Hostile input, table-driven: every endpoint gets malformed, truncated and
# trailing-garbage JSON, wrong types, huge numbers, deep nesting, long
# strings, invalid UTF-8, NUL bytes, missing, unknown and duplicate fields,
# bodies over the limit, bodies that are not said to be JSON, bad tokens,
# tricks in the promotion id and invite code, and wrong methods. Each gets a 4xx JSON error naming the problem,
# with the headers every API answer carries, and the ledger (including the
# claim refusals kept for review) stays byte-for-byte the same.
import base64, hashlib, hmac, os, socket, time
from harness import Stack, ok, is_, diag, done, promo

P = "t-bad"
s = Stack(promos=[promo(P, prizes=[
    {"id": "coffee", "name": "coffee", "daily_stock": 1000, "probability": 1.0}])])
alice, bob, carol = s.tokens("alice", "bob", "carol")
# alice has dice (a lax draw would spend one), bob has an invite code that
# carol could claim (a lax claim would credit them both), carol is new (a
# lax visit would grant).
s.api("POST", P, "visit", token=alice)
code = s.api("GET", P, "invite", token=bob).json["code"]
secret = open(os.path.join(s.dir, "token.secret"), "rb").read().strip()


def make_token(uid, expiry, key=secret):
    msg = ("%s.%d" % (uid, expiry)).encode()
    sig = base64.urlsafe_b64encode(hmac.new(key, msg, hashlib.sha256).digest()).rstrip(b"=")
    return msg.decode() + "." + sig.decode()


now = int(time.time())
V, C, D = "visit", "invite/claim", "draws"
RID = "req-0001-abcdef"  # a valid request id
DEEP = '{"code":' + "[" * 2000 + "]" * 2000 + "}"

# (description, method, path, headers, raw body, status, error, words the
# message must contain). A path without a leading slash is an endpoint of
# promotion P; headers None means carol's token (alice's for draws).
cases = [
    # -- claim bodies
    ("claim: truncated JSON", "POST", C, None, '{"code": "', 400, "bad_json", []),
    ("claim: missing closing brace", "POST", C, None, '{"code":"%s"' % code, 400, "bad_json", []),
    ("claim: trailing garbage", "POST", C, None, '{"code":"%s"} x' % code, 400, "bad_json", ["offset"]),
    ("claim: two values", "POST", C, None, '{"code":"%s"}{}' % code, 400, "bad_json", ["offset"]),
    ("claim: single quotes", "POST", C, None, "{'code': '%s'}" % code, 400, "bad_json", []),
    ("claim: NaN", "POST", C, None, '{"code": NaN}', 400, "bad_json", []),
    ("claim: Infinity", "POST", C, None, '{"code": Infinity}', 400, "bad_json", []),
    ("claim: trailing comma", "POST", C, None, '{"code":"%s",}' % code, 400, "bad_json", []),
    ("claim: comment", "POST", C, None, '{"code":"%s" /* hi */}' % code, 400, "bad_json", []),
    ("claim: array body", "POST", C, None, '["%s"]' % code, 400, "bad_json", ["object"]),
    ("claim: string body", "POST", C, None, '"%s"' % code, 400, "bad_json", ["object"]),
    ("claim: number body", "POST", C, None, "123", 400, "bad_json", ["object"]),
    ("claim: null body", "POST", C, None, "null", 400, "bad_json", []),
    ("claim: whitespace body", "POST", C, None, "   \n", 400, "bad_json", []),
    ("claim: byte order mark", "POST", C, None, b'\xef\xbb\xbf{"code":"%s"}' % code.encode(), 400, "bad_json", []),
    ("claim: code is a number", "POST", C, None, '{"code": 12}', 400, "invalid_field", ["code"]),
    ("claim: code is true", "POST", C, None, '{"code": true}', 400, "invalid_field", ["code"]),
    ("claim: code is null", "POST", C, None, '{"code": null}', 400, "invalid_field", ["code"]),
    ("claim: code is an array", "POST", C, None, '{"code": ["%s"]}' % code, 400, "invalid_field", ["code"]),
    ("claim: code is an object", "POST", C, None, '{"code": {"c":"%s"}}' % code, 400, "invalid_field", ["code"]),
    ("claim: huge integer", "POST", C, None, '{"code": 123456789012345678901234567890}', 400, "invalid_field", ["code"]),
    ("claim: huge exponent", "POST", C, None, '{"code": 1e999}', 400, ("bad_json", "invalid_field"), []),
    ("claim: deep nesting", "POST", C, None, DEEP, 400, "bad_json", ["deep"]),
    ("claim: nesting past the body depth", "POST", C, None, '{"code":[[[["x"]]]]}', 400, "bad_json", []),
    ("claim: code of 33 characters", "POST", C, None, '{"code":"%s"}' % ("a" * 33), 400, "invalid_field", ["code"]),
    ("claim: code of 4000 characters", "POST", C, None, '{"code":"%s"}' % ("a" * 4000), 400, "invalid_field", ["code"]),
    ("claim: empty code", "POST", C, None, '{"code":""}', 400, "invalid_field", ["code"]),
    ("claim: invalid UTF-8", "POST", C, None, b'{"code":"\xff\xfe"}', 400, "bad_json", ["utf"]),
    ("claim: overlong UTF-8 '/'", "POST", C, None, b'{"code":"..\xc0\xaf"}', 400, "bad_json", ["utf"]),
    ("claim: UTF-8 surrogate", "POST", C, None, b'{"code":"\xed\xa0\x80"}', 400, "bad_json", ["utf"]),
    ("claim: truncated UTF-8", "POST", C, None, b'{"code":"\xe2\x82"}', 400, "bad_json", ["utf"]),
    ("claim: raw NUL byte", "POST", C, None, b'{"code":"%s\x00x"}' % code.encode(), 400, "bad_json", ["nul"]),
    ("claim: NUL byte after the value", "POST", C, None, b'{"code":"%s"}\x00' % code.encode(), 400, "bad_json", ["nul"]),
    ("claim: escaped \\u0000", "POST", C, None, '{"code":"%s\\u0000"}' % code, 400, "bad_json", []),
    ("claim: raw control character", "POST", C, None, '{"code":"a\nb"}', 400, "bad_json", []),
    ("claim: missing code", "POST", C, None, "{}", 400, "missing_field", ["code"]),
    ("claim: empty body", "POST", C, None, "", 400, "missing_field", ["code"]),
    ("claim: unknown field beside code", "POST", C, None, '{"code":"%s","uid":"alice"}' % code, 400, "unknown_field", ["uid"]),
    ("claim: misspelt field", "POST", C, None, '{"cod":"%s"}' % code, 400, "unknown_field", ["cod"]),
    ("claim: duplicate key", "POST", C, None, '{"code":"nosuchcode","code":"%s"}' % code, 400, "duplicate_field", []),
    ("claim: duplicate key, escaped", "POST", C, None, '{"code":"nosuchcode","\\u0063ode":"%s"}' % code, 400, "duplicate_field", []),
    ("claim: code '../x'", "POST", C, None, '{"code":"../%s"}' % code, 400, "invalid_field", ["code"]),
    ("claim: code with %2e%2e", "POST", C, None, '{"code":"%%2e%%2e%s"}' % code, 400, "invalid_field", ["code"]),
    ("claim: code with escaped dots", "POST", C, None, '{"code":"\\u002e\\u002e%s"}' % code, 400, "invalid_field", ["code"]),
    ("claim: code in Hangul", "POST", C, None, '{"code":"코드코드"}', 400, "invalid_field", ["code"]),
    ("claim: code with a space", "POST", C, None, '{"code":"%s "}' % code, 400, "invalid_field", ["code"]),
    ("claim: code with SQL", "POST", C, None, '{"code":"x\' OR 1=1 --"}', 400, "invalid_field", ["code"]),
    ("claim: body over 4 KiB", "POST", C, None, '{"code":"%s"}' % ("a" * 5000), 413, "body_too_large", []),
    # -- draw bodies
    ("draw: missing request_id", "POST", D, None, "{}", 400, "missing_field", ["request_id"]),
    ("draw: empty body", "POST", D, None, "", 400, "missing_field", ["request_id"]),
    ("draw: request_id too short", "POST", D, None, '{"request_id":"abc"}', 400, "invalid_field", ["request_id"]),
    ("draw: request_id of 65 characters", "POST", D, None, '{"request_id":"%s"}' % ("r" * 65), 400, "invalid_field", ["request_id"]),
    ("draw: request_id a number", "POST", D, None, '{"request_id":12345678901}', 400, "invalid_field", ["request_id"]),
    ("draw: request_id a float", "POST", D, None, '{"request_id":1.5e300}', 400, "invalid_field", ["request_id"]),
    ("draw: request_id with a slash", "POST", D, None, '{"request_id":"abcd/efgh"}', 400, "invalid_field", ["request_id"]),
    ("draw: unknown field", "POST", D, None, '{"request_id":"%s","prize":"coffee"}' % RID, 400, "unknown_field", ["prize"]),
    ("draw: duplicate request_id", "POST", D, None, '{"request_id":"%s","request_id":"%s"}' % (RID, RID), 400, "duplicate_field", []),
    ("draw: trailing garbage", "POST", D, None, '{"request_id":"%s"}]' % RID, 400, "bad_json", []),
    ("draw: truncated", "POST", D, None, '{"request_id":"%s' % RID, 400, "bad_json", []),
    ("draw: body over 4 KiB", "POST", D, None, " " * 5000 + '{"request_id":"%s"}' % RID, 413, "body_too_large", []),
    # -- visit bodies (visit takes no fields)
    ("visit: unknown field", "POST", V, None, '{"bonus":"10"}', 400, "unknown_field", ["bonus"]),
    ("visit: garbage", "POST", V, None, "garbage", 400, "bad_json", []),
    ("visit: array", "POST", V, None, "[1]", 400, "bad_json", ["object"]),
    ("visit: body over 4 KiB", "POST", V, None, "x" * 10000, 413, "body_too_large", []),
    # -- tokens (on a visit carol has not made yet)
    ("no token", "POST", V, {}, "", 401, "unauthorized", ["token"]),
    ("empty bearer token", "POST", V, {"Authorization": "Bearer "}, "", 401, "unauthorized", ["token"]),
    ("forged token (other key)", "POST", V, {"Authorization": "Bearer " + make_token("carol", now + 3600, b"k" * 32)}, "", 401, "unauthorized", ["signature"]),
    ("forged token (uid swapped)", "POST", V, {"Authorization": "Bearer " + "dave" + carol[len("carol"):]}, "", 401, "unauthorized", ["signature"]),
    ("forged token (expiry extended)", "POST", V, {"Authorization": "Bearer " + make_token("carol", now + 3600)[:-4] + "AAAA"}, "", 401, "unauthorized", ["signature"]),
    ("expired token", "POST", V, {"Authorization": "Bearer " + make_token("carol", now - 1)}, "", 401, "unauthorized", ["expired"]),
    ("oversized token", "POST", V, {"Authorization": "Bearer " + "a" * 3000}, "", 401, "unauthorized", ["token"]),
    ("token with a '../' uid", "POST", V, {"Authorization": "Bearer " + make_token("../carol", now + 3600)}, "", 401, "unauthorized", ["malformed"]),
    ("token with a huge expiry", "POST", V, {"Authorization": "Bearer " + make_token("carol", 10 ** 30)}, "", 401, "unauthorized", ["token"]),
    ("token with a negative expiry", "POST", V, {"Authorization": "Bearer carol.-1.AAAA"}, "", 401, "unauthorized", ["token"]),
    ("Basic scheme", "POST", V, {"Authorization": "Basic Y2Fyb2w6eA=="}, "", 401, "unauthorized", ["token"]),
    ("lowercase bearer", "POST", V, {"Authorization": "bearer " + carol}, "", 401, "unauthorized", ["token"]),
    ("garbage cookie token", "POST", V, {"Cookie": "ld_token=%00%2e%2e; x=1"}, "", 401, "unauthorized", ["token"]),
    ("empty cookie token", "POST", V, {"Cookie": "ld_token="}, "", 401, "unauthorized", ["token"]),
    # -- promotion id tricks
    ("promotion '..'", "GET", "/api/promotions/../balance", None, None, 400, "bad_path", ["path"]),
    ("promotion %2e%2e", "GET", "/api/promotions/%2e%2e/balance", None, None, 400, "bad_path", ["path"]),
    ("promotion x/../P", "POST", "/api/promotions/x/../" + P + "/visit", None, "", 400, "bad_path", ["path"]),
    ("promotion x%2f%2e%2e%2fP", "POST", "/api/promotions/x%2f%2e%2e%2f" + P + "/visit", None, "", 400, "bad_path", ["path"]),
    ("promotion percent-encoded", "POST", "/api/promotions/%74-bad/visit", None, "", 400, "bad_path", ["path"]),
    ("promotion with %00", "POST", "/api/promotions/" + P + "%00/visit", None, "", 400, "bad_request", []),
    ("promotion of 65 characters", "POST", "/api/promotions/" + "p" * 65 + "/visit", None, "", 404, "unknown_promotion", ["invalid"]),
    ("promotion of 5000 characters", "GET", "/api/promotions/" + "p" * 5000 + "/balance", None, None, 404, "unknown_promotion", ["invalid"]),
    ("promotion in Hangul", "POST", "/api/promotions/%ED%96%89%EC%9A%B4/visit", None, "", 400, "bad_path", ["path"]),
    ("promotion with a dot", "POST", "/api/promotions/" + P + ".json/visit", None, "", 404, "unknown_promotion", ["invalid"]),
    ("promotion with a quote", "POST", "/api/promotions/" + P + "'/visit", None, "", 404, "unknown_promotion", ["invalid"]),
    ("empty promotion", "POST", "/api/promotions//visit", None, "", 400, "bad_path", ["path"]),
    ("double slash before the endpoint", "POST", "/api/promotions/" + P + "//visit", None, "", 400, "bad_path", ["path"]),
    ("unknown promotion", "POST", "/api/promotions/no-such/visit", None, "", 404, "unknown_promotion", ["no-such"]),
    ("endpoint with a trailing slash", "POST", "/api/promotions/" + P + "/visit/", None, "", 404, "not_found", []),
    ("endpoint with a suffix", "POST", "/api/promotions/" + P + "/visit.json", None, "", 404, "not_found", []),
    ("unknown endpoint", "GET", "/api/promotions/" + P + "/admin", None, None, 404, "not_found", []),
    ("unknown API path", "GET", "/api/nothing", None, None, 404, "not_found", []),
    # -- bodies that do not say they are JSON (a form or a beacon of
    # another site sends these without a CORS preflight)
    ("visit: text/plain", "POST", V, {"Authorization": "Bearer " + carol, "Content-Type": "text/plain"}, "{}", 415, "unsupported_media_type", ["application/json"]),
    ("visit: no Content-Type", "POST", V, {"Authorization": "Bearer " + carol, "Content-Type": None}, "", 415, "unsupported_media_type", []),
    ("claim: a form", "POST", C, {"Authorization": "Bearer " + carol, "Content-Type": "application/x-www-form-urlencoded"}, "code=" + code, 415, "unsupported_media_type", []),
    ("claim: multipart", "POST", C, {"Authorization": "Bearer " + carol, "Content-Type": "multipart/form-data; boundary=x"}, '--x\r\nContent-Disposition: form-data; name="code"\r\n\r\n%s\r\n--x--\r\n' % code, 415, "unsupported_media_type", []),
    ("claim: text/plain holding JSON", "POST", C, {"Authorization": "Bearer " + carol, "Content-Type": "text/plain;charset=UTF-8"}, '{"code":"%s"}' % code, 415, "unsupported_media_type", []),
    ("draw: application/jsonp", "POST", D, {"Authorization": "Bearer " + alice, "Content-Type": "application/jsonp"}, '{"request_id":"%s"}' % RID, 415, "unsupported_media_type", []),
    ("draw: application/json-seq", "POST", D, {"Authorization": "Bearer " + alice, "Content-Type": "application/json-seq"}, '{"request_id":"%s"}' % RID, 415, "unsupported_media_type", []),
    ("draw: text/json", "POST", D, {"Authorization": "Bearer " + alice, "Content-Type": "text/json"}, '{"request_id":"%s"}' % RID, 415, "unsupported_media_type", []),
    # -- methods
    ("PUT visit", "PUT", V, None, "{}", 405, "method_not_allowed", ["POST"]),
    ("DELETE claim", "DELETE", C, None, None, 405, "method_not_allowed", ["POST"]),
    ("PATCH draws", "PATCH", D, None, '{"request_id":"%s"}' % RID, 405, "method_not_allowed", ["POST"]),
    ("OPTIONS balance", "OPTIONS", "balance", None, None, 405, "method_not_allowed", ["GET"]),
    ("GET visit", "GET", V, None, None, 405, "method_not_allowed", ["POST"]),
    ("GET draws", "GET", D, None, None, 405, "method_not_allowed", ["POST"]),
    ("POST balance", "POST", "balance", None, "{}", 405, "method_not_allowed", ["GET"]),
    ("POST me", "POST", "me", None, "{}", 405, "method_not_allowed", ["GET"]),
    ("PUT invite", "PUT", "invite", None, "{}", 405, "method_not_allowed", ["GET"]),
    ("DELETE healthz", "DELETE", "/healthz", None, None, 405, "method_not_allowed", ["GET"]),
    ("TRACE (refused by nginx)", "TRACE", V, None, None, 405, "method_not_allowed", []),
    ("HEAD visit", "HEAD", V, None, None, 405, None, []),
]


def headers_ok(r):
    return (r.headers.get("Cache-Control") == "no-store" and
            r.headers.get("X-Content-Type-Options") == "nosniff" and
            r.headers.get("Content-Type", "").startswith("application/json"))


def check(desc, r, status, err, words, before):
    statuses = status if isinstance(status, tuple) else (status,)
    errs = err if isinstance(err, tuple) else (err,)
    problems = []
    if r.status not in statuses:
        problems.append("status %d" % r.status)
    if err is not None:
        if not r.json or r.json.get("error") not in errs:
            problems.append("error %r" % (r.json and r.json.get("error")))
        msg = (r.json or {}).get("message") or ""
        if not msg:
            problems.append("no message")
        for w in words:
            if w.lower() not in msg.lower():
                problems.append("message lacks %r" % w)
    if not headers_ok(r):
        problems.append("headers %r" % r.headers)
    if r.status == 405 and "Allow" not in r.headers and desc != "TRACE (refused by nginx)":
        problems.append("no Allow header")
    after = s.dump(tables=TABLES)
    if after != before:
        problems.append("the ledger changed")
    ok(not problems, "%s -> %s %s" % (desc, "/".join(map(str, statuses)), "/".join(map(str, errs))))
    if problems:
        diag("%s: %r" % ("; ".join(problems), r))
    return after


TABLES = ("balances", "grants", "invites", "invite_codes", "claim_refusals", "draws",
          "stock", "outbox", "promotions")
start = s.dump(tables=TABLES)
before = start
for desc, method, path, headers, raw, status, err, words in cases:
    if not path.startswith("/"):
        path = "/api/promotions/%s/%s" % (P, path)
    if headers is None:
        headers = {"Authorization": "Bearer " + (alice if path.endswith("/draws") else carol)}
    if isinstance(raw, str):
        raw = raw.encode()
    r = s.request(method, path, headers=headers, raw=raw)
    before = check(desc, r, status, err, words, before)


def raw_http(data):
    """Sends bytes as they are and returns the parsed answer."""
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(data)
        buf = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = dict(l.split(": ", 1) for l in lines[1:] if ": " in l)
    from harness import Response
    return Response(status, hdrs, body.decode("utf-8", "replace"))


vpath = "/api/promotions/%s/visit" % P
raw_cases = [
    ("garbage request line", b"GARBAGE\r\n\r\n", 400, "bad_request"),
    ("promotion in raw UTF-8",
     ("GET /api/promotions/\ud589\uc6b4/balance HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
      "Connection: close\r\n\r\n" % carol).encode(), 404, "unknown_promotion"),
    ("promotion in invalid UTF-8",
     b"GET /api/promotions/\xff\xfe/balance HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
     + carol.encode() + b"\r\nConnection: close\r\n\r\n", 404, "unknown_promotion"),
    ("a Content-Length that is not a number",
     ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 12x\r\n"
      "Content-Type: application/json\r\n"
      "Connection: close\r\n\r\n{}" % (vpath, carol)).encode(), 400, "bad_request"),
    ("a body shorter than its Content-Length",
     ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n"
      "Content-Type: application/json\r\n"
      "Connection: close\r\n\r\n{}" % (vpath, carol)).encode(), (400, 408), None),
    ("a chunked body over 4 KiB",
     ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n1400\r\n%s\r\n0\r\n\r\n" % (vpath, carol, " " * 0x1400)).encode(),
     413, "body_too_large"),
    ("a header line of 20 KiB",
     ("GET /api/promotions/%s/balance HTTP/1.1\r\nHost: x\r\nX-Junk: %s\r\n"
      "Connection: close\r\n\r\n" % (P, "j" * 20000)).encode(), (400, 431), "bad_request"),
]
for desc, data, status, err in raw_cases:
    try:
        r = raw_http(data)
    except (OSError, ValueError, IndexError) as e:
        ok(status == (400, 408), "%s: the connection was dropped (%s)" % (desc, e))
        continue
    before = check(desc, r, status, err, [], before)

is_(s.dump(tables=TABLES), start, "after %d hostile requests the ledger is byte-for-byte the same"
    % (len(cases) + len(raw_cases)))
r = s.api("POST", P, "invite/claim", {"code": code}, token=carol)
is_((r.status, r.json), (200, {"granted": True, "balance": 2}),
    "and a well-formed claim by the same user still succeeds")
done()
