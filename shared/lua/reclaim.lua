-- reclaim.lua: the lease reaper claims one job whose worker vanished.
-- KEYS[1] job hash   KEYS[2] lease string   KEYS[3] inflight zset
-- KEYS[4..6] the pending zsets (interactive, normal, batch)
-- ARGV[1] job id   ARGV[2] now (s)
-- Repeat: safe for state. A second run answers "" (no longer in flight); if the first answer was
-- lost, the job is queued and pending, so the pending sweep republishes it.
-- Returns the job's priority when claimed (the caller republishes it), "" when there is
-- nothing to do (lease still held, job terminal or gone: dropped from the inflight set).
if redis.call('EXISTS', KEYS[2]) == 1 then return '' end
if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then return '' end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' and status ~= 'queued' and status ~= 'retrying' then return '' end
redis.call('HSET', KEYS[1], 'status', 'queued')
local priority = redis.call('HGET', KEYS[1], 'priority') or 'normal'
redis.call('ZADD', ({interactive = KEYS[4], normal = KEYS[5], batch = KEYS[6]})[priority] or KEYS[5], ARGV[2], ARGV[1])
return priority
