-- Repeat: guarded (a second run finds its own record and answers false, claimed, again).
-- idem_claim.lua: claim an Idempotency-Key for a new job, or find who holds it.
-- KEYS[1] the key's record (string, TTL)
-- ARGV[1] the record to store: JSON {"job_id", "body_sha256"}   ARGV[2] TTL (s)
-- Returns false when claimed by this call (create the job), else the existing record.
local old = redis.call('GET', KEYS[1])
-- Our own record (it names a fresh job id and the time of this call): a second run of the same
-- call, whose first reply was lost. It claimed the key, as this answer says again.
if old == ARGV[1] then return false end
if old then return old end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
