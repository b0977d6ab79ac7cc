-- Repeat: runs only inside finish.lua and terminate.lua, whose terminal check stops a second run.
-- batch_note.lua (a function run inside finish.lua and terminate.lua): a batch line's job just
-- became terminal, so its output line is written and its batch's counts move, in the same
-- step: a line is answered once, however often its job was delivered.
-- KEYS[1] job hash   ARGV[1] the job's new status
-- The job's ``batch`` field is "<batch hash key>\n<results list key>" (written from
-- shared/keys.py); a job of no batch has none. The line is OpenAI's batch output format:
-- {id, custom_id, response: {status_code, request_id, body}, error}. Returns 1 if written.
local batch = redis.call('HGET', KEYS[1], 'batch')
if not batch or batch == '' then return 0 end
local cut = string.find(batch, '\n', 1, true)
local bkey, rkey = string.sub(batch, 1, cut - 1), string.sub(batch, cut + 1)
-- An ended batch (or one whose record is gone) takes no more lines: its counts are final and
-- its results list was unlinked with its output written, so a push would leave a list that
-- nothing reads or expires.
local bstatus = redis.call('HGET', bkey, 'status')
if not bstatus or bstatus == 'completed' or bstatus == 'failed' or bstatus == 'expired'
  or bstatus == 'cancelled' then
  return 0
end
local f = redis.call('HMGET', KEYS[1], 'id', 'custom_id', 'result', 'error', 'request_id')
local status = ARGV[1]
local request_id = cjson.encode((f[5] and f[5] ~= '') and f[5] or f[1])
local head = '{"id":' .. cjson.encode('batch_req_' .. string.sub(f[1], 5))
  .. ',"custom_id":' .. cjson.encode(f[2] or '')
local line
if status == 'succeeded' then
  local body = (f[3] and f[3] ~= '') and f[3] or 'null'
  line = head .. ',"response":{"status_code":200,"request_id":' .. request_id
    .. ',"body":' .. body .. '},"error":null}'
  redis.call('HINCRBY', bkey, 'completed', 1)
else
  local err = {}
  if f[4] and f[4] ~= '' then err = cjson.decode(f[4]) end
  if status == 'failed' then
    local code = math.floor(tonumber(err.status) or 500)
    err.status = nil
    line = head .. ',"response":{"status_code":' .. code .. ',"request_id":' .. request_id
      .. ',"body":' .. cjson.encode({error = err}) .. '},"error":null}'
    redis.call('HINCRBY', bkey, 'failed', 1)
  else  -- expired (the batch's window passed) or cancelled (the batch was)
    local message = 'This request could not be executed before the completion window expired.'
    if status == 'cancelled' then message = 'The batch was cancelled before this request ran.' end
    line = head .. ',"response":null,"error":'
      .. cjson.encode({code = 'batch_' .. status, message = message}) .. '}'
  end
end
redis.call('HINCRBY', bkey, 'ended', 1)
redis.call('RPUSH', rkey, line)
-- The answer lives on in the output line: the record keeps only what skips a late duplicate
-- delivery (its status), briefly; once it is gone such a delivery finds it missing and
-- skips too. So a finished line costs Redis no more than its output line.
redis.call('HDEL', KEYS[1], 'request', 'result', 'attempts')
redis.call('EXPIRE', KEYS[1], 600)
return 1
