-- renew.lua: extend a lease the caller still holds.
-- KEYS[1] lease string   KEYS[2] inflight zset
-- ARGV[1] token   ARGV[2] lease ms   ARGV[3] now (s)   ARGV[4] job id
-- Returns 1 if renewed, 0 if the lease is no longer ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[2]) / 1000, ARGV[4])
return 1
