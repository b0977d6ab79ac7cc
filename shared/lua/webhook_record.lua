-- Repeat: guarded (a second run finds its attempt last and changes nothing).
-- webhook_record.lua: one attempt's result: appended to the delivery's attempts, then the
-- delivery is done (succeeded), due again at ARGV[4] (retry), or given up (failed).
-- KEYS[1] the due zset   KEYS[2] the delivery hash
-- ARGV[1] delivery id   ARGV[2] the attempt (JSON object)   ARGV[3] succeeded | retry | failed
-- ARGV[4] when to try again (retry)   ARGV[5] keeping time (s)
-- Returns the number of attempts made, or 0 if the delivery is gone.
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
local attempts = cjson.decode(redis.call('HGET', KEYS[2], 'attempts') or '[]')
if type(attempts) ~= 'table' then attempts = {} end
local attempt = cjson.decode(ARGV[2])
-- The last attempt recorded is this one, field for field (its start time and duration): a
-- second run of the same call, whose first reply was lost. Recorded once, as answered again.
local last = attempts[#attempts]
if type(last) == 'table' then
  local same = true
  for k, v in pairs(attempt) do
    if last[k] ~= v then same = false end
  end
  for k in pairs(last) do
    if attempt[k] == nil then same = false end
  end
  if same then return #attempts end
end
attempts[#attempts + 1] = attempt
local encoded = cjson.encode(attempts)
if #attempts == 0 then encoded = '[]' end
redis.call('HSET', KEYS[2], 'attempts', encoded)
if ARGV[3] == 'retry' then
  redis.call('HSET', KEYS[2], 'status', 'pending', 'next_at', ARGV[4])
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
else
  redis.call('HSET', KEYS[2], 'status', ARGV[3], 'next_at', '')
  redis.call('ZREM', KEYS[1], ARGV[1])
end
redis.call('EXPIRE', KEYS[2], ARGV[5])
return #attempts
