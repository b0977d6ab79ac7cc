-- Repeat: safe (the same beat written again, or the same goodbye: nothing left to remove).
-- worker_beat.lua: a worker's heartbeat and its entry in the workers index, in one step; or,
-- as the worker stops, both removed.
-- KEYS[1] the worker's heartbeat (string, EX: exists exactly while the worker lives)
-- KEYS[2] the workers index (sorted set: worker name -> its last beat, s)
-- ARGV[1] the worker's name   ARGV[2] the beat (JSON; "": the worker is stopping)
-- ARGV[3] the heartbeat's TTL (s)   ARGV[4] now (s)
-- Every beat trims the index of entries older than a TTL: workers gone without a goodbye.
-- Returns the number of entries trimmed (0 when stopping).
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
local now = tonumber(ARGV[4])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('ZADD', KEYS[2], now, ARGV[1])
return redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - tonumber(ARGV[3])))
