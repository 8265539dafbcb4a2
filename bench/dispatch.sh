#!/usr/bin/env bash
# bench/dispatch.sh - drains a backlog of reward.issue events into a local
# keep-alive receiver and prints seconds and events/s.
#
#   bench/dispatch.sh [EVENTS] [CONCURRENCY] [BATCH]   (128401 16 500: the config defaults)
#
# The receiver is nginx answering 200 to every POST (a real HTTP/1.1
# server with keep-alive, far faster than the events need), so the number
# measures the dispatcher: claims, libcurl, signatures and outcome writes.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${LD_BUILDDIR:-$top}
events=${1:-128401} conc=${2:-16} batch=${3:-500}

dir=$(mktemp -d "${TMPDIR:-/tmp}/ld-bench-dispatch.XXXXXX")
cleanup() {
	[ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
	sleep 0.2
	rm -rf "$dir"
}
trap cleanup EXIT
chmod 755 "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$dir/token.secret"
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$dir/signing.secret"
cat > "$dir/luckydice.json" <<JSON
{
  "db": "luckydice.db",
  "token_secret_file": "token.secret",
  "signing_secret_file": "signing.secret",
  "reward_url": "http://127.0.0.1:$port/reward",
  "notify_url": "http://127.0.0.1:$port/notify",
  "dispatch": { "concurrency": $conc, "batch": $batch, "timeout_ms": 5000 }
}
JSON
export LUCKYDICE_CONFIG=$dir/luckydice.json
"$build/luckydicectl" init >/dev/null

# The backlog, as rules.c writes a win's reward.issue event.
sqlite3 "$dir/luckydice.db" <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $events)
INSERT INTO outbox (key, kind, promo, uid, payload, next_at, created_at)
SELECT 'bench/draw/' || i || '/reward', 'reward.issue', 'bench', 'user' || i,
       json_object('prize', json_object('id', 'coffee', 'name', 'coffee coupon'),
                   'draw_id', i, 'day', '2024-07-08', 'won_at', '2024-07-08T00:00:00.000+00:00',
                   'event', 'reward.issue', 'key', 'bench/draw/' || i || '/reward',
                   'promotion', 'bench', 'user', 'user' || i),
       0, 0
FROM n;
SQL

user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
mkdir -p "$dir/tmp"
cat > "$dir/nginx.conf" <<NGINX
$user_line
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    location / { default_type application/json; return 200 '{"ok":true}'; }
  }
}
NGINX
nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/nginx-error.log" -q
for _ in $(seq 50); do curl -fsS -X POST "http://127.0.0.1:$port/reward" >/dev/null 2>&1 && break; sleep 0.1; done

start=$(date +%s.%N)
quiet=--quiet  # LD_BENCH_VERBOSE=1: the dispatcher's progress and summary too
[ -n "${LD_BENCH_VERBOSE:-}" ] && quiet=""
"$build/luckydice-dispatch" $quiet || { echo "bench: the dispatcher failed" >&2; exit 1; }
end=$(date +%s.%N)
delivered=$(sqlite3 "$dir/luckydice.db" "SELECT count(*) FROM outbox WHERE state = 'delivered'")
[ "$delivered" = "$events" ] || { echo "bench: only $delivered of $events delivered" >&2; exit 1; }
python3 -c "import sys; s = $end - $start; print('dispatch: %d events in %.2f s, %.0f events/s (concurrency $conc, batch $batch)' % ($events, s, $events / s))"
