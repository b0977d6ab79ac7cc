-- Repeat: safe (a second run finds nothing left to give back; a delete then answers 0, not found).
-- file_delete.lua: delete a file (its owner's) or give back an upload's reservation.
-- KEYS[1] file hash   KEYS[2] chunk list   KEYS[3] owner's file index   KEYS[4] usage hash
-- KEYS[5] uploading zset (the usage hash holds the file's bytes, its owner's sum and the
-- store's: file_reserve.lua)
-- ARGV[1] file id   ARGV[2] owner ("" : an unfinished upload of the caller's, no record yet)
-- Returns 1 deleted | 0 no such file of this owner. UNLINK frees a large list off Redis's
-- main thread.
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] then return 0 end
local held = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
local holder = redis.call('HGET', KEYS[4], ARGV[1] .. ':owner')
if held > 0 then
  redis.call('HINCRBY', KEYS[4], '#total', -held)
  if holder then redis.call('HINCRBY', KEYS[4], '#owner:' .. holder, -held) end
end
redis.call('HDEL', KEYS[4], ARGV[1], ARGV[1] .. ':owner')
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('UNLINK', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
