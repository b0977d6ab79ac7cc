-- Repeat: guarded (a second run finds the new status with its fields, changes nothing, answers ok).
-- batch_move.lua: a batch's status changes, only from the one it is expected to have
-- (compare-and-set: two workers stepping the same batch never both move it).
-- KEYS[1] batch hash   KEYS[2] active batches zset   KEYS[3] the batch's results list
-- KEYS[4] the webhook outbox (an ended batch is pushed there: its batch.* event)
-- KEYS[5] the owner's active batches zset   KEYS[6] the batch duty's turns (keys with a batch
-- not yet ended): an ended batch leaves both, and its owner leaves the turns with its last one
-- ARGV[1] batch id   ARGV[2] statuses it may move from ("a,b")   ARGV[3] the new status
-- ARGV[4] record TTL once ended (s)   then field, value pairs
-- Returns the status it had (moved) or {"no", status} (not moved).
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'no', ''} end
local from = ',' .. ARGV[2] .. ','
if not string.find(from, ',' .. status .. ',', 1, true) then
  -- Already in the new status with this call's fields (a finalize's new file ids, a time): a
  -- second run of the same call, whose first reply was lost. It moved the batch, as it says
  -- again (a mover told "no" would delete the files the batch now names). Two callers making
  -- the very same move, fields and all, both hear "ok": either one's move stands.
  if status == ARGV[3] and #ARGV > 4 then
    for i = 5, #ARGV, 2 do
      if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then return {'no', status} end
    end
    return {'ok', status}
  end
  return {'no', status}
end
redis.call('HSET', KEYS[1], 'status', ARGV[3])
if #ARGV > 4 then redis.call('HSET', KEYS[1], unpack(ARGV, 5)) end
local new = ARGV[3]
if new == 'completed' or new == 'failed' or new == 'expired' or new == 'cancelled' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
  local owner = redis.call('HGET', KEYS[1], 'owner')
  if owner and redis.call('ZCARD', KEYS[5]) == 0 then redis.call('ZREM', KEYS[6], owner) end
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('UNLINK', KEYS[3])  -- its lines are in the output and error files now
  redis.call('RPUSH', KEYS[4], 'batch:' .. ARGV[1])
end
return {'ok', status}
