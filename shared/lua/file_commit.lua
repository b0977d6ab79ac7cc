-- Repeat: safe (idempotent: the same fields, index entry and expiry again).
-- file_commit.lua: an upload's chunks are all written: the file exists from now on.
-- KEYS[1] file hash   KEYS[2] chunk list   KEYS[3] owner's file index   KEYS[4] usage hash
-- KEYS[5] uploading zset
-- ARGV[1] file id   ARGV[2] created (s, fractional: the index order)   ARGV[3] bytes
-- then field, value pairs
-- Returns 1, or 0 when the reservation was given back meanwhile (an upload slower than the
-- abandon time): the caller drops the chunks and answers an error.
if not redis.call('HGET', KEYS[4], ARGV[1]) then return 0 end
if tonumber(ARGV[3]) > 0 then redis.call('PERSIST', KEYS[2]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
