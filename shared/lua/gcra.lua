-- Repeat: a library; see each script that loads it (ratelimit, ratelimit_adjust, quota_acquire).
-- gcra.lua (functions loaded ahead of the scripts that limit a rate; shared/lua/__init__.py
-- with_library): GCRA, the generic cell rate algorithm, written once for every per-minute
-- limit (an API key's requests and tokens per minute in ratelimit.lua and its correction in
-- ratelimit_adjust.lua; a provider's requests per minute in quota_acquire.lua).
-- A limit of N per minute is a theoretical arrival time (TAT, ms on Redis's clock, one clock
-- for the whole fleet) kept in a string key: a burst of N is admitted at once, then one every
-- 60/N s. No KEYS or ARGV of its own: each function takes the key it works on.
local GCRA_PERIOD_MS = 60000

-- Redis's clock in ms.
local function gcra_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The key's TAT, never in the past.
local function gcra_tat(key, now)
  local v = tonumber(redis.call('GET', key) or '0')
  if v < now then return now end
  return v
end

-- From a TAT: the TAT after taking cost (nil when refused) and the ms until it could be.
local function gcra_take(tat, limit, cost, now)
  local new_tat = tat + cost * GCRA_PERIOD_MS / limit
  local allow_at = new_tat - GCRA_PERIOD_MS
  if allow_at > now then return nil, allow_at - now end
  return new_tat, 0
end

-- How many more of cost 1 the TAT leaves room for now.
local function gcra_remaining(tat, limit, now)
  return math.floor((GCRA_PERIOD_MS - (tat - now)) / (GCRA_PERIOD_MS / limit))
end

-- Keep a TAT until it has passed (a TAT in the past is the same as none).
local function gcra_store(key, tat, now)
  redis.call('SET', key, string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1)
end

-- Move a TAT by cost (negative: give back) without a check: a correction once the real
-- cost is known. Returns the ms until the TAT has passed (0: the key is gone).
local function gcra_adjust(key, limit, cost, now)
  local tat = gcra_tat(key, now) + cost * GCRA_PERIOD_MS / limit
  if tat <= now then
    redis.call('DEL', key)
    return 0
  end
  gcra_store(key, tat, now)
  return math.ceil(tat - now)
end
