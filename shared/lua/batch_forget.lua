-- Repeat: safe (a second run finds nothing left to remove).
-- batch_forget.lua: a batch whose record is gone (deleted by hand, or lost) leaves the batch
-- duty's worklists, and its owner leaves the turns with its last batch, in one step (as
-- batch_move.lua does for a batch that ends).
-- KEYS[1] batch hash   KEYS[2] active batches zset (every key's)   KEYS[3] the owner's active
-- batches zset   KEYS[4] the batch duty's turns (keys)
-- ARGV[1] batch id   ARGV[2] the owner
-- Returns 1 forgotten | 0 the record exists (nothing done).
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('ZCARD', KEYS[3]) == 0 then redis.call('ZREM', KEYS[4], ARGV[2]) end
return 1
