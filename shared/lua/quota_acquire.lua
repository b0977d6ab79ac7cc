-- Repeat: guarded by the call's slot (max concurrent); rpm alone: one 60/rpm s step more, accepted.
-- quota_acquire.lua: take one call from a provider's fleet-wide quota: requests per minute
-- (GCRA: gcra.lua, loaded ahead of this script) and calls in flight. All or nothing.
-- KEYS[1] rpm TAT (string, ms)   KEYS[2] calls in flight (zset: member -> slot expiry, ms)
-- ARGV[1] rpm (0 = none)   ARGV[2] max concurrent (0 = none)   ARGV[3] member
-- ARGV[4] slot lifetime (ms): a worker that dies mid-call frees its slot after this
-- Returns {1, 'ok', 0} or {0, 'rpm'|'concurrent', retry_ms}.
local now = gcra_now()
local rpm, max_conc = tonumber(ARGV[1]), tonumber(ARGV[2])
-- The call already has its slot: a second run of the same call (a member is a delivery's own),
-- whose first reply was lost. It was granted, as this answer says again.
if max_conc > 0 and redis.call('ZSCORE', KEYS[2], ARGV[3]) then return {1, 'ok', 0} end
if max_conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= max_conc then return {0, 'concurrent', 250} end
end
if rpm > 0 then
  local new_tat, wait = gcra_take(gcra_tat(KEYS[1], now), rpm, 1, now)
  if not new_tat then return {0, 'rpm', math.ceil(wait)} end
  gcra_store(KEYS[1], new_tat, now)
end
if max_conc > 0 then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]) + 60000)
end
return {1, 'ok', 0}
