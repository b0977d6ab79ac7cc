-- Repeat: safe for state; a second run answers {} (claimed): it is sent once the claim lapses.
-- webhook_claim.lua: a sender takes a due delivery for one attempt: re-scored past the
-- attempt's timeout, so no other sender takes it meanwhile, and a lost sender's delivery is
-- due again once that passes.
-- KEYS[1] the due zset   KEYS[2] the delivery hash
-- ARGV[1] delivery id   ARGV[2] now (s)   ARGV[3] when it is due again if no result comes (s)
-- Returns the delivery's fields (HGETALL) or {} (not due, or gone).
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return {} end
if redis.call('HGET', KEYS[2], 'status') ~= 'pending' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return {}
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return redis.call('HGETALL', KEYS[2])
