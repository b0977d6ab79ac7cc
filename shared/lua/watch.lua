-- Repeat: safe (idempotent).
-- watch.lua: a process other than the job's creator is about to wait for it: from now on its
-- completion notice goes to every API process (the fleet's done channel), not just the
-- creator's. The caller reads the job after this step, so a job that finished before it is
-- seen by that read, and one that finishes after it publishes where the caller listens.
-- KEYS[1] job hash. Returns 1 if the job exists (a missing one is not created).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'watched', '1')
return 1
