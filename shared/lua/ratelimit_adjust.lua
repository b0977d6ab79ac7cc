-- Repeat: over-counts by one correction, accepted: the TAT forgets it within a minute.
-- ratelimit_adjust.lua: correct a tokens/min bucket once the real usage is known (GCRA:
-- gcra.lua, loaded ahead of this script).
-- KEYS[1] tpm TAT   ARGV[1] tpm   ARGV[2] tokens to add (negative: give back)
-- Returns the ms until the bucket is full again (0: it is).
return gcra_adjust(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), gcra_now())
