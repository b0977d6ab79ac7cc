-- lastgood_put.lua: keep the last good answer to a request (the cached-response fallback),
-- bounded in entries so it can never fill a noeviction Redis.
-- KEYS[1] entry string   KEYS[2] index zset (entry key -> time stored)
-- ARGV[1] answer JSON   ARGV[2] TTL s   ARGV[3] now (s)   ARGV[4] max entries
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[2]))
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if extra > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], extra)
  for i = 1, #old, 2 do redis.call('DEL', old[i]) end
end
return 1
