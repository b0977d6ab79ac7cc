-- Repeat: guarded (a second run finds the probe lease holding its token and answers probe again).
-- breaker_allow.lua: may a call go to this deployment now?
-- KEYS[1] breaker hash (state, open_until, ...)   KEYS[2] probe lease string
-- KEYS[3] the provider's health hash
-- ARGV[1] now (s)   ARGV[2] probe lease ms   ARGV[3] probe token
-- Returns {decision, state_before, state_after}; decision: "closed" (allowed), "probe" (allowed:
-- the one half-open trial call of the whole fleet, held by the lease), "open" (refused),
-- "unhealthy" (refused: the provider's last health check failed).
-- A probe whose holder dies expires with its lease, so a dead probe cannot wedge the breaker.
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if redis.call('HGET', KEYS[3], 'healthy') == '0' then return {'unhealthy', state, state} end
if state == 'closed' then return {'closed', state, state} end
local before = state
if state == 'open' then
  local until_ = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
  if tonumber(ARGV[1]) < until_ then return {'open', before, state} end
  state = 'half_open'
  redis.call('HSET', KEYS[1], 'state', state)
end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[2]) then
  return {'probe', before, state}
end
-- The lease holds this call's own token: a second run of the same call, whose first reply was
-- lost. It is the probe (refused, no call would be made and the breaker would wait for the
-- unused lease to lapse).
if redis.call('GET', KEYS[2]) == ARGV[3] then return {'probe', before, state} end
return {'open', before, state}
