-- ratelimit.lua: an API key's requests/min and tokens/min (GCRA) and concurrent jobs, checked
-- and taken together: all or nothing, so any number of API processes act as one limiter.
-- KEYS[1] rpm TAT (string)   KEYS[2] tpm TAT (string)   KEYS[3] concurrent jobs (zset)
-- ARGV[1] rpm (0 = no limit)   ARGV[2] tpm (0 = none)   ARGV[3] tokens this request costs
-- ARGV[4] max concurrent (0 = none)   ARGV[5] job id (the slot's member)
-- ARGV[6] job key prefix (a slot whose job is terminal is free)
-- ARGV[7] ms a slot may exist without its job record (the process died before creating it)
-- ARGV[8] consume: 1 take, 0 only report
-- GCRA: capacity N refilled at N per minute; a burst of N is admitted at once, then one every
-- 60/N s. The clock is Redis's (TIME), one for the whole fleet.
-- Returns {allowed 0|1, reason, retry_ms, rpm_remaining, rpm_reset_ms, tpm_remaining,
--          tpm_reset_ms, concurrent}; reason: ok | rpm | tpm | too_large | concurrency.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period = 60000
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens, max_conc = tonumber(ARGV[3]), tonumber(ARGV[4])
local consume = ARGV[8] == '1'

local function tat_of(key)
  local v = tonumber(redis.call('GET', key) or '0')
  if v < now then return now end
  return v
end

-- From the current TAT: the TAT after taking cost (or nil when refused), and the wait until
-- it could be taken.
local function gcra(tat, limit, cost)
  local new_tat = tat + cost * period / limit
  local allow_at = new_tat - period
  if allow_at > now then return nil, allow_at - now end
  return new_tat, 0
end

local function remaining(tat, limit)
  return math.floor((period - (tat - now)) / (period / limit))
end

local reason, retry = 'ok', 0
local rpm_tat, tpm_tat
if rpm > 0 then
  rpm_tat = tat_of(KEYS[1])
  if consume then
    local new, wait = gcra(rpm_tat, rpm, 1)
    if new then rpm_tat = new else reason, retry = 'rpm', wait end
  end
end
if tpm > 0 then
  tpm_tat = tat_of(KEYS[2])
  if consume and reason == 'ok' then
    if tokens > tpm then
      reason = 'too_large'
    else
      local new, wait = gcra(tpm_tat, tpm, tokens)
      if new then tpm_tat = new else reason, retry = 'tpm', wait end
    end
  end
end

local conc = 0
if max_conc > 0 then
  conc = redis.call('ZCARD', KEYS[3])
  if consume and reason == 'ok' and conc >= max_conc then
    -- At the limit: free the slots of jobs that ended (or were never created) before refusing.
    local slots = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
    for i = 1, #slots, 2 do
      local status = redis.call('HGET', ARGV[6] .. slots[i], 'status')
      local ended = status == 'succeeded' or status == 'failed' or status == 'cancelled'
        or status == 'expired'
      if ended or (not status and tonumber(slots[i + 1]) < now - tonumber(ARGV[7])) then
        redis.call('ZREM', KEYS[3], slots[i])
      end
    end
    conc = redis.call('ZCARD', KEYS[3])
    if conc >= max_conc then reason, retry = 'concurrency', 1000 end
  end
end

if consume and reason == 'ok' then
  if rpm > 0 then
    redis.call('SET', KEYS[1], string.format('%.3f', rpm_tat), 'PX', math.ceil(rpm_tat - now) + 1)
  end
  if tpm > 0 and tokens > 0 then
    redis.call('SET', KEYS[2], string.format('%.3f', tpm_tat), 'PX', math.ceil(tpm_tat - now) + 1)
  end
  if max_conc > 0 then
    redis.call('ZADD', KEYS[3], now, ARGV[5])
    redis.call('PEXPIRE', KEYS[3], 7 * 86400 * 1000)
    conc = conc + 1
  end
end

local rr, rt, tr, tt = -1, 0, -1, 0
if rpm > 0 then rr, rt = remaining(rpm_tat, rpm), math.ceil(rpm_tat - now) end
if tpm > 0 then tr, tt = remaining(tpm_tat, tpm), math.ceil(tpm_tat - now) end
return {reason == 'ok' and 1 or 0, reason, math.ceil(retry), rr, rt, tr, tt, conc}
