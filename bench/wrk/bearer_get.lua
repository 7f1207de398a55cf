-- GET with an RFC 6750 bearer token. Env: BENCH_TOKEN.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. common.env("BENCH_TOKEN")
wrk.headers["Accept"] = "application/json"
