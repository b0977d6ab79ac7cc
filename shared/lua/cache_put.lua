-- Repeat: safe (idempotent: a second run replaces the entry it stored, its size counted once).
-- cache_put.lua: store an answer in the response cache, bounded in entries and bytes so it can
-- never fill a noeviction Redis (which would block enqueue).
-- KEYS[1] entry (string)   KEYS[2] index (zset: entry key -> time stored)
-- KEYS[3] sizes (hash: entry key -> bytes; field '#total' the sum)
-- ARGV[1] value   ARGV[2] TTL (ms)   ARGV[3] unused   ARGV[4] max entries   ARGV[5] max bytes
-- Index scores are Redis's clock in microseconds, so entries stored together keep their order.
-- Oldest entries go first; expired ones are dropped from the accounting as they are found.
local size = string.len(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[2]) * 1000
local max_entries, max_bytes = tonumber(ARGV[4]), tonumber(ARGV[5])
if size > max_bytes then return 0 end
local total = tonumber(redis.call('HGET', KEYS[3], '#total') or '0')

local function drop(member)
  local s = tonumber(redis.call('HGET', KEYS[3], member) or '0')
  total = total - s
  redis.call('HDEL', KEYS[3], member)
  redis.call('ZREM', KEYS[2], member)
end

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - ttl, 'LIMIT', 0, 100)
for _, m in ipairs(expired) do
  drop(m)
  redis.call('DEL', m)
end
if redis.call('HEXISTS', KEYS[3], KEYS[1]) == 1 then drop(KEYS[1]) end

redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now, KEYS[1])
redis.call('HSET', KEYS[3], KEYS[1], size)
total = total + size
while redis.call('ZCARD', KEYS[2]) > max_entries or total > max_bytes do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #oldest == 0 then break end
  drop(oldest[1])
  redis.call('DEL', oldest[1])
end
if total < 0 then total = 0 end
redis.call('HSET', KEYS[3], '#total', total)
return 1
