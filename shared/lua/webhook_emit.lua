-- Repeat: guarded (EXISTS per delivery: a second run finds them all and answers 0 new).
-- webhook_emit.lua: an event's deliveries exist and are due, once: a delivery whose id is
-- already known is left as it is (the outbox entry was turned into deliveries before, by a
-- worker lost before it could say so).
-- KEYS[1] the due zset   KEYS[2] the owner's delivery index   KEYS[3..] each delivery's hash
-- ARGV[1] now (s)   ARGV[2] keeping time (s)   ARGV[3..] one JSON object of string fields per
-- delivery, in KEYS[3..] order (its "id" included)
-- Returns how many deliveries were new.
local new = 0
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
for i = 3, #ARGV do
  local key = KEYS[i]
  if redis.call('EXISTS', key) == 0 then
    local fields = hset_json({key}, {ARGV[i]})  -- hset_json.lua, loaded with this script
    redis.call('EXPIRE', key, ARGV[2])
    redis.call('ZADD', KEYS[1], ARGV[1], fields.id)
    redis.call('ZADD', KEYS[2], ARGV[1], fields.id)
    new = new + 1
  end
end
return new
