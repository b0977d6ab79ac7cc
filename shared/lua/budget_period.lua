-- Repeat: safe (idempotent: a second run finds its period current and writes nothing).
-- budget_period.lua (a function run inside create.lua, charge.lua and budget_read.lua, after
-- spend_clock.lua's): an API key's budget hash as of now. The hash holds ``period`` (the
-- period its ``spent`` belongs to), ``spent`` and ``reserved`` (integer micro-USD). A new
-- period starts ``spent`` at 0; ``reserved`` carries over (requests still in flight hold it
-- until they end). KEYS[1] the key's budget hash   ARGV[1] day | month | total
-- ARGV[2] "1": write the new period / "0": only report.
-- Returns {spent, reserved, the period's reset (s; 0 for total), the period's id}.
local clock = spend_clock({}, {})
local kind = ARGV[1]
local period, reset = 'total', 0
if kind == 'day' then period, reset = 'd' .. clock[2], clock[4]
elseif kind == 'month' then period, reset = 'm' .. clock[3], clock[5] end
local f = redis.call('HMGET', KEYS[1], 'period', 'spent', 'reserved')
local spent, reserved = tonumber(f[2] or '0') or 0, tonumber(f[3] or '0') or 0
if f[1] ~= period then
  spent = 0
  if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'period', period, 'spent', 0) end
end
return {spent, reserved, reset, period}
