-- slim.lua: a finished job whose client already has its answer (a synchronous chat completion,
-- streamed or not) keeps its full record only ``queue.sync_result_ttl_s``; then this step
-- rewrites the record as a slim one for the rest of ``queue.result_ttl_s``: ``id``, ``owner``,
-- ``status`` as they were (polls, ownership and lists read them alone) and ``slim``, one JSON
-- object of the rest that the job object shows (timings to the millisecond, model, provider,
-- cost, error, the attempts without their error messages; fields at their defaults left out). The request, the answer and the bookkeeping fields
-- go, and so does the stream's log: nobody re-attaches to a synchronous job. The record is
-- written afresh (DEL then HSET), because Redis never shrinks a hash's encoding in place.
-- KEYS[1] the slim-due zset (job ids scored by when they are due: job_ended.lua)
-- ARGV[1] now (s)   ARGV[2] most ids   ARGV[3] the job key prefix   ARGV[4] the stream key
-- prefix (both from shared/keys.py: the id is appended)
-- Returns {records slimmed, ids taken from the due set}.
-- Repeat: safe. The ids done are out of the due set; a slim record is never slimmed again.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local kept = {'priority', 'model', 'provider', 'created_at', 'started_at', 'finished_at',
  'deadline_at', 'config_version', 'cost_micro', 'cost_unknown', 'cache', 'degraded',
  'degraded_params', 'error', 'metadata', 'request_id', 'kind'}
-- What a reader takes for granted when a field is absent: not written (each byte counts, a day
-- of records at a time).
local default = {cost_unknown = '0', degraded = '0', cost_micro = '0', metadata = '{}'}
local times = {created_at = true, started_at = true, finished_at = true, deadline_at = true}
local json = {error = true, metadata = true}
local n = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('DEL', ARGV[4] .. id)
  local key = ARGV[3] .. id
  local ttl = redis.call('PTTL', key)
  local head = redis.call('HMGET', key, 'id', 'owner', 'status', 'slim', 'attempts', unpack(kept))
  if ttl > 0 and head[1] and not head[4] then
    local slim = {}
    for i, name in ipairs(kept) do
      local v = head[5 + i]
      if v and v ~= '' and v ~= default[name] then
        if times[name] then
          slim[name] = string.format('%.3f', tonumber(v))
        elseif json[name] then  -- nested as it is, not as escaped text
          local ok, value = pcall(cjson.decode, v)
          slim[name] = ok and value or v
        else
          slim[name] = v
        end
      end
    end
    local ok, attempts = pcall(cjson.decode, head[5] or '')
    if ok and type(attempts) == 'table' and #attempts > 0 then
      for _, a in ipairs(attempts) do
        if type(a) == 'table' and type(a.error) == 'table' then a.error.message = nil end
      end
      slim['attempts'] = attempts
    end
    redis.call('DEL', key)
    redis.call('HSET', key, 'id', head[1], 'owner', head[2] or '', 'status', head[3] or '',
      'slim', cjson.encode(slim))
    redis.call('PEXPIRE', key, ttl)
    n = n + 1
  end
end
return {n, #ids}
