-- ratelimit_adjust.lua: correct a tokens/min bucket once the real usage is known.
-- KEYS[1] tpm TAT   ARGV[1] tpm   ARGV[2] tokens to add (negative: give back)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
tat = tat + tonumber(ARGV[2]) * 60000 / tonumber(ARGV[1])
if tat <= now then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1)
return math.ceil(tat - now)
