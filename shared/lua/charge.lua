-- Repeat: guarded by the job's charged:<token> (its record expired: counted twice, rare, accepted).
-- charge.lua: what a provider billed for one delivery's call, counted once: into the job's
-- cost, the key's budget (spent) and its usage for today (UTC, Redis's clock). Run whatever
-- became of the job (cancelled, expired, its lease lost meanwhile): the provider billed it.
-- A repeated call for the same delivery (a retried round trip) counts nothing.
-- KEYS[1] job hash   KEYS[2] the key's budget hash
-- ARGV[1] the delivery's token   ARGV[2] cost (micro-USD)   ARGV[3] "1": the price is unknown
-- ARGV[4] prompt tokens   ARGV[5] completion tokens   ARGV[6] cached prompt tokens
-- ARGV[7] provider   ARGV[8] model   ARGV[9] the key's budget period ("" : no budget)
-- ARGV[10] the key's usage hash prefix (+ "YYYYMMDD")   ARGV[11] the usage index prefix
-- (+ "YYYYMMDD": the set of key ids with usage that day)   ARGV[12] the key id
-- ARGV[13] usage keeping time (s)
-- Returns 1 counted | 0 already counted.
local cost = tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 1 then
  -- One field per delivery (a job has at most queue.max_deliveries of them).
  if redis.call('HSETNX', KEYS[1], 'charged:' .. ARGV[1], '1') == 0 then return 0 end
  redis.call('HINCRBY', KEYS[1], 'cost_micro', cost)
  if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'cost_unknown', '1') end
end
if ARGV[9] ~= '' and cost > 0 then
  budget_period({KEYS[2]}, {ARGV[9], '1'})
  redis.call('HINCRBY', KEYS[2], 'spent', cost)
  -- What the job reserved for this cost (create.lua's hold) moves to spent in the same step,
  -- so spent + reserved never counts a call twice; job_ended.lua gives back what is left.
  local budget, held = hold_of(KEYS[1])
  if budget == KEYS[2] then hold_drop(KEYS[1], budget, held, cost) end
end
local day = spend_clock({}, {})[2]
local usage = ARGV[10] .. day
local f = ARGV[7] .. '\t' .. ARGV[8] .. '\t'
redis.call('HINCRBY', usage, f .. 'requests', 1)
redis.call('HINCRBY', usage, f .. 'prompt_tokens', tonumber(ARGV[4]))
redis.call('HINCRBY', usage, f .. 'completion_tokens', tonumber(ARGV[5]))
redis.call('HINCRBY', usage, f .. 'cached_tokens', tonumber(ARGV[6]))
redis.call('HINCRBY', usage, f .. 'cost_micro', cost)
if ARGV[3] == '1' then redis.call('HINCRBY', usage, f .. 'unpriced', 1) end
redis.call('EXPIRE', usage, ARGV[13])
local index = ARGV[11] .. day
redis.call('SADD', index, ARGV[12])
redis.call('EXPIRE', index, ARGV[13])
return 1
