-- Token requests of one grant naming each value of a file in turn (one per line) as the grant's
-- credential, the client authenticated by its client_id alone (a public client) or with
-- client_secret_post. Env: BENCH_TOKENS_FILE, BENCH_GRANT_TYPE, BENCH_TOKEN_PARAM (refresh_token
-- or code), BENCH_CLIENT_ID, BENCH_CLIENT_SECRET (optional), BENCH_EXTRA (more form fields,
-- already form-encoded, optional).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

local fields = {
  { "grant_type", common.env("BENCH_GRANT_TYPE") },
  { "client_id", common.env("BENCH_CLIENT_ID") },
}
local secret = common.env("BENCH_CLIENT_SECRET", "")
if secret ~= "" then
  fields[#fields + 1] = { "client_secret", secret }
end
local extra = common.env("BENCH_EXTRA", "")
local param = common.env("BENCH_TOKEN_PARAM")
local bodies = {}
for token in io.lines(common.env("BENCH_TOKENS_FILE")) do
  local body = common.form(fields) .. "&" .. common.form({ { param, token } })
  if extra ~= "" then
    body = body .. "&" .. extra
  end
  bodies[#bodies + 1] = body
end
common.post_form(bodies[1])

local next_body = 0

function request()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end
