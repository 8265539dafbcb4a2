-- wrk.lua - the request generator of bench/run. Every request carries a
-- different user's token, taken round robin from a file of tokens that
-- each wrk thread splits by its number, so threads never share a user.
--
-- Environment:
--   BENCH_MODE    get | visit | claim | draw
--   BENCH_PATH    the request path
--   BENCH_TOKENS  file of tokens, one per line
--   BENCH_CODES   (claim) file of invite codes, one per line
--   BENCH_TAG     (draw, claim) a word unique to this run: request ids
--                 and device ids are TAG-thread-n, never repeated
--   BENCH_THREADS wrk's -t
--   BENCH_REAL_IP (optional) an X-Real-IP header: the client's address as
--                 a load balancer passes it on (bench/cluster, which sends
--                 to a host straight, says loopback, which no limit counts)
--
-- done() prints one line "BENCH key=value ..." that bench/run reads.

local nthreads_seen = 0
local threads = {}

function setup(thread)
	thread:set("tid", nthreads_seen)
	nthreads_seen = nthreads_seen + 1
	table.insert(threads, thread)
end

function init(args)
	local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
	mode = os.getenv("BENCH_MODE") or "get"
	path = os.getenv("BENCH_PATH")
	tag = os.getenv("BENCH_TAG") or "bench"
	real_ip = os.getenv("BENCH_REAL_IP")
	tokens = {}
	local i = 0
	for line in io.lines(os.getenv("BENCH_TOKENS")) do
		if i % nthreads == tid then
			tokens[#tokens + 1] = "Bearer " .. line
		end
		i = i + 1
	end
	codes = {}
	if mode == "claim" then
		for line in io.lines(os.getenv("BENCH_CODES")) do
			codes[#codes + 1] = line
		end
	end
	sent = 0
	pool = #tokens
end

function request()
	sent = sent + 1
	local h = { Authorization = tokens[(sent - 1) % pool + 1] }
	if real_ip then
		h["X-Real-IP"] = real_ip
	end
	if mode == "get" then
		return wrk.format("GET", path, h)
	end
	h["Content-Type"] = "application/json"
	if mode == "visit" then
		return wrk.format("POST", path, h, "")
	elseif mode == "claim" then
		h["X-Device-Id"] = tag .. "-" .. tid .. "-" .. sent
		return wrk.format("POST", path, h,
			'{"code":"' .. codes[sent % #codes + 1] .. '"}')
	else
		return wrk.format("POST", path, h,
			'{"request_id":"' .. tag .. "-" .. tid .. "-" .. sent .. '"}')
	end
end

function done(summary, latency, requests)
	local sent_max, pool_min = 0, nil
	for _, t in ipairs(threads) do
		local s, p = t:get("sent"), t:get("pool")
		if s and s > sent_max then sent_max = s end
		if p and (not pool_min or p < pool_min) then pool_min = p end
	end
	local e = summary.errors
	io.write(string.format(
		"BENCH requests=%d rps=%.1f p50=%.3f p99=%.3f non2xx=%d sockerr=%d sent_max=%d pool=%d\n",
		summary.requests, summary.requests / (summary.duration / 1e6),
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		e.status, e.connect + e.read + e.write + e.timeout,
		sent_max, pool_min or 0))
end
