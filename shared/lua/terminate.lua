-- terminate.lua: make a job terminal without a lease (cancel; a failed publish).
-- KEYS[1] job hash   KEYS[2..4] the pending zsets (interactive, normal, batch)   KEYS[5] fleet stats hash
-- KEYS[6] the webhook outbox (a job that asked for webhooks is pushed there: job events)
-- KEYS[7] this minute's ended-jobs counts   KEYS[8] the recent failed jobs list
-- ARGV[1] new status   ARGV[2] now (s)   ARGV[3] error JSON   ARGV[4] done channel   ARGV[5] job id
-- ARGV[6] record TTL (s). The notice goes to the job's ``notify`` channel unless it is
-- ``watched`` (shared/keys.py done_channel_of). The job leaves its key's fair-share window
-- (shared/fair.py); a batch line's output line is written (batch_note.lua).
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
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('HSETNX', KEYS[5], 'since', math.floor(tonumber(ARGV[2])))
redis.call('HINCRBY', KEYS[5], 'jobs_' .. ARGV[1], 1)
redis.call('HINCRBY', KEYS[7], ARGV[1], 1)
redis.call('EXPIRE', KEYS[7], 3600)
if ARGV[1] == 'failed' then
  redis.call('LPUSH', KEYS[8], ARGV[5])
  redis.call('LTRIM', KEYS[8], 0, 99)
end
batch_note({KEYS[1]}, {ARGV[1]})  -- batch_note.lua, loaded with this script
if redis.call('HGET', KEYS[1], 'webhook') == '1' then redis.call('RPUSH', KEYS[6], 'job:' .. ARGV[5]) end
local notify, watched = unpack(redis.call('HMGET', KEYS[1], 'notify', 'watched'))
redis.call('PUBLISH', (notify and not watched) and notify or ARGV[4], ARGV[5])
return {'ok'}
