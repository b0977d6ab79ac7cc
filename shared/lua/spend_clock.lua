-- Repeat: safe (reads the clock only).
-- spend_clock.lua (a function run inside the spend scripts): the UTC calendar on Redis's clock,
-- one clock for the whole fleet. Returns {now (s), day "YYYYMMDD", month "YYYYMM", the next
-- day's start (s), the next month's start (s)}. Civil dates from days since the epoch:
-- Howard Hinnant's days_from_civil / civil_from_days (http://howardhinnant.github.io/date_algorithms.html).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
-- ARGV[1], when given: the time to use instead of Redis's (tests of the calendar).
local now = tonumber(ARGV[1] or '')
if not now then now = tonumber(redis.call('TIME')[1]) end
local days = math.floor(now / 86400)
local z = days + 719468
local era = math.floor(z / 146097)
local doe = z - era * 146097
local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
local mp = math.floor((5 * doy + 2) / 153)
local d = doy - math.floor((153 * mp + 2) / 5) + 1
local m = mp < 10 and mp + 3 or mp - 9
local y = yoe + era * 400
if m <= 2 then y = y + 1 end
local ny, nm = y, m + 1
if nm > 12 then ny, nm = y + 1, 1 end
return {now, string.format('%04d%02d%02d', y, m, d), string.format('%04d%02d', y, m),
  (days + 1) * 86400, days_from_civil(ny, nm, 1) * 86400}
