-- wrk script of bench/chaos.sh: a mix of request kinds against the plugin's routes, with the
-- answer of every request counted per route and kind.
--
--   wrk -tN -cN -s chaos.lua URL -- TOKDIR SEED N ROUTE...     (N: the number of threads)
--
-- TOKDIR holds hot.txt and fresh.txt (app-admin tokens) and user.txt (app-user tokens), one per
-- line. Each request picks a route (uniformly among ROUTE..., paths such as /auth) and a kind:
--
--   admin-hot    30%  an app-admin token from hot.txt (a few dozen, reused: cache hits)
--   admin-fresh  20%  the next app-admin token of fresh.txt, each sent once (a miss) until the list
--                     wraps; each thread takes its own share of the lines
--   user         15%  an app-user token from user.txt (valid, but grp is "user": 403; reused)
--   bogus        15%  a random token of the same shape as the IdP's (43 base64url characters)
--                     that the IdP never issued
--   none         10%  no Authorization header, but a forged "Group: admin" header
--   malformed    10%  a hot app-admin token, sent the wrong way: "Bearer Bearer T", two
--                     Authorization headers, "Basic T", "BearerT", "Bearer T" plus a non-ASCII
--                     byte, or "?access_token=T" without the header; recorded as malformed/<variant>
--
-- wrk gives response() neither the request nor the connection, so the script needs one connection
-- per thread (-tN -cN): a thread's request() and response() then alternate, and response() answers
-- the request of the last request(). A request that gets a socket error instead of an answer is
-- sent again by the next request() and counted as sent but not answered. The latency of a request
-- is measured with clock_gettime from request() to response().
--
-- done() prints, one per line, for bench/chaos.sh's report:
--   CHAOS sent ROUTE KIND N              requests sent
--   CHAOS status ROUTE KIND STATUS N     answers
--   CHAOS lat ROUTE KIND STATUS BUCKET N latency histogram, bucket b holds [1.1^b, 1.1^(b+1)) us
--   CHAOS max ROUTE KIND STATUS US        slowest answer
--   CHAOS sec TENTH STATUS N             answers per tenth of a second of wall-clock time (Unix
--                                        time of the answer, in units of 0.1 s)
--   CHAOS secmax TENTH US                slowest answer of that tenth
--   CHAOS hot TENTH STATUS N             answers of kind admin-hot (cached tokens) per tenth
--   CHAOS ra BUCKET N                    latency histogram of the 503s that carry Retry-After (the
--                                        plugin's guard refused them: breaker open, or no slot)
--   CHAOS ramax US                       the slowest of them
--   CHAOS wraps N                        times a thread's share of fresh.txt wrapped around
--   CHAOS summary REQUESTS DURATION_US CONNECT READ WRITE TIMEOUT P50_US P99_US MAX_US

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } chaos_timespec;
  int clock_gettime(int clk, chaos_timespec *ts);
]]
local ts = ffi.new("chaos_timespec")
local function now_us() -- CLOCK_REALTIME, as the script's EPOCHREALTIME
  ffi.C.clock_gettime(0, ts)
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

-- Per-thread results, read by done() with thread:get (flat tables: keys are strings).
sent, status, lat, maxlat, sec, secmax, hot, ra, wraps = {}, {}, {}, {}, {}, {}, {}, {}, 0
ramax = 0

local function add(t, k, n) t[k] = (t[k] or 0) + n end

local function read_lines(file)
  local out = {}
  for line in io.lines(file) do
    if line ~= "" then out[#out + 1] = line end
  end
  assert(#out > 0, "no tokens in " .. file)
  return out
end

local routes, hots, fresh, users = {}, nil, {}, nil
local fi = 0
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local kinds = { -- cumulative weights out of 100
  { 30, "admin-hot" }, { 50, "admin-fresh" }, { 65, "user" }, { 80, "bogus" }, { 90, "none" },
  { 100, "malformed" },
}
local malformed = { "bearer-bearer", "two-headers", "basic", "no-space", "non-ascii", "query" }

function init(args)
  local dir, seed, nthr = args[1], tonumber(args[2]) or 1, tonumber(args[3]) or 1
  for k = 4, #args do routes[#routes + 1] = args[k] end
  assert(dir and #routes > 0, "usage: -- TOKDIR SEED N ROUTE...")
  local me = tid or 1
  math.randomseed(seed * 1000 + me)
  hots, users = read_lines(dir .. "/hot.txt"), read_lines(dir .. "/user.txt")
  -- This thread's share of fresh.txt: lines me, me + N, me + 2N, ...
  local all = read_lines(dir .. "/fresh.txt")
  for k = me, #all, nthr do fresh[#fresh + 1] = all[k] end
  assert(#fresh > 0, "no fresh tokens for thread " .. me)
end

local pending_key, pending_t0, pending_kind

local function bogus_token()
  local c = {}
  for k = 1, 43 do
    local r = math.random(1, 64)
    c[k] = B64:sub(r, r)
  end
  return table.concat(c)
end

local function with_header(req, line) -- add a raw header line to a formatted request
  return req:sub(1, -3) .. line .. "\r\n\r\n"
end

function request()
  local route = routes[math.random(1, #routes)]
  local r = math.random(1, 100)
  local kind
  for _, k in ipairs(kinds) do
    if r <= k[1] then kind = k[2] break end
  end
  local req
  if kind == "admin-hot" then
    req = wrk.format("GET", route, { Authorization = "Bearer " .. hots[math.random(1, #hots)] })
  elseif kind == "admin-fresh" then
    fi = fi + 1
    if fi > #fresh then fi, wraps = 1, wraps + 1 end
    req = wrk.format("GET", route, { Authorization = "Bearer " .. fresh[fi] })
  elseif kind == "user" then
    req = wrk.format("GET", route, { Authorization = "Bearer " .. users[math.random(1, #users)] })
  elseif kind == "bogus" then
    req = wrk.format("GET", route, { Authorization = "Bearer " .. bogus_token() })
  elseif kind == "none" then
    req = wrk.format("GET", route, { Group = "admin" })
  else
    local v = malformed[math.random(1, #malformed)]
    local t = hots[math.random(1, #hots)]
    kind = "malformed/" .. v
    if v == "bearer-bearer" then
      req = wrk.format("GET", route, { Authorization = "Bearer Bearer " .. t })
    elseif v == "two-headers" then
      req = with_header(wrk.format("GET", route, { Authorization = "Bearer " .. t }), "Authorization: Bearer " .. t)
    elseif v == "basic" then
      req = wrk.format("GET", route, { Authorization = "Basic " .. t })
    elseif v == "no-space" then
      req = wrk.format("GET", route, { Authorization = "Bearer" .. t })
    elseif v == "non-ascii" then
      req = wrk.format("GET", route, { Authorization = "Bearer " .. t .. "\xc3\xa9" })
    else
      req = wrk.format("GET", route .. "?access_token=" .. t, nil)
    end
  end
  pending_key = route .. " " .. kind
  pending_kind = kind
  add(sent, pending_key, 1)
  pending_t0 = now_us()
  return req
end

local LOG_STEP = math.log(1.1)

function response(code, headers)
  local t = now_us()
  local key = pending_key or "? ?"
  pending_key = nil
  local us = t - (pending_t0 or t)
  key = key .. " " .. code
  add(status, key, 1)
  local b = us > 0 and math.floor(math.log(us) / LOG_STEP) or 0
  add(lat, key .. " " .. b, 1)
  if us > (maxlat[key] or 0) then maxlat[key] = us end
  local s = tostring(math.floor(t / 100000)) -- tenths of a second
  add(sec, s .. " " .. code, 1)
  if us > (secmax[s] or 0) then secmax[s] = us end
  if pending_kind == "admin-hot" then add(hot, s .. " " .. code, 1) end
  if code == 503 and headers and headers["Retry-After"] then
    add(ra, tostring(b), 1)
    if us > ramax then ramax = us end
  end
  pending_kind = nil
end

function done(summary, latency, requests)
  local out = {}
  local w = 0
  for _, th in ipairs(threads) do
    for k, n in pairs(th:get("sent") or {}) do out[#out + 1] = "CHAOS sent " .. k .. " " .. n end
    for k, n in pairs(th:get("status") or {}) do out[#out + 1] = "CHAOS status " .. k .. " " .. n end
    for k, n in pairs(th:get("lat") or {}) do out[#out + 1] = "CHAOS lat " .. k .. " " .. n end
    for k, n in pairs(th:get("maxlat") or {}) do out[#out + 1] = "CHAOS max " .. k .. " " .. n end
    for k, n in pairs(th:get("sec") or {}) do out[#out + 1] = "CHAOS sec " .. k .. " " .. n end
    for k, n in pairs(th:get("secmax") or {}) do out[#out + 1] = "CHAOS secmax " .. k .. " " .. n end
    for k, n in pairs(th:get("hot") or {}) do out[#out + 1] = "CHAOS hot " .. k .. " " .. n end
    for k, n in pairs(th:get("ra") or {}) do out[#out + 1] = "CHAOS ra " .. k .. " " .. n end
    out[#out + 1] = "CHAOS ramax " .. (th:get("ramax") or 0)
    w = w + (th:get("wraps") or 0)
  end
  out[#out + 1] = "CHAOS wraps " .. w
  local e = summary.errors
  out[#out + 1] = string.format("CHAOS summary %d %d %d %d %d %d %d %d %d", summary.requests,
    summary.duration, e.connect, e.read, e.write, e.timeout, latency:percentile(50),
    latency:percentile(99), latency.max)
  io.write(table.concat(out, "\n") .. "\n")
end
