-- Repeat: a library; its callers guard it (create.lua, charge.lua, finish.lua and terminate.lua).
-- budget_hold.lua (a library: local functions with no KEYS or ARGV of their own, loaded ahead of
-- create.lua, charge.lua and job_ended.lua): a job's budget reservation, the one owner of its
-- format. The job hash's ``budget`` field is "<the key's budget hash>\n<micro-USD still held>";
-- the same micro-USD are counted in that budget hash's ``reserved``.
local function hold_take(job, budget, micro)
  redis.call('HINCRBY', budget, 'reserved', micro)
  redis.call('HSET', job, 'budget', budget .. '\n' .. string.format('%d', micro))
end
-- The job's hold: its budget hash and micro-USD, or nil (none, or all of it spent or given back).
local function hold_of(job)
  local hold = redis.call('HGET', job, 'budget')
  if not hold or hold == '' then return nil, 0 end
  local cut = string.find(hold, '\n', 1, true)
  return string.sub(hold, 1, cut - 1), tonumber(string.sub(hold, cut + 1))
end
-- ``micro`` (at most what is held) leaves the hold and the budget's ``reserved`` (never below 0);
-- the hold keeps the rest, and goes when nothing is left.
local function hold_drop(job, budget, held, micro)
  micro = math.min(micro, held)
  if held > micro then
    redis.call('HSET', job, 'budget', budget .. '\n' .. string.format('%d', held - micro))
  else
    redis.call('HDEL', job, 'budget')
  end
  if micro > 0 and redis.call('HINCRBY', budget, 'reserved', -micro) < 0 then
    redis.call('HSET', budget, 'reserved', 0)
  end
end
