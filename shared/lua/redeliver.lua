-- redeliver.lua: the pending sweep claims a queued job whose broker message was lost (taken by a
-- worker that was killed or cut off before it began the job, or never published); the caller
-- republishes it.
-- KEYS[1] job hash   KEYS[2] the pending zset of the job's priority (the one swept)
-- KEYS[3] the taken zset (jobs a live worker holds, waiting for a slot, scored by when that
-- claim lapses unless renewed, on Redis's clock: hold.lua)
-- ARGV[1] job id   ARGV[2] cutoff (s): claim only if still scored at or before it   ARGV[3] now (s)
-- Returns the job's priority when claimed (re-scored to now, so a second sweeper skips it),
-- "" otherwise (dropped from the set when no longer queued; left alone while a live worker
-- holds it).
-- Repeat: safe. A second run finds the job re-scored past the cutoff and changes nothing.
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return '' end
local held = redis.call('ZSCORE', KEYS[3], ARGV[1])
local t = redis.call('TIME')  -- claims are scored by Redis's clock (hold.lua)
if held and tonumber(held) > tonumber(t[1]) + tonumber(t[2]) / 1e6 then return '' end
if held then redis.call('ZREM', KEYS[3], ARGV[1]) end
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return ''
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return redis.call('HGET', KEYS[1], 'priority') or 'normal'
