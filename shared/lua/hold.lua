-- hold.lua: a worker claims (or renews its claim on) the queued jobs it holds while they wait for
-- one of its job slots (workers/waiting.py), and the groups whose message it holds, scored by
-- Redis's own clock so a worker's skewed clock never makes its claims look lapsed.
-- KEYS[1] the taken zset, then the group-held markers of the queues whose group message a waiting
-- job of this worker carries   ARGV[1] the claim's life (s), then the job ids
-- Returns the number of ids claimed.
-- Repeat: safe (the same claims, renewed to the same time).
local t = redis.call('TIME')
local life = tonumber(ARGV[1])
local lapse = tonumber(t[1]) + tonumber(t[2]) / 1e6 + life
for i = 2, #KEYS do redis.call('SET', KEYS[i], '1', 'PX', math.floor(life * 1000)) end
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], lapse, ARGV[i]) end
return #ARGV - 1
