-- Repeat: safe (a second run finds the job terminal and writes nothing).
-- terminate.lua: make a job terminal without a lease (cancel; a failed publish).
-- KEYS[1] job hash   KEYS[2..4] the pending zsets (interactive, normal, batch)   KEYS[5] fleet stats hash
-- KEYS[6] the webhook outbox (a job that asked for webhooks is pushed there: job events)
-- KEYS[7] this minute's ended-jobs counts   KEYS[8] the recent failed jobs list
-- KEYS[9] the slim-due set (job_ended.lua)
-- ARGV[1] new status   ARGV[2] now (s)   ARGV[3] error JSON   ARGV[4] done channel   ARGV[5] job id
-- ARGV[6] record TTL (s). The notice goes to the job's ``notify`` channel unless it is
-- ``watched`` (shared/keys.py done_channel_of). The job leaves its key's fair-share window
-- (shared/state/fair.py); a batch line's output line is written (batch_note.lua).
-- Returns {"missing"} | {"terminal", status} | {"ok"}. A worker still running the job keeps
-- its lease; its finish.lua sees the terminal status and discards the late result.
local status, priority, fair = unpack(redis.call('HMGET', KEYS[1], 'status', 'priority', 'fair'))
if not status then return {'missing'} end
if status == 'succeeded' or status == 'failed' or status == 'cancelled' or status == 'expired' then
  return {'terminal', status}
end
redis.call('ZREM', ({interactive = KEYS[2], normal = KEYS[3], batch = KEYS[4]})[priority] or KEYS[3], ARGV[5])
if fair and fair ~= '' then
  redis.call('ZREM', string.sub(fair, 1, string.find(fair, '\n', 1, true) - 1), ARGV[5])
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'finished_at', ARGV[2], 'error', ARGV[3])
-- job_ended.lua, loaded with this script (its notice: the job id)
job_ended(
  {KEYS[1], KEYS[5], KEYS[7], KEYS[8], KEYS[6], KEYS[9]},
  {ARGV[1], ARGV[2], ARGV[5], ARGV[6], ARGV[4], ARGV[5]}
)
return {'ok'}
