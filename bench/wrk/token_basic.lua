-- client_credentials token request, client_secret_basic.
-- Env: BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SCOPE (optional).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

common.post_form(common.form({
  { "grant_type", "client_credentials" },
  { "scope", common.env("BENCH_SCOPE", "restaurent") },
}))
wrk.headers["Authorization"] = common.basic_auth(common.env("BENCH_CLIENT_ID"), common.env("BENCH_CLIENT_SECRET"))
