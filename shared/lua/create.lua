-- Repeat: guarded (a second run finds the job hash and answers as the first did, taking nothing).
-- create.lua: admit and create a job in one step (so queue.max_depth is exact however many
-- API processes submit at once).
-- KEYS[1] job hash   KEYS[2] owner index zset   KEYS[3] pending zset   KEYS[4] fleet stats hash
-- KEYS[5] the broker queue's list (kombu's Redis transport)   KEYS[6] the queue's group list
-- KEYS[7] the queue's group-sent marker   KEYS[3] is the job's priority's pending zset
-- KEYS[8..11] fair share (shared/state/fair.py): the key's window zset, its backlog list, the
-- priority's set of keys with a backlog, the priority's held counter
-- ARGV[1] job id   ARGV[2] created_at (s)   ARGV[3] record TTL (s)   ARGV[4] max depth
-- ARGV[5] max age of the oldest queued job (s)   ARGV[6] "1": a queued job (subject to the
-- limits, tracked as pending) / "0": already terminal (a cache hit)
-- ARGV[7] the task message to LPUSH to KEYS[5] with the job ("" : the caller publishes)
-- ARGV[8] group commit: "0" the message is the job's own (run_job); else the message is a
-- group's (run_group, naming this job) and this is the marker's TTL in ms: with no group
-- message outstanding (the marker absent) the message is sent, for this job and the group
-- that gathers behind it; with one outstanding, the job joins that group's list.
-- ARGV[9] the key's window (0: no fair share)   ARGV[10] the key's id
-- KEYS[12] the key's budget hash   ARGV[11] the budget (micro-USD; "" : none)
-- ARGV[12] its period (day | month | total)   ARGV[13] this job's reservation (micro-USD):
-- the upper bound of its cost, held until the job ends (job_ended.lua) and checked with the
-- job's creation, so a budget holds exactly however many API processes admit at once.
-- then field, value pairs (the record's fields; its "door" also names the fleet stats field
-- door_jobs_<door> a queued job counts into, with jobs_submitted)
-- Returns {"ok", 0, budget left} | {"held", 0, budget left} (queued in the key's backlog: its
-- window is full, nothing is published now) | {"full_depth", depth} | {"full_age", oldest
-- publish time} | {"budget", spent, reserved, reset (s; 0: never)}; budget left is -1 with no
-- budget.
local created = tonumber(ARGV[2])
-- The job exists: this is a second run of the same call (redis-py sent it again after losing
-- the first run's reply; job ids are never reused). Nothing is taken, pushed or counted
-- again; the answer is the first run's: held (a queued job outside its key's window) or ok,
-- with what the budget has left now.
if redis.call('EXISTS', KEYS[1]) == 1 then
  local again = -1
  if ARGV[6] == '1' and ARGV[11] ~= '' then
    local b = budget_period({KEYS[12]}, {ARGV[12], '0'})
    again = tonumber(ARGV[11]) - b[1] - b[2]
  end
  if ARGV[6] == '1' and tonumber(ARGV[9]) > 0 and not redis.call('ZSCORE', KEYS[8], ARGV[1]) then
    return {'held', 0, again}
  end
  return {'ok', 0, again}
end
if ARGV[6] == '1' then
  local depth = redis.call('ZCARD', KEYS[3]) + tonumber(redis.call('GET', KEYS[11]) or '0')
  if depth >= tonumber(ARGV[4]) then return {'full_depth', tostring(depth)} end
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if oldest[2] and created - tonumber(oldest[2]) > tonumber(ARGV[5]) then
    return {'full_age', oldest[2]}
  end
end
local left = -1
if ARGV[6] == '1' and ARGV[11] ~= '' then
  local b = budget_period({KEYS[12]}, {ARGV[12], '1'})
  local limit, hold = tonumber(ARGV[11]), tonumber(ARGV[13])
  if b[1] + b[2] + hold > limit then return {'budget', b[1], b[2], b[3]} end
  hold_take(KEYS[1], KEYS[12], hold)
  left = limit - b[1] - b[2] - hold
end
redis.call('HSET', KEYS[1], unpack(ARGV, 14))
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], created, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', created - tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[2], ARGV[3])
if ARGV[6] == '1' then
  redis.call('HSETNX', KEYS[4], 'since', math.floor(created))
  redis.call('HINCRBY', KEYS[4], 'jobs_submitted', 1)
  local door = redis.call('HGET', KEYS[1], 'door')
  if door and door ~= '' then redis.call('HINCRBY', KEYS[4], 'door_jobs_' .. door, 1) end
  local room = tonumber(ARGV[9])
  if room > 0 then
    if redis.call('LLEN', KEYS[9]) > 0 or redis.call('ZCARD', KEYS[8]) >= room then
      redis.call('RPUSH', KEYS[9], ARGV[1])
      redis.call('SADD', KEYS[10], ARGV[10])
      redis.call('INCR', KEYS[11])
      return {'held', 0, left}
    end
    redis.call('ZADD', KEYS[8], created, ARGV[1])
  end
  redis.call('ZADD', KEYS[3], created, ARGV[1])
  if ARGV[7] ~= '' then
    if ARGV[8] == '0' then
      redis.call('LPUSH', KEYS[5], ARGV[7])
    else
      if redis.call('SET', KEYS[7], '1', 'NX', 'PX', ARGV[8]) then
        redis.call('LPUSH', KEYS[5], ARGV[7])
      else
        redis.call('RPUSH', KEYS[6], ARGV[1])
      end
    end
  end
end
return {'ok', 0, left}
