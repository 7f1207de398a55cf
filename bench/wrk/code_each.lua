-- RFC 6749 §4.1.3 authorization code redemption by a public client (`none`, PKCE S256), each
-- code of a file used once: wrk thread i of n takes lines i, i+n, i+2n, ... so no two
-- requests present the same code (a second redemption would be a replay, RFC 6749 §10.5).
-- Env: BENCH_CODES_FILE, BENCH_CLIENT_ID, BENCH_REDIRECT_URI, BENCH_CODE_VERIFIER.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

local base_setup = setup
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  base_setup(thread)
end

local codes = {}
local next_code = 0

function init(args)
  local index, every = thread_index or 0, tonumber(common.env("BENCH_THREADS", "1"))
  local line = 0
  for code in io.lines(common.env("BENCH_CODES_FILE")) do
    if line % every == index then
      codes[#codes + 1] = code
    end
    line = line + 1
  end
  common.post_form("")
end

local client_id = common.env("BENCH_CLIENT_ID")
local redirect_uri = common.env("BENCH_REDIRECT_URI")
local verifier = common.env("BENCH_CODE_VERIFIER")

function request()
  -- Past the end the codes come round again: those redemptions are replays and count as
  -- failures, which is how a file too short for the run shows in the report.
  next_code = next_code % #codes + 1
  return wrk.format(nil, nil, nil, common.form({
    { "grant_type", "authorization_code" },
    { "code", codes[next_code] },
    { "redirect_uri", redirect_uri },
    { "client_id", client_id },
    { "code_verifier", verifier },
  }))
end
