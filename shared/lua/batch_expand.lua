-- Repeat: safe (compare-and-set: a second run finds the cursor moved and answers 0, as to a rival).
-- batch_expand.lua: the next lines of a running batch become jobs, held in its owner's
-- fair-share backlog at batch priority (shared/state/fair.py releases them), and the expansion
-- cursor moves past them, in one step: a line becomes a job once, whoever expands it and
-- however often the step is retried (compare-and-set on the cursor).
-- KEYS[1] batch hash   KEYS[2] owner's backlog list (batch priority)   KEYS[3] the batch
-- priority's set of backlogged keys   KEYS[4] its held counter   KEYS[5..] each job's hash
-- ARGV[1] the cursor expected ("<byte offset>")   ARGV[2] the new cursor   ARGV[3] lines
-- expanded after this step   ARGV[4] job record TTL (s)   ARGV[5] the owner
-- ARGV[6..] one JSON object of string fields per job, in KEYS[5..] order (its "id" included)
-- Returns 1 expanded | 0 the cursor moved (another step did it) | -1 not in_progress.
if redis.call('HGET', KEYS[1], 'status') ~= 'in_progress' then return -1 end
if redis.call('HGET', KEYS[1], 'cursor') ~= ARGV[1] then return 0 end
local n = 0
for i = 6, #ARGV do
  local key = KEYS[i - 1]
  local fields = hset_json({key}, {ARGV[i]})  -- hset_json.lua, loaded with this script
  redis.call('EXPIRE', key, ARGV[4])
  redis.call('RPUSH', KEYS[2], fields.id)
  n = n + 1
end
if n > 0 then
  redis.call('INCRBY', KEYS[4], n)
  redis.call('SADD', KEYS[3], ARGV[5])
end
redis.call('HSET', KEYS[1], 'cursor', ARGV[2], 'expanded', ARGV[3])
return 1
