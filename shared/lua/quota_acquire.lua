-- quota_acquire.lua: take one call from a provider's fleet-wide quota: requests per minute
-- (GCRA, a burst of N then one every 60/N s) and calls in flight. All or nothing.
-- KEYS[1] rpm TAT (string, ms)   KEYS[2] calls in flight (zset: member -> slot expiry, ms)
-- ARGV[1] rpm (0 = none)   ARGV[2] max concurrent (0 = none)   ARGV[3] member
-- ARGV[4] slot lifetime (ms): a worker that dies mid-call frees its slot after this
-- Returns {1, 'ok', 0} or {0, 'rpm'|'concurrent', retry_ms}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, max_conc = tonumber(ARGV[1]), tonumber(ARGV[2])
if max_conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= max_conc then return {0, 'concurrent', 250} end
end
local new_tat
if rpm > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  new_tat = tat + 60000 / rpm
  local allow_at = new_tat - 60000
  if allow_at > now then return {0, 'rpm', math.ceil(allow_at - now)} end
  redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1)
end
if max_conc > 0 then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]) + 60000)
end
return {1, 'ok', 0}
