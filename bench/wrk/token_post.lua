-- client_credentials token request, client_secret_post.
-- Env: BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SCOPE (optional).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

common.post_form(common.form({
  { "grant_type", "client_credentials" },
  { "client_id", common.env("BENCH_CLIENT_ID") },
  { "client_secret", common.env("BENCH_CLIENT_SECRET") },
  { "scope", common.env("BENCH_SCOPE", "restaurent") },
}))
