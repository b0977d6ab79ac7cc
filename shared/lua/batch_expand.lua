-- Repeat: safe (compare-and-set: a second run finds the cursor moved and answers "moved", as to a
-- rival; one that moved nothing finds what the first run found and again writes nothing).
-- batch_expand.lua: the next lines of a running batch become jobs, held in its owner's
-- fair-share backlog at batch priority (shared/state/fair.py releases them), and the expansion
-- cursor moves past them, in one step: a line becomes a job once, whoever expands it and
-- however often the step is retried (compare-and-set on the cursor). Lines are taken in order,
-- each in one of three ways:
-- - a job, while there is room: the batch priority's queued jobs (pending and held, every
--   key's) stay within ARGV[6], a share of queue.max_depth, so API jobs at batch priority keep
--   the rest; and the owner's backlog within ARGV[7]. No room: the step stops there.
-- - with a budget (ARGV[8]): a job takes its reservation (budget_hold.lua) as create.lua's
--   jobs do. One that would fit once the key's requests in flight settle stops the step
--   there (the batch waits); one that would not fit even then is answered at once with its
--   prepared line (429 budget_exceeded), as the API would answer the request.
-- - a line with no job fields is answered at once with its prepared line (a line no longer
--   valid since the batch was validated).
-- A line answered at once is written to the results list and counted failed and ended.
-- KEYS[1] batch hash   KEYS[2] owner's backlog list (batch priority)   KEYS[3] the batch
-- priority's set of backlogged keys   KEYS[4] its held counter   KEYS[5] its pending zset
-- KEYS[6] the owner's budget hash   KEYS[7] the batch's results list   KEYS[8..] each line's
-- job hash
-- ARGV[1] the cursor expected   ARGV[2] the cursor after every line read by this step
-- ARGV[3] lines expanded before this step   ARGV[4] job record TTL (s)   ARGV[5] the owner
-- ARGV[6] batch-priority jobs queued at most   ARGV[7] jobs in the owner's backlog at most
-- ARGV[8] the owner's budget (micro-USD; "" : none)   ARGV[9] its period (day | month | total)
-- ARGV[10..] four per line, in KEYS[8..] order: the job's fields as one JSON object of strings
-- (its "id" included; "" : answer the line at once), its reservation (micro-USD), the cursor
-- after the line, and the output line that answers it at once
-- Returns {why, lines taken}: why is "ok" (every line taken) | "room" | "budget" (stopped
-- there: the rest wait) | "moved" (the cursor moved: another step did it) | "ended" (not
-- in_progress).
if redis.call('HGET', KEYS[1], 'status') ~= 'in_progress' then return {'ended', 0} end
if redis.call('HGET', KEYS[1], 'cursor') ~= ARGV[1] then return {'moved', 0} end
local queued = redis.call('ZCARD', KEYS[5]) + tonumber(redis.call('GET', KEYS[4]) or '0')
local room = math.min(
  tonumber(ARGV[6]) - queued, tonumber(ARGV[7]) - redis.call('LLEN', KEYS[2])
)
local limit, spent, reserved = nil, 0, 0
if ARGV[8] ~= '' then
  limit = tonumber(ARGV[8])
  local b = budget_period({KEYS[6]}, {ARGV[9], '1'})  -- budget_period.lua, loaded with this
  spent, reserved = b[1], b[2]
end
local why, taken, held, answered, cursor = 'ok', 0, 0, 0, ARGV[1]
for i = 1, (#ARGV - 9) / 4 do
  local a = 10 + (i - 1) * 4
  local job, hold = ARGV[a], tonumber(ARGV[a + 1])
  local now = job == ''
  if not now then
    if held >= room then why = 'room' break end
    if limit and spent + reserved + hold > limit then
      if spent + hold <= limit then why = 'budget' break end
      now = true
    end
  end
  if now then
    redis.call('RPUSH', KEYS[7], ARGV[a + 3])
    answered = answered + 1
  else
    local key = KEYS[7 + i]
    local fields = hset_json({key}, {job})  -- hset_json.lua, loaded with this script
    redis.call('EXPIRE', key, ARGV[4])
    if limit and hold > 0 then
      hold_take(key, KEYS[6], hold)  -- budget_hold.lua
      reserved = reserved + hold
    end
    redis.call('RPUSH', KEYS[2], fields.id)
    held = held + 1
  end
  taken = taken + 1
  cursor = ARGV[a + 2]
end
if why == 'ok' then cursor = ARGV[2] end
if held > 0 then
  redis.call('INCRBY', KEYS[4], held)
  redis.call('SADD', KEYS[3], ARGV[5])
end
if answered > 0 then
  redis.call('HINCRBY', KEYS[1], 'failed', answered)
  redis.call('HINCRBY', KEYS[1], 'ended', answered)
end
redis.call('HSET', KEYS[1], 'cursor', cursor, 'expanded', tonumber(ARGV[3]) + taken)
return {why, taken}
