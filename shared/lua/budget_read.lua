-- Repeat: safe (reads only).
-- budget_read.lua: an API key's budget as of now, without writing (for headers and the usage
-- API). KEYS[1] the key's budget hash   ARGV[1] day | month | total
-- Returns {spent, reserved, reset (s; 0 for total)} in micro-USD.
local b = budget_period({KEYS[1]}, {ARGV[1], '0'})
return {b[1], b[2], b[3]}
