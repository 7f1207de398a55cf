-- RFC 6749 §6 refresh with rotation by a public client (`none`): every response carries the
-- successor refresh token, which goes back into the thread's pool, so each token is presented
-- exactly once and each connection keeps walking its token chains (OAuth 2.1 §4.3.1: a
-- rotated token presented again would be reuse, and revoke the family). wrk thread i of n
-- starts with lines i, i+n, ... of the file; the pool must hold more tokens than a thread has
-- connections. Env: BENCH_TOKENS_FILE, BENCH_CLIENT_ID, BENCH_THREADS.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

local base_setup = setup
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  base_setup(thread)
end

local pool, head, tail = {}, 1, 0
local client_id = common.env("BENCH_CLIENT_ID")

function init(args)
  local index, every = thread_index or 0, tonumber(common.env("BENCH_THREADS", "1"))
  local line = 0
  for token in io.lines(common.env("BENCH_TOKENS_FILE")) do
    if line % every == index then
      tail = tail + 1
      pool[tail] = token
    end
    line = line + 1
  end
  common.post_form("")
end

function request()
  local token = "pool-empty"  -- refused, so an exhausted pool shows up as failures
  if head <= tail then
    token = pool[head]
    pool[head] = nil
    head = head + 1
  end
  return wrk.format(nil, nil, nil, common.form({
    { "grant_type", "refresh_token" },
    { "refresh_token", token },
    { "client_id", client_id },
  }))
end

local base_response = response

function response(status, headers, body)
  base_response(status, headers, body)
  local successor = status == 200 and body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if successor then
    tail = tail + 1
    pool[tail] = successor
  end
end
