-- Repeat: safe (a second run finds the batch gone from the old worklist: it changes nothing, answers 0).
-- batch_adopt.lua: a batch from the batch duty's old worklist (written by gateways before
-- per-key turns) joins the per-key turns, unless it has ended: it leaves the old worklist either
-- way, so the batch duty drains it once and then finds it empty.
-- KEYS[1] batch hash   KEYS[2] the old worklist zset   KEYS[3] active batches zset (every key's)
-- KEYS[4] the owner's active batches zset   KEYS[5] the batch duty's turns (keys)
-- ARGV[1] batch id   ARGV[2] its owner (as its hash says; "" when the hash is gone)
-- Returns 1 adopted | 0 ended or gone (only dropped from the old worklist).
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local status = redis.call('HGET', KEYS[1], 'status')
if not score or not status or ARGV[2] == '' then return 0 end
if status == 'completed' or status == 'failed' or status == 'expired' or status == 'cancelled' then
  return 0
end
redis.call('ZADD', KEYS[3], 'NX', score, ARGV[1])
redis.call('ZADD', KEYS[4], 'NX', score, ARGV[1])
redis.call('ZADD', KEYS[5], 'NX', score, ARGV[2])
return 1
