-- RFC 7662 introspection of each token of a file in turn (one per line), the introspecting
-- client authenticated by client_secret_post. Env: BENCH_TOKENS_FILE, BENCH_CLIENT_ID,
-- BENCH_CLIENT_SECRET.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

local bodies = {}
for token in io.lines(common.env("BENCH_TOKENS_FILE")) do
  bodies[#bodies + 1] = common.form({
    { "token", token },
    { "token_type_hint", "access_token" },
    { "client_id", common.env("BENCH_CLIENT_ID") },
    { "client_secret", common.env("BENCH_CLIENT_SECRET") },
  })
end
common.post_form(bodies[1])

local next_body = 0

function request()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end
