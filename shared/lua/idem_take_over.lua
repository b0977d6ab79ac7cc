-- Repeat: guarded (a second run finds its own record and answers false, taken over, again).
-- idem_take_over.lua: take over an Idempotency-Key whose claim never produced a job.
-- KEYS[1] the key's record (string, TTL)
-- ARGV[1] the stale record, as read   ARGV[2] the new record   ARGV[3] TTL (s)
-- Returns false when taken over by this call (create the job), else the record now held
-- (another request took it over first, or the old claim's job appeared meanwhile).
local current = redis.call('GET', KEYS[1])
if current == ARGV[2] then return false end  -- a second run of this call: it took the key over
if current and current ~= ARGV[1] then return current end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return false
