-- Repeat: safe (a second run finds its lease gone and answers 0; the job is parked once).
-- defer.lua: a worker parks a job until a due time (retry backoff, waiting for a provider to
-- recover) instead of holding a slot; the due sweep republishes it then.
-- KEYS[1] job hash   KEYS[2] lease string   KEYS[3] inflight zset   KEYS[4] due zset
-- ARGV[1] token   ARGV[2] job id   ARGV[3] due time (s)   ARGV[4] status while parked
-- then field, value pairs to write
-- Returns 1 parked | 0 the lease is not ours | -1 the job became terminal (e.g. cancelled) or
-- its record is gone.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'succeeded' or status == 'failed' or status == 'cancelled' or status == 'expired' then
  return -1  -- terminal, or the record is gone (never recreated as a partial record)
end
redis.call('HSET', KEYS[1], 'status', ARGV[4])
-- A delivery that ended by parking the job ended cleanly: queue.max_deliveries counts only the
-- deliveries that vanished (a worker lost mid-job), so waiting for a quota or a backoff never
-- exhausts it (attempts are capped by retry.max_total_attempts instead).
redis.call('HINCRBY', KEYS[1], 'deliveries', -1)
if #ARGV > 4 then redis.call('HSET', KEYS[1], unpack(ARGV, 5)) end
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[2])
return 1
