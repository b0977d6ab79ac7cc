-- Repeat: safe (idempotent: the same fields written again).
-- hset_json.lua (a function run inside batch_expand.lua and webhook_emit.lua): write one JSON
-- object of string fields to a hash. KEYS[1] the hash   ARGV[1] the JSON object
-- Returns the decoded object.
local fields = cjson.decode(ARGV[1])
local flat = {}
for k, v in pairs(fields) do
  flat[#flat + 1] = k
  flat[#flat + 1] = v
end
redis.call('HSET', KEYS[1], unpack(flat))
return fields
