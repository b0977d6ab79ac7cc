-- Repeat: guarded (a second run finds its own record current and answers ok with its version).
-- config_put.lua: make a new version of the Redis config layer current, if nobody else did
-- since the caller read the layer (compare-and-set on the current version number).
-- KEYS[1] version counter   KEYS[2] versions hash   KEYS[3] current version string
-- ARGV[1] the version the caller started from ("0": none)   ARGV[2] record JSON
-- ARGV[3] how many versions to keep   ARGV[4] change channel
-- Returns {"ok", version} | {"conflict", current version}.
local current = redis.call('GET', KEYS[3]) or '0'
if current ~= ARGV[1] then
  -- The current version is this very record (its time, actor and note): a second run of the
  -- same call, whose first reply was lost. It was stored; that is the answer again.
  if current ~= '0' and redis.call('HGET', KEYS[2], current) == ARGV[2] then
    return {'ok', current}
  end
  return {'conflict', current}
end
local version = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], version, ARGV[2])
redis.call('SET', KEYS[3], version)
local old = version - tonumber(ARGV[3])
if old > 0 then redis.call('HDEL', KEYS[2], old) end
redis.call('PUBLISH', ARGV[4], version)
return {'ok', tostring(version)}
