-- Shared part of the benchmark's wrk scripts: configuration from the environment, encoders,
-- and the response/done hooks that print one machine-readable summary line:
--   BENCH_JSON {"requests":..,"duration_s":..,"rps":..,"p50_ms":..,"p99_ms":..,"non2xx":..,
--               "throttled":..,"socket_errors":..}
-- (throttled: the 429 responses among the non-2xx ones; with BENCH_EXPECT_STATUS, non2xx
-- counts the answers of another status than that one).
-- Every wrk thread runs in its own Lua state, so the per-thread counters are collected
-- in done() through the thread objects that setup() kept (thread:get reads a thread's global).
local M = {}

function M.env(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then
    if default == nil then
      error("environment variable " .. name .. " is required")
    end
    return default
  end
  return value
end

-- application/x-www-form-urlencoded encoding of one value (RFC 6749 appendix B)
function M.form_encode(value)
  return (value:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

function M.form(fields)
  local parts = {}
  for _, pair in ipairs(fields) do
    parts[#parts + 1] = pair[1] .. "=" .. M.form_encode(pair[2])
  end
  return table.concat(parts, "&")
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function M.base64(data)
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chunk = {}
    for j = 3, 0, -1 do
      local index = math.floor(n / 64 ^ j) % 64
      chunk[#chunk + 1] = alphabet:sub(index + 1, index + 1)
    end
    if c == nil then chunk[4] = "=" end
    if b == nil then chunk[3] = "=" end
    out[#out + 1] = table.concat(chunk)
  end
  return table.concat(out)
end

-- RFC 6749 section 2.3.1: client id and secret are form-encoded before the Basic encoding.
function M.basic_auth(client_id, client_secret)
  return "Basic " .. M.base64(M.form_encode(client_id) .. ":" .. M.form_encode(client_secret))
end

function M.post_form(body)
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Accept"] = "application/json"
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

non2xx = 0
throttled = 0
-- A scenario whose every answer is a refusal (a garbage token) names the status it expects:
-- then "non2xx" counts the answers with any other status.
local expected = tonumber(os.getenv("BENCH_EXPECT_STATUS") or "")

function response(status, headers, body)
  local unexpected
  if expected then
    unexpected = status ~= expected
  else
    unexpected = status < 200 or status > 299
  end
  if unexpected then
    non2xx = non2xx + 1
    if status == 429 then
      throttled = throttled + 1
    end
  end
end

function done(summary, latency, requests)
  local failed, limited = 0, 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("non2xx")
    limited = limited + thread:get("throttled")
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,'
      .. '"non2xx":%d,"throttled":%d,"socket_errors":%d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    failed, limited, e.connect + e.read + e.write + e.timeout))
end

return M
