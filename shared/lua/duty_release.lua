-- Repeat: safe (a second run finds the lease gone and answers 0).
-- duty_release.lua: give a duty's lease up, only if this holder still has it.
-- KEYS[1] the lease (string "token:fence")
-- ARGV[1] token   ARGV[2] fence
-- Returns 1 released, 0 not ours (expired and taken by another: left alone).
if redis.call('GET', KEYS[1]) == ARGV[1] .. ':' .. ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
