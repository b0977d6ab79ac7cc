-- Repeat: safe for state; a second run answers 0 (lease gone), giving back nothing twice: the
-- pending sweep republishes it.
-- release.lua: give a job back (worker shutdown) so another worker runs it at once. A released
-- delivery ended cleanly, so begin.lua's count of it is given back (as defer.lua does for a
-- parked job): queue.max_deliveries counts only deliveries that vanished, and rolling
-- restarts during one long job never exhaust it.
-- KEYS[1] job hash   KEYS[2] lease string   KEYS[3] inflight zset
-- KEYS[4..6] the pending zsets (interactive, normal, batch)
-- ARGV[1] token   ARGV[2] job id   ARGV[3] now (s)
-- Returns 1 if released (the caller republishes), 0 if the lease was not ours.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
if redis.call('HGET', KEYS[1], 'status') == 'running' then
  redis.call('HINCRBY', KEYS[1], 'deliveries', -1)
  redis.call('HSET', KEYS[1], 'status', 'queued')
  local priority = redis.call('HGET', KEYS[1], 'priority') or 'normal'
  redis.call('ZADD', ({interactive = KEYS[4], normal = KEYS[5], batch = KEYS[6]})[priority] or KEYS[5], ARGV[3], ARGV[2])
end
return 1
