-- Repeat: guarded (a second run finds the file's usage field and reserves nothing).
-- file_reserve.lua: reserve room for a file's content, within the store's bound and its API
-- key's.
-- KEYS[1] usage hash (bytes per file id, '#total'; per file '<id>:owner', per key
-- '#owner:<key id>')   KEYS[2] uploading zset (the chunk lists of abandoned uploads expire by
-- themselves)
-- ARGV[1] file id   ARGV[2] bytes   ARGV[3] the store's bound (files.redis_max_bytes)
-- ARGV[4] now (s)   ARGV[5] abandoned after (s)   ARGV[6] the owner (API key id)
-- ARGV[7] the owner's bound (files.max_bytes_per_key)
-- Returns {1, total} reserved | {0, total} it would not fit in the store | {-1, the owner's
-- bytes} it would not fit in the owner's bound. Reservations of uploads that never completed
-- (their API process died) are given back first, a few per call.
-- The file already holds its reservation: a second run of the same call (redis-py sent it again
-- after losing the first run's reply; file ids are never reused) reserves nothing more.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return {1, tonumber(redis.call('HGET', KEYS[1], '#total') or '0')}
end
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[5]), 'LIMIT', 0, 20)
for _, id in ipairs(stale) do
  local held = tonumber(redis.call('HGET', KEYS[1], id) or '0')
  local owner = redis.call('HGET', KEYS[1], id .. ':owner')
  redis.call('HINCRBY', KEYS[1], '#total', -held)
  if owner then redis.call('HINCRBY', KEYS[1], '#owner:' .. owner, -held) end
  redis.call('HDEL', KEYS[1], id, id .. ':owner')
  redis.call('ZREM', KEYS[2], id)
end
local total = tonumber(redis.call('HGET', KEYS[1], '#total') or '0')
local mine = tonumber(redis.call('HGET', KEYS[1], '#owner:' .. ARGV[6]) or '0')
local bytes = tonumber(ARGV[2])
if mine + bytes > tonumber(ARGV[7]) then return {-1, mine} end
if total + bytes > tonumber(ARGV[3]) then return {0, total} end
redis.call('HINCRBY', KEYS[1], '#total', bytes)
redis.call('HINCRBY', KEYS[1], '#owner:' .. ARGV[6], bytes)
redis.call('HSET', KEYS[1], ARGV[1], bytes, ARGV[1] .. ':owner', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return {1, total + bytes}
