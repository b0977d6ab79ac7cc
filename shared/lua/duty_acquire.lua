-- Repeat: safe (idempotent: a second run finds the lease its own and renews it, same fence).
-- duty_acquire.lua: take or renew a duty's fenced lease (one holder across the fleet).
-- KEYS[1] the lease (string "token:fence", PX)   KEYS[2] the duty's fence counter
-- ARGV[1] token   ARGV[2] ttl (ms)   ARGV[3] "1": may take a free lease; "0": renew only
-- Returns the fence number (a new one each time the lease changes hands) while held by
-- ARGV[1] after this call, else false (held by another, or lost and renew-only).
local current = redis.call('GET', KEYS[1])
if current then
  local holder, fence = string.match(current, '^(.*):(%d+)$')
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(fence)
  end
  return false
end
if ARGV[3] ~= '1' then return false end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. fence, 'PX', ARGV[2])
return fence
