-- Repeat: safe for state (the room is taken); ids it never answered wait for the pending sweep.
-- fair_release.lua: release an API key's held jobs of one priority into the broker, as many
-- as its window has room for (fair share, shared/state/fair.py).
-- KEYS[1] the key's window zset   KEYS[2] its backlog list   KEYS[3] the priority's set of
-- keys with a backlog   KEYS[4] the priority's held counter   KEYS[5] the priority's pending
-- zset   KEYS[6] the broker queue   KEYS[7] the queue's group list   KEYS[8] its group marker
-- ARGV[1] the key's window   ARGV[2] now (s)   ARGV[3] the key's id
-- ARGV[4] window entries released at or before this (s) no longer count (a lost message: the
-- pending sweep redelivers that job)   ARGV[5] a group message ("": the caller publishes each
-- id)   ARGV[6] the group marker's TTL (ms)
-- Returns the ids released, oldest first: now pending, in the window, and (with ARGV[5]) in
-- the queue's group, with a group message in the broker unless one is outstanding.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
if free <= 0 then return {} end
local ids = redis.call('LRANGE', KEYS[2], 0, free - 1)
if #ids > 0 then redis.call('LTRIM', KEYS[2], #ids, -1) end
if redis.call('LLEN', KEYS[2]) == 0 then redis.call('SREM', KEYS[3], ARGV[3]) end
if #ids == 0 then return ids end
redis.call('DECRBY', KEYS[4], #ids)
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[2], id)
  redis.call('ZADD', KEYS[5], ARGV[2], id)
  if ARGV[5] ~= '' then redis.call('RPUSH', KEYS[7], id) end
end
if ARGV[5] ~= '' and redis.call('SET', KEYS[8], '1', 'NX', 'PX', ARGV[6]) then
  redis.call('LPUSH', KEYS[6], ARGV[5])
end
return ids
