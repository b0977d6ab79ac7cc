-- Repeat: guarded (a second run finds its chunks already at the list's end and adds nothing).
-- file_append.lua: an upload's next chunks go to the end of its chunk list, where the writer
-- expects them: each chunk is stored once, however often the step is sent.
-- KEYS[1] the chunk list
-- ARGV[1] chunks in the list before these   ARGV[2] the list's TTL (s), set with the first
-- chunks (file_commit.lua keeps the list)   ARGV[3..] the chunks, in order
-- Returns the chunks in the list after this step; an error when it holds neither as many as
-- expected before nor after (it expired meanwhile).
local before, n = tonumber(ARGV[1]), #ARGV - 2
local len = redis.call('LLEN', KEYS[1])
if len == before + n then return len end  -- a second run of this step: its chunks are in
if len ~= before then
  return redis.error_reply('file chunks: ' .. len .. ' stored, ' .. before .. ' expected')
end
redis.call('RPUSH', KEYS[1], unpack(ARGV, 3))
if before == 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return len + n
