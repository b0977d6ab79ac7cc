-- reclaim.lua: the lease reaper claims one job whose worker vanished. A job whose lease is still
-- held is its worker's: its inflight entry is re-scored to when the lease really ends (Redis's
-- TTL from the reaper's now), since a worker whose clock runs behind scores its entries in the
-- past, and the reaper, reading the oldest first, would meet those live entries again on
-- every sweep instead of the jobs truly lost behind them.
-- KEYS[1] job hash   KEYS[2] lease string   KEYS[3] inflight zset
-- KEYS[4..6] the pending zsets (interactive, normal, batch)
-- ARGV[1] job id   ARGV[2] now (s)
-- Repeat: safe for state. A second run answers "" (no longer in flight, or the lease is live and
-- its entry is re-scored again); if the first answer was lost, the job is queued and pending,
-- so the pending sweep republishes it.
-- Returns the job's priority when claimed (the caller republishes it), "" when there is
-- nothing to do (lease still held: re-scored; job terminal or gone: dropped from the inflight
-- set).
local ttl = redis.call('PTTL', KEYS[2])
if ttl ~= -2 then  -- -2: no lease. XX: an entry its worker removed meanwhile stays removed.
  redis.call('ZADD', KEYS[3], 'XX', tonumber(ARGV[2]) + math.max(ttl, 0) / 1000, ARGV[1])
  return ''
end
if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then return '' end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' and status ~= 'queued' and status ~= 'retrying' then return '' end
redis.call('HSET', KEYS[1], 'status', 'queued')
local priority = redis.call('HGET', KEYS[1], 'priority') or 'normal'
redis.call('ZADD', ({interactive = KEYS[4], normal = KEYS[5], batch = KEYS[6]})[priority] or KEYS[5], ARGV[2], ARGV[1])
return priority
