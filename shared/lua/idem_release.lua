-- idem_release.lua: forget an Idempotency-Key claim whose job was never accepted.
-- KEYS[1] the key's record (string, TTL: JSON {"job_id", "body_sha256", "at"})
-- ARGV[1] the job id the claim must stand for
-- Returns 1 released, 0 the key stands for another job now (left alone).
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['job_id'] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
