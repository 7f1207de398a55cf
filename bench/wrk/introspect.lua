-- RFC 7662 introspection of one token, the introspecting client authenticated by client_secret_post.
-- Env: BENCH_TOKEN, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

common.post_form(common.form({
  { "token", common.env("BENCH_TOKEN") },
  { "token_type_hint", "access_token" },
  { "client_id", common.env("BENCH_CLIENT_ID") },
  { "client_secret", common.env("BENCH_CLIENT_SECRET") },
}))
