-- begin.lua: a worker takes a job.
-- KEYS[1] job hash   KEYS[2] lease string   KEYS[3] inflight zset
-- KEYS[4..6] the pending zsets (interactive, normal, batch): the job's priority's is used
-- ARGV[1] lease token   ARGV[2] lease ms   ARGV[3] now (s)   ARGV[4] max deliveries   ARGV[5] job id
-- Returns {"missing"} | {"terminal", status} | {"leased"} | {"exhausted", n, HGETALL...}
-- | {"ok", n, HGETALL..., peek, backlog}: the job record rides along, saving the worker a round trip,
-- and so does peek, {state, healthy} of the breaker and provider named by the record's
-- breaker_hint ("<breaker key>\n<health key>", written by the API from shared/keys.py), or {}:
-- a closed breaker's check only reads these two, so the worker need not ask again.
-- "exhausted" still holds the lease, so the caller can fail the job under it.
-- backlog: the length of the key's fair-share backlog (the job left its window here: the
-- caller releases the next of the key's held jobs when it is not 0; shared/state/fair.py).
-- KEYS[7] the taken zset (jobs a live worker holds waiting for a slot: this one no longer)
-- KEYS[8] the pending marks hash (priority -> the latest publish time of a job begun: the
-- pending sweep knows that a job published well before it, still queued and held by no live
-- worker, had its message taken and lost, since each queue hands its messages out in order)
-- With KEYS[9..11] (the queue's group list, its group-sent marker, the broker queue) and
-- ARGV[6..8] (most ids to take, a fresh group message, the marker's TTL in ms), the job is
-- the first of a group message and the step also takes the group gathered behind it
-- (group_take.lua): every answer then ends with the list of ids taken.
-- Repeat: guarded. A second run (redis-py re-sends a step whose reply was lost) finds the lease
-- holding its own token and answers as the first did ("ok" or "exhausted", no delivery counted
-- again), taking no group: the ids the first run took are pending and held by nobody, so the
-- pending sweep republishes them (workers/reaper.py).
local own = redis.call('GET', KEYS[2])
if own and own == ARGV[1] then
  local n = redis.call('HGET', KEYS[1], 'deliveries') or '0'
  local t = {tonumber(n) > tonumber(ARGV[4]) and 'exhausted' or 'ok', n,
    redis.call('HGETALL', KEYS[1]), {}, 0}
  if #KEYS >= 11 then t[#t + 1] = {} end
  return t
end
local taken = nil
if #KEYS >= 11 then  -- take_group: group_take.lua's body, loaded with this script (shared/state/jobs.py)
  taken = take_group({KEYS[9], KEYS[10], KEYS[11]}, {ARGV[6], ARGV[7], ARGV[8]})
end
local function answer(t)
  if taken then t[#t + 1] = taken end
  return t
end
redis.call('ZREM', KEYS[7], ARGV[5])
local status, priority, fair = unpack(redis.call('HMGET', KEYS[1], 'status', 'priority', 'fair'))
if not status then
  -- The record is gone (its keeping time ran out): nothing will ever begin it, so it must not
  -- stay pending, where the age check (create.lua) would count it against every new job.
  for i = 4, 6 do redis.call('ZREM', KEYS[i], ARGV[5]) end
  return answer({'missing'})
end
local pending = ({interactive = KEYS[4], normal = KEYS[5], batch = KEYS[6]})[priority] or KEYS[5]
local published = redis.call('ZSCORE', pending, ARGV[5])
if published then
  local mark = redis.call('HGET', KEYS[8], priority or 'normal')
  if not mark or tonumber(published) > tonumber(mark) then
    redis.call('HSET', KEYS[8], priority or 'normal', published)
  end
  redis.call('ZREM', pending, ARGV[5])
end
local backlog = 0
if fair and fair ~= '' then  -- "<window key>\n<backlog key>", written from shared/keys.py
  local cut = string.find(fair, '\n', 1, true)
  redis.call('ZREM', string.sub(fair, 1, cut - 1), ARGV[5])
  backlog = redis.call('LLEN', string.sub(fair, cut + 1))
end
if status == 'succeeded' or status == 'failed' or status == 'cancelled' or status == 'expired' then
  return answer({'terminal', status})
end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return answer({'leased'}) end
local n = redis.call('HINCRBY', KEYS[1], 'deliveries', 1)
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]) + tonumber(ARGV[2]) / 1000, ARGV[5])
if n > tonumber(ARGV[4]) then
  return answer({'exhausted', tostring(n), redis.call('HGETALL', KEYS[1]), {}, backlog})
end
redis.call('HSET', KEYS[1], 'status', 'running')
-- Stamped by the first delivery that starts it: one put back unrun (a kind its worker did not
-- know, workers/runner.py) left it "".
local started = redis.call('HGET', KEYS[1], 'started_at')
if not started or started == '' then redis.call('HSET', KEYS[1], 'started_at', ARGV[3]) end
local peek = {}
local hint = redis.call('HGET', KEYS[1], 'breaker_hint')
if hint and hint ~= '' then
  local cut = string.find(hint, '\n', 1, true)
  if cut then
    peek = {
      redis.call('HGET', string.sub(hint, 1, cut - 1), 'state') or 'closed',
      redis.call('HGET', string.sub(hint, cut + 1), 'healthy') or '',
    }
  end
end
return answer({'ok', tostring(n), redis.call('HGETALL', KEYS[1]), peek, backlog})
