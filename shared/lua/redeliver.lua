-- redeliver.lua: the pending sweep claims a job still queued long after it was published
-- (the broker may have lost its message); the caller republishes it.
-- KEYS[1] job hash   KEYS[2] the pending zset of the job's priority (the one swept)
-- ARGV[1] job id   ARGV[2] cutoff (s): claim only if still scored at or before it   ARGV[3] now (s)
-- Returns the job's priority when claimed (re-scored to now, so a second sweeper skips it),
-- "" otherwise (dropped from the set when no longer queued).
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return '' end
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return ''
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return redis.call('HGET', KEYS[1], 'priority') or 'normal'
