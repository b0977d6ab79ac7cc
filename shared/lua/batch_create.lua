-- Repeat: guarded (a second run finds the batch hash, writes nothing and answers 1 again).
-- batch_create.lua: a batch exists, in its owner's index and the batch duty's worklist, at once.
-- KEYS[1] batch hash   KEYS[2] owner's batch index zset   KEYS[3] active batches zset
-- ARGV[1] batch id   ARGV[2] created_at (s)   then field, value pairs
-- A batch that exists is this call's, run a second time (batch ids are never reused): the batch
-- duty may have moved it on since, so it is not written again.
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
