-- Repeat: runs only inside finish.lua and terminate.lua, whose terminal check stops a second run.
-- job_ended.lua (a function run inside finish.lua and terminate.lua, after batch_note.lua's):
-- what follows a job's becoming terminal, the same whichever script made it so: the record's
-- keeping time, the fleet's counts (all time and this minute's), the recent failures list, a
-- batch line's output line (batch_note.lua, which may shorten the keeping time: after it),
-- the webhook outbox for a job that asked, the budget reservation given back, and the completion notice (on the job's ``notify``
-- channel unless another process ``watched`` it: shared/keys.py done_channel_of).
-- KEYS[1] job hash   KEYS[2] fleet stats hash   KEYS[3] this minute's counts
-- KEYS[4] the recent failed jobs list   KEYS[5] the webhook outbox   KEYS[6] the slim-due set
-- (a synchronous job, ``keep_s`` in its record, is slimmed keep_s from now: slim.lua)
-- ARGV[1] the new status   ARGV[2] now (s)   ARGV[3] job id   ARGV[4] record TTL (s)
-- ARGV[5] the fleet's done channel   ARGV[6] the notice to publish
local status = ARGV[1]
redis.call('EXPIRE', KEYS[1], ARGV[4])
local keep = tonumber(redis.call('HGET', KEYS[1], 'keep_s') or '0') or 0
if keep > 0 then redis.call('ZADD', KEYS[6], tonumber(ARGV[2]) + keep, ARGV[3]) end
-- What is left of the job's budget reservation (budget_hold.lua; charge.lua moves each billed
-- call's cost from it to spent) is given back.
local budget, held = hold_of(KEYS[1])
if budget then hold_drop(KEYS[1], budget, held, held) end
redis.call('HSETNX', KEYS[2], 'since', math.floor(tonumber(ARGV[2])))
redis.call('HINCRBY', KEYS[2], 'jobs_' .. status, 1)
redis.call('HINCRBY', KEYS[3], status, 1)
redis.call('EXPIRE', KEYS[3], 3600)
if status == 'failed' then
  redis.call('LPUSH', KEYS[4], ARGV[3])
  redis.call('LTRIM', KEYS[4], 0, 99)
end
batch_note({KEYS[1]}, {status})
if redis.call('HGET', KEYS[1], 'webhook') == '1' then
  redis.call('RPUSH', KEYS[5], 'job:' .. ARGV[3])
end
local notify, watched = unpack(redis.call('HMGET', KEYS[1], 'notify', 'watched'))
redis.call('PUBLISH', (notify and not watched) and notify or ARGV[5], ARGV[6])
-- The workers' bookkeeping is of no use to an ended job: not kept for the rest of its keeping
-- time (each field of a day of records costs about a hundred bytes).
redis.call('HDEL', KEYS[1], 'fair', 'breaker_hint', 'tokens_estimate', 'exhausted', 'notify',
  'watched', 'keep_s')
