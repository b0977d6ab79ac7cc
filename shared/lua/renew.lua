-- Repeat: safe (idempotent: the lease is its own; its expiry and inflight score are set again).
-- renew.lua: extend a lease the caller still holds, or take it back if it lapsed while the
-- job still runs here (a Redis outage longer than the lease: its expiry passed while Redis
-- was down) and no other worker has begun or reclaimed the job since.
-- KEYS[1] lease string   KEYS[2] inflight zset   KEYS[3] job hash
-- ARGV[1] token   ARGV[2] lease ms   ARGV[3] now (s)   ARGV[4] job id
-- Returns 1 if renewed, 0 if the lease is no longer ours.
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then
  if current or redis.call('HGET', KEYS[3], 'status') ~= 'running' then return 0 end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[2]) / 1000, ARGV[4])
return 1
