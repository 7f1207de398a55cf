-- GET with each RFC 6750 bearer token of a file in turn (one per line). Env: BENCH_TOKENS_FILE.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

local tokens = {}
for token in io.lines(common.env("BENCH_TOKENS_FILE")) do
  tokens[#tokens + 1] = "Bearer " .. token
end
wrk.method = "GET"
wrk.headers["Accept"] = "application/json"

local next_token = 0

function request()
  next_token = next_token % #tokens + 1
  wrk.headers["Authorization"] = tokens[next_token]
  return wrk.format(nil, nil, nil, nil)
end
