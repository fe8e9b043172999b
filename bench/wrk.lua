-- wrk script for bench/run.sh. One file, several modes, chosen by the arguments after `--`:
--
--   plain                        the command line's request as it is (static, cheapest for wrk)
--   bearer     FILE FIRST COUNT  GET with "Authorization: Bearer <token>", cycling through lines
--                                FIRST .. FIRST+COUNT-1 of FILE (one token per line)
--   introspect FILE FIRST COUNT  POST token=<token> (RFC 7662) with the same cycling; the
--                                Authorization header comes from the command line (-H)
--   flood      PREFIX            GET with a new bogus bearer token on every request, and count
--                                the status codes
--   fresh      PREFIX            as flood, with tokens named fresh-PREFIX-N (bench/fill.sh, whose
--                                IdP answers every token active)
--   statuses                     the command line's request as it is, and count the status codes
--
-- Every mode ends with one line "WRKJSON {...}" on stdout: requests, duration, errors, non-2xx
-- count, latency percentiles in microseconds, and for the cycling modes how often the token list
-- wrapped around (0 means no token was sent twice).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state).
local reqs, n, i = {}, 0, 0
wraps, sent, c401, c503, cother = 0, 0, 0, 0, 0

local function load_tokens(file, first, count)
  local toks, lineno = {}, 0
  for line in io.lines(file) do
    lineno = lineno + 1
    if lineno >= first and lineno < first + count and line ~= "" then
      toks[#toks + 1] = line
    end
  end
  assert(#toks > 0, "no tokens in " .. file .. " from line " .. first)
  return toks
end

-- count tallies a response's status for the WRKJSON line.
function count(status)
  if status == 401 then c401 = c401 + 1
  elseif status == 503 then c503 = c503 + 1
  else cother = cother + 1 end
end

function init(args)
  local mode = args[1] or "plain"
  if mode == "plain" then
    request = nil -- static request: wrk builds it once
  elseif mode == "bearer" or mode == "introspect" then
    local toks = load_tokens(args[2], tonumber(args[3]), tonumber(args[4]))
    -- Pre-format every request so request() only picks a string.
    for k, t in ipairs(toks) do
      if mode == "bearer" then
        reqs[k] = wrk.format("GET", nil, { Authorization = "Bearer " .. t })
      else
        local h = { ["Content-Type"] = "application/x-www-form-urlencoded" }
        for name, value in pairs(wrk.headers) do h[name] = value end
        reqs[k] = wrk.format("POST", nil, h, "token=" .. t)
      end
    end
    n = #reqs
    request = function()
      i = i + 1
      if i > n then i, wraps = 1, wraps + 1 end
      return reqs[i]
    end
  elseif mode == "statuses" then
    request = nil
    response = count
  elseif mode == "flood" or mode == "fresh" then
    local name = (mode == "flood" and "bogus-" or "fresh-") .. (args[2] or tostring(os.time())) .. "-"
    request = function()
      sent = sent + 1
      return wrk.format("GET", nil, { Authorization = "Bearer " .. name .. sent })
    end
    response = count
  else
    error("unknown mode " .. mode)
  end
end

function done(summary, latency, requests)
  local w, a, b, c = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    w = w + (t:get("wraps") or 0)
    a = a + (t:get("c401") or 0)
    b = b + (t:get("c503") or 0)
    c = c + (t:get("cother") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeout_errors":%d,"non2xx":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"wraps":%d,"status401":%d,"status503":%d,"status_other":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    w, a, b, c))
end
