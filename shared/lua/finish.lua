-- finish.lua: make a job terminal, exactly once, never under another worker's lease
-- (compare-and-set). A lease that lapsed with nobody else holding it (a Redis outage outlived
-- it; the reaper may have queued the job again) does not stop the write: the job is not
-- terminal yet, so this is still its one result, and a later delivery finds it terminal.
-- KEYS[1] job hash   KEYS[2] lease string   KEYS[3] inflight zset   KEYS[4] fleet stats hash
-- KEYS[5] the webhook outbox (a job that asked for webhooks is pushed there: job events)
-- KEYS[6] this minute's ended-jobs counts   KEYS[7] the recent failed jobs list
-- KEYS[8] the slim-due set (job_ended.lua)
-- ARGV[1] token   ARGV[2] job id   ARGV[3] final status   ARGV[4] now (s)
-- ARGV[5] record TTL (s)   ARGV[6] done channel   ARGV[7] the completion notice to publish
-- (on the job's ``notify`` channel, its creator's, unless another process ``watched`` it)
-- (the job id, then its outcome: shared/state/notice.py), then field, value pairs
-- A batch line's output line is written in the same step (batch_note.lua).
-- Returns 1 written | 0 lease not ours (another worker owns the job) | -1 already terminal
-- (cancelled while running: the late result is discarded), or the record is gone (its keeping
-- time ran out, e.g. a batch line shortened by batch_note.lua): a late finish must not
-- recreate a record with no id or owner.
-- Repeat: guarded. A second run finds the job ended with its own status and finished_at and
-- answers 1 again (so the worker still closes the client's stream), writing nothing.
local lease = redis.call('GET', KEYS[2])
if lease and lease ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'succeeded' or status == 'failed' or status == 'cancelled' or status == 'expired' then
  if status == ARGV[3] and redis.call('HGET', KEYS[1], 'finished_at') == ARGV[4] then return 1 end
  return -1
end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'finished_at', ARGV[4])
if #ARGV > 7 then redis.call('HSET', KEYS[1], unpack(ARGV, 8)) end
-- job_ended.lua, loaded with this script
job_ended(
  {KEYS[1], KEYS[4], KEYS[6], KEYS[7], KEYS[5], KEYS[8]},
  {ARGV[3], ARGV[4], ARGV[2], ARGV[5], ARGV[6], ARGV[7]}
)
return 1
