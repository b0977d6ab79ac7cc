-- Repeat: safe (idempotent: the same fields written again under the same lease).
-- update.lua: write fields of a job only while the caller holds its lease.
-- KEYS[1] job hash   KEYS[2] lease string
-- ARGV[1] token, then field, value pairs
-- Returns 1 if written, 0 if the lease is not ours or the record is gone.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end  -- never recreate a lapsed record
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
return 1
