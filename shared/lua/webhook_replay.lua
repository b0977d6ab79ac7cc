-- Repeat: safe (a second run finds the delivery pending and answers 0).
-- webhook_replay.lua: deliver an event again (a failed delivery, or a receiver that lost it):
-- due now, its attempts kept. A delivery still pending is left as it is.
-- KEYS[1] the due zset   KEYS[2] the delivery hash
-- ARGV[1] delivery id   ARGV[2] now (s)
-- Returns 1 replayed | 0 already pending | -1 gone.
local status = redis.call('HGET', KEYS[2], 'status')
if not status then return -1 end
if status == 'pending' then return 0 end
redis.call('HSET', KEYS[2], 'status', 'pending', 'next_at', ARGV[2], 'replays',
  tonumber(redis.call('HGET', KEYS[2], 'replays') or '0') + 1)
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
