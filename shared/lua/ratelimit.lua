-- Repeat: guarded by the job's slot (max concurrent); else one GCRA step more, accepted: bounded.
-- ratelimit.lua: an API key's requests/min and tokens/min (GCRA) and concurrent jobs, checked
-- and taken together: all or nothing, so any number of API processes act as one limiter.
-- KEYS[1] rpm TAT (string)   KEYS[2] tpm TAT (string)   KEYS[3] concurrent jobs (zset)
-- ARGV[1] rpm (0 = no limit)   ARGV[2] tpm (0 = none)   ARGV[3] tokens this request costs
-- ARGV[4] max concurrent (0 = none)   ARGV[5] job id (the slot's member)
-- ARGV[6] job key prefix (a slot whose job is terminal is free)
-- ARGV[7] ms a slot may exist without its job record (the process died before creating it)
-- ARGV[8] consume: 1 take, 0 only report
-- GCRA (gcra.lua, loaded ahead of this script): a burst of N is admitted at once, then one
-- every 60/N s, on Redis's clock, one for the whole fleet.
-- Returns {allowed 0|1, reason, retry_ms, rpm_remaining, rpm_reset_ms, tpm_remaining,
--          tpm_reset_ms, concurrent}; reason: ok | rpm | tpm | too_large | concurrency.
local now = gcra_now()
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens, max_conc = tonumber(ARGV[3]), tonumber(ARGV[4])
local consume = ARGV[8] == '1'
-- The job already has its slot: a second run of the same call (job ids are never reused), whose
-- first reply was lost. It was admitted: answered again, taking nothing more.
if consume and max_conc > 0 and ARGV[5] ~= '' and redis.call('ZSCORE', KEYS[3], ARGV[5]) then
  consume = false
end

local reason, retry = 'ok', 0
local rpm_tat, tpm_tat
if rpm > 0 then
  rpm_tat = gcra_tat(KEYS[1], now)
  if consume then
    local new, wait = gcra_take(rpm_tat, rpm, 1, now)
    if new then rpm_tat = new else reason, retry = 'rpm', wait end
  end
end
if tpm > 0 then
  tpm_tat = gcra_tat(KEYS[2], now)
  if consume and reason == 'ok' then
    if tokens > tpm then
      reason = 'too_large'
    else
      local new, wait = gcra_take(tpm_tat, tpm, tokens, now)
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
    gcra_store(KEYS[1], rpm_tat, now)
  end
  if tpm > 0 and tokens > 0 then
    gcra_store(KEYS[2], tpm_tat, now)
  end
  if max_conc > 0 then
    redis.call('ZADD', KEYS[3], now, ARGV[5])
    redis.call('PEXPIRE', KEYS[3], 7 * 86400 * 1000)
    conc = conc + 1
  end
end

local rr, rt, tr, tt = -1, 0, -1, 0
if rpm > 0 then rr, rt = gcra_remaining(rpm_tat, rpm, now), math.ceil(rpm_tat - now) end
if tpm > 0 then tr, tt = gcra_remaining(tpm_tat, tpm, now), math.ceil(tpm_tat - now) end
return {reason == 'ok' and 1 or 0, reason, math.ceil(retry), rr, rt, tr, tt, conc}
