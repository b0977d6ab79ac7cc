-- Repeat: safe for state; a second run answers "" (claimed): the pending sweep republishes the job.
-- due_claim.lua: the due sweep claims one parked job whose time has come.
-- KEYS[1] job hash   KEYS[2] due zset   KEYS[3..5] the pending zsets (interactive, normal, batch)
-- ARGV[1] job id   ARGV[2] now (s)
-- Returns the job's priority when claimed (now queued and pending; the caller publishes it),
-- "" otherwise (already claimed by another sweeper, or no longer parked).
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return '' end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'retrying' and status ~= 'queued' then return '' end
redis.call('HSET', KEYS[1], 'status', 'queued')
local priority = redis.call('HGET', KEYS[1], 'priority') or 'normal'
redis.call('ZADD', ({interactive = KEYS[3], normal = KEYS[4], batch = KEYS[5]})[priority] or KEYS[4], ARGV[2], ARGV[1])
return priority
