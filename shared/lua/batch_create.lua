-- Repeat: guarded (a second run finds the batch hash, writes nothing and answers created again).
-- batch_create.lua: a batch exists, in its owner's index and the batch duty's worklist, at once,
-- unless its owner already has as many batches not yet ended as it may (checked and counted in
-- the same step, so the bound holds however many API processes create at once).
-- KEYS[1] batch hash   KEYS[2] owner's batch index zset   KEYS[3] active batches zset (every
-- key's)   KEYS[4] the owner's active batches zset   KEYS[5] the batch duty's turns (keys)
-- ARGV[1] batch id   ARGV[2] created_at (s)   ARGV[3] the owner   ARGV[4] batches the owner may
-- have not yet ended (batches.max_active_per_key)   then field, value pairs
-- Returns {1, active} created | {0, active} refused: the owner has ARGV[4] already.
-- A batch that exists is this call's, run a second time (batch ids are never reused): the batch
-- duty may have moved it on since, so it is not written again.
if redis.call('EXISTS', KEYS[1]) == 1 then return {1, redis.call('ZCARD', KEYS[4])} end
local active = redis.call('ZCARD', KEYS[4])
if active >= tonumber(ARGV[4]) then return {0, active} end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
-- A key already waiting keeps its place; a new one is served after those served before now.
redis.call('ZADD', KEYS[5], 'NX', ARGV[2], ARGV[3])
return {1, active + 1}
