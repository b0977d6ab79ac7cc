-- Repeat: over-counts by one (a call's outcome twice), accepted: opens one failure early at most.
-- breaker_record.lua: record a call's outcome and make the transitions it causes.
-- KEYS[1] breaker hash   KEYS[2] probe lease string   KEYS[3] window hash (per-second buckets)
-- ARGV[1] now (s)   ARGV[2] "1" success / "0" failure   ARGV[3] probe token ("" if not a probe)
-- ARGV[4] consecutive failures to open   ARGV[5] failure rate to open (0-1)
-- ARGV[6] min calls in the window for the rate   ARGV[7] window s   ARGV[8] open s
-- Returns {state_before, state_after}.
-- Transitions: closed -> open (consecutive failures, or failure rate over the sliding window
-- with enough calls); half_open -> closed (the probe succeeded) | open (it failed).
local now = tonumber(ARGV[1])
local ok = ARGV[2] == '1'
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local before = state
local function open()
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', now + tonumber(ARGV[8]),
             'opened_at', now)
  redis.call('HINCRBY', KEYS[1], 'opens', 1)
  state = 'open'
end
if ARGV[3] ~= '' then
  if redis.call('GET', KEYS[2]) == ARGV[3] then
    redis.call('DEL', KEYS[2])
    if ok then
      redis.call('HSET', KEYS[1], 'state', 'closed', 'consecutive', 0)
      redis.call('DEL', KEYS[3])
      state = 'closed'
    else
      open()
    end
  end
  return {before, state}
end
local sec = math.floor(now)
local window = tonumber(ARGV[7])
redis.call('HINCRBY', KEYS[3], sec .. (ok and ':ok' or ':fail'), 1)
redis.call('EXPIRE', KEYS[3], math.ceil(window) + 5)
if ok then
  redis.call('HSET', KEYS[1], 'consecutive', 0)
  return {before, state}
end
local consecutive = redis.call('HINCRBY', KEYS[1], 'consecutive', 1)
if state ~= 'closed' then return {before, state} end
if consecutive >= tonumber(ARGV[4]) then
  open()
  return {before, state}
end
local total, fails = 0, 0
local flat = redis.call('HGETALL', KEYS[3])
for i = 1, #flat, 2 do
  local bucket, kind = string.match(flat[i], '^(%d+):(%a+)$')
  local n = tonumber(flat[i + 1])
  if bucket and tonumber(bucket) > now - window then
    total = total + n
    if kind == 'fail' then fails = fails + n end
  else
    redis.call('HDEL', KEYS[3], flat[i])
  end
end
if total >= tonumber(ARGV[6]) and fails / total >= tonumber(ARGV[5]) then open() end
return {before, state}
