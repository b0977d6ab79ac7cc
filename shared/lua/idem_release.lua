-- Repeat: safe (a second run finds the claim gone, or the job there, and answers 0).
-- idem_release.lua: forget an Idempotency-Key claim whose job was never accepted.
-- KEYS[1] the key's record (string, TTL: JSON {"job_id", "body_sha256", "at"})
-- KEYS[2] (optional) the job's hash: while it exists the claim stands (the job was created,
-- whatever its request was told: a lost reply), so a retry of the request finds that job
-- ARGV[1] the job id the claim must stand for
-- Returns 1 released, 0 left alone (the key stands for another job now, or the job exists).
local current = redis.call('GET', KEYS[1])
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if current and cjson.decode(current)['job_id'] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
