-- wrk script: replays a pool of pre-signed requests, one "path<TAB>body" per line (written by Python,
-- because WeChat's signatures need SHA-1, which wrk's Lua lacks).
-- Usage: wrk -tTHREADS ... -s replay_pool.lua URL -- POOL THREADS
-- Each thread replays its own share of the lines, so every request is distinct (its own MsgId and openid).
-- Counts 200 answers that are not a passive reply ("success" means the bot had no reply ready) and how often
-- a thread ran out of pool and started over (its requests would then be WeChat retries, not new messages).

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   -- setup() runs thread by thread, so the thread count comes from the command line.
   local pool, thread_total, share = args[1], tonumber(args[2]), {}
   local line_number = 0
   for line in io.lines(pool) do
      if line_number % thread_total == id then
         local tab = line:find("\t", 1, true)
         local headers = { ["Content-Type"] = "text/xml" }
         share[#share + 1] = wrk.format("POST", line:sub(1, tab - 1), headers, line:sub(tab + 1))
      end
      line_number = line_number + 1
   end
   requests_share = share
   cursor = 0
   not_a_reply = 0
   wraps = 0
end

function request()
   cursor = cursor + 1
   if cursor > #requests_share then
      cursor = 1
      wraps = wraps + 1
   end
   return requests_share[cursor]
end

function response(status, headers, body)
   if status == 200 and not body:find("<xml>", 1, true) then
      not_a_reply = not_a_reply + 1
   end
end

function done(summary, latency, requests)
   local bad, wrapped = 0, 0
   for _, thread in ipairs(threads) do
      bad = bad + thread:get("not_a_reply")
      wrapped = wrapped + thread:get("wraps")
   end
   io.write(string.format("not-a-reply %d\n", bad))
   io.write(string.format("pool-wraps %d\n", wrapped))
end
