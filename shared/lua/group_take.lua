-- group_take.lua: a worker takes the jobs gathered for a queue (group commit).
-- KEYS[1] the queue's group list   KEYS[2] its group-sent marker   KEYS[3] the broker queue
-- ARGV[1] most ids to take   ARGV[2] a fresh group message   ARGV[3] marker TTL (ms)
-- Repeat: safe for state. A second run takes the next ids; the first run's, if its answer was
-- lost, are pending and held by nobody, so the pending sweep republishes them.
-- Returns the ids taken, oldest first. A group larger than ARGV[1] leaves the rest with a
-- message of its own at the head of the queue (kombu BRPOPs the right end), so no job is
-- left in a list that no message will come for. An emptied group clears the marker: the next
-- job created sends a message at once.
local ids = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #ids > 0 then redis.call('LTRIM', KEYS[1], #ids, -1) end
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
else
  redis.call('RPUSH', KEYS[3], ARGV[2])
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
end
return ids
