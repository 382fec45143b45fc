-- What each seccomp setting allows, as the errno probe measured it: the syscall names of
-- every number the filter neither refused nor killed. `ctrace report` compares profiles with
-- the engine's default setting's row (measured by `ctrace requirements`, or by the daemon
-- for a container with default settings).
--
-- JSON object: ABI -> sorted array of syscall names, e.g. {"i386": ["_llseek", ...],
-- "x86_64": ["accept", ...]}; an ABI the filter kills as a whole (or the kernel does not run)
-- has an empty array. NULL for rows probed before this migration (the daemon probes those
-- settings again).
ALTER TABLE refusals ADD COLUMN allowed TEXT;
