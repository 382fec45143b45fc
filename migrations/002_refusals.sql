-- What each container's own seccomp filter answered for the calls it refused with an errno
-- other than EPERM. The tracer never sees those calls (seccomp acts first); the daemon
-- measures each seccomp setting once with the errno probe (src/refusals).

-- The setting a container ran under: engine version, security options and capabilities,
-- as the probe's key. NULL where unknown (rows recorded before this migration).
ALTER TABLE containers ADD COLUMN seccomp TEXT;

CREATE TABLE refusals (
    seccomp    TEXT    PRIMARY KEY,   -- containers.seccomp
    probed_at  INTEGER NOT NULL,      -- Unix ms
    errnos     TEXT    NOT NULL       -- JSON object: syscall name -> errno, e.g. {"clone3": 38}
);

-- Per container, the calls its profile refused with another errno than EPERM.
CREATE VIEW container_refusals AS
SELECT c.container_id, c.name AS container_name, j.key AS name, j.value AS errno
FROM containers c
JOIN refusals f ON f.seccomp = c.seccomp
JOIN json_each(f.errnos) j;
