-- batch_create.lua: a batch exists, in its owner's index and the batch duty's worklist, at once.
-- KEYS[1] batch hash   KEYS[2] owner's batch index zset   KEYS[3] active batches zset
-- ARGV[1] batch id   ARGV[2] created_at (s)   then field, value pairs
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
