-- ctrace store, version 1. Times are Unix milliseconds (UTC); views show them as text.

-- One row per traced container (a container id is unique for its lifetime).
CREATE TABLE containers (
    id            INTEGER PRIMARY KEY,
    container_id  TEXT    NOT NULL UNIQUE,   -- 64 hex characters
    name          TEXT    NOT NULL,          -- without the leading '/'
    image         TEXT    NOT NULL,
    label         TEXT    NOT NULL,          -- the ctrace.tracefile label value (a pattern)
    labels        TEXT    NOT NULL DEFAULT '{}', -- every label, as JSON
    cgroup_id     INTEGER,
    started_at    INTEGER NOT NULL,
    stopped_at    INTEGER
);

-- A Tracefile name, as its label expanded with strftime for one time window.
CREATE TABLE tracefiles (
    id    INTEGER PRIMARY KEY,
    path  TEXT NOT NULL UNIQUE                -- relative to the data directory
);

-- What a container used. One row covers consecutive epochs: the item was first sighted at
-- first_seen and sighted again in every epoch up to last_seen, so a steady workload adds
-- no rows over time. A gap (an epoch without use) starts a new row.
CREATE TABLE sightings (
    id          INTEGER PRIMARY KEY,
    container   INTEGER NOT NULL REFERENCES containers(id),
    tracefile   INTEGER NOT NULL REFERENCES tracefiles(id),
    kind        TEXT    NOT NULL CHECK (kind IN ('syscall', 'cap_granted', 'cap_denied')),
    abi         TEXT    CHECK (abi IN ('x86_64', 'i386', 'x32')),   -- syscalls only
    nr          INTEGER NOT NULL,
    name        TEXT    NOT NULL,             -- syscall name in its ABI, or capability (net_raw)
    init        INTEGER NOT NULL DEFAULT 0,   -- 0 application; runtime set-up (runc init): 1 before
                                              -- its seccomp filter, 2 under it up to the exec
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    epochs      INTEGER NOT NULL DEFAULT 1,   -- epochs in which it was sighted
    pid         INTEGER,                      -- of the first sighting
    comm        TEXT
);
CREATE INDEX sightings_by_item ON sightings (container, tracefile, kind, abi, nr, init, last_seen);
CREATE INDEX sightings_by_time ON sightings (last_seen);

-- The runtime baseline (`ctrace requirements`), cached per Docker engine version.
CREATE TABLE requirements (
    engine_version  TEXT    PRIMARY KEY,
    recorded_at     INTEGER NOT NULL,
    tracefile       TEXT    NOT NULL
);

-- Daemon facts, e.g. ring buffer misses, epoch length.
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- Every sighting with its container, times as text.
CREATE VIEW sighting_details AS
SELECT c.container_id, c.name AS container_name, c.image, c.label, t.path AS tracefile,
       s.kind, s.abi, s.nr, s.name, s.init, s.epochs, s.pid, s.comm,
       datetime(s.first_seen / 1000, 'unixepoch') AS first_seen,
       datetime(s.last_seen / 1000, 'unixepoch') AS last_seen,
       s.first_seen AS first_seen_ms, s.last_seen AS last_seen_ms
FROM sightings s
JOIN containers c ON c.id = s.container
JOIN tracefiles t ON t.id = s.tracefile;

-- Per container: what it is, when it was first and last seen using anything, how much.
CREATE VIEW container_summary AS
SELECT c.container_id, c.name, c.image, c.label,
       datetime(c.started_at / 1000, 'unixepoch') AS started,
       datetime(c.stopped_at / 1000, 'unixepoch') AS stopped,
       datetime(min(s.first_seen) / 1000, 'unixepoch') AS first_seen,
       datetime(max(s.last_seen) / 1000, 'unixepoch') AS last_seen,
       count(DISTINCT CASE WHEN s.kind = 'syscall' AND s.init = 0 THEN s.abi || ':' || s.name END) AS syscalls,
       count(DISTINCT CASE WHEN s.kind = 'cap_granted' AND s.init = 0 THEN s.name END) AS capabilities
FROM containers c
LEFT JOIN sightings s ON s.container = c.id
GROUP BY c.id;

-- Distinct items per container (application phase), with when each was last used.
CREATE VIEW container_usage AS
SELECT c.container_id, c.name AS container_name, s.kind, s.abi, s.name,
       datetime(min(s.first_seen) / 1000, 'unixepoch') AS first_seen,
       datetime(max(s.last_seen) / 1000, 'unixepoch') AS last_seen,
       sum(s.epochs) AS epochs
FROM sightings s
JOIN containers c ON c.id = s.container
WHERE s.init = 0
GROUP BY c.id, s.kind, s.abi, s.name;
