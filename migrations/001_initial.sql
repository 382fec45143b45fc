-- ctrace store, version 1. Times are Unix milliseconds (UTC); views show them as text.
--
-- What containers use is stored as *sets*: one row holds a bitmap of syscall numbers (one ABI)
-- or of capabilities, for one container, Tracefile and phase, over a run of consecutive epochs.
-- A steady workload (the same set every epoch) extends its rows and adds none over time. The
-- views below expand the bitmaps into one row per item with its name, so ad-hoc SQL needs no
-- bit arithmetic and no lookup of its own.

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

-- Names of syscalls per ABI (space 'x86_64', 'i386', 'x32') and of capabilities (space
-- 'capability', spelled as in Tracefiles: net_raw). Filled by ctrace from its tables when it
-- opens the store for writing; a number without a name is stored as e.g. x86_64_syscall_999.
CREATE TABLE names (
    space  TEXT    NOT NULL,
    nr     INTEGER NOT NULL,
    name   TEXT    NOT NULL,
    PRIMARY KEY (space, nr)
) WITHOUT ROWID;

-- What a container used, as sets over runs of epochs. Epochs are --epoch long, aligned to the
-- Unix epoch. Every item in a row was sighted in each of `epochs` epochs (a gap of at most one
-- epoch counts as continued use) from first_seen to last_seen. Item nr is bit (nr % 64) of
-- word w(nr / 64); capabilities use w0 only. One row per (container, tracefile, kind, abi,
-- init) covers the current epoch and grows as sightings come in; when the epoch ends, the
-- rows of the previous epoch whose whole set was seen again are extended instead.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    container   INTEGER NOT NULL REFERENCES containers(id),
    tracefile   INTEGER NOT NULL REFERENCES tracefiles(id),
    kind        TEXT    NOT NULL CHECK (kind IN ('syscall', 'cap_granted', 'cap_denied')),
    abi         TEXT    CHECK (abi IN ('x86_64', 'i386', 'x32')),   -- syscalls only
    init        INTEGER NOT NULL DEFAULT 0,   -- 0 application; runtime set-up (runc init): 1 before
                                              -- its seccomp filter, 2 under it up to the exec
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    epochs      INTEGER NOT NULL DEFAULT 1,
    w0 INTEGER NOT NULL DEFAULT 0, w1 INTEGER NOT NULL DEFAULT 0,
    w2 INTEGER NOT NULL DEFAULT 0, w3 INTEGER NOT NULL DEFAULT 0,
    w4 INTEGER NOT NULL DEFAULT 0, w5 INTEGER NOT NULL DEFAULT 0,
    w6 INTEGER NOT NULL DEFAULT 0, w7 INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_time ON runs (last_seen);
CREATE INDEX runs_by_container ON runs (container, tracefile, last_seen);
CREATE INDEX runs_by_tracefile ON runs (tracefile);

-- The first sighting of each item when its use starts (again, after a gap of two epochs or
-- more): the time, pid and command name the kernel reported. One row per container, Tracefile,
-- kind, abi and init per committed batch; `items` is a JSON array of [nr, unix_ms, pid, comm].
CREATE TABLE first_sightings (
    id          INTEGER PRIMARY KEY,
    container   INTEGER NOT NULL REFERENCES containers(id),
    tracefile   INTEGER NOT NULL REFERENCES tracefiles(id),
    kind        TEXT    NOT NULL CHECK (kind IN ('syscall', 'cap_granted', 'cap_denied')),
    abi         TEXT    CHECK (abi IN ('x86_64', 'i386', 'x32')),
    init        INTEGER NOT NULL DEFAULT 0,
    items       TEXT    NOT NULL
);

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

-- One row per item per run: what a container used and when (times in ms).
CREATE VIEW sightings AS
SELECT r.container, r.tracefile, r.kind, r.abi, n.nr, n.name, r.init,
       r.first_seen, r.last_seen, r.epochs
FROM runs r
JOIN names n ON n.space = coalesce(r.abi, 'capability')
WHERE ((CASE n.nr >> 6 WHEN 0 THEN r.w0 WHEN 1 THEN r.w1 WHEN 2 THEN r.w2 WHEN 3 THEN r.w3
                       WHEN 4 THEN r.w4 WHEN 5 THEN r.w5 WHEN 6 THEN r.w6 WHEN 7 THEN r.w7
                       ELSE 0 END) >> (n.nr & 63)) & 1;

-- Inserting an item into `sightings` stores a run of that one item (imports, tests).
CREATE TRIGGER sightings_insert INSTEAD OF INSERT ON sightings
BEGIN
    INSERT INTO runs (container, tracefile, kind, abi, init, first_seen, last_seen, epochs,
                      w0, w1, w2, w3, w4, w5, w6, w7)
    VALUES (NEW.container, NEW.tracefile, NEW.kind, NEW.abi, coalesce(NEW.init, 0),
            NEW.first_seen, NEW.last_seen, coalesce(NEW.epochs, 1),
            CASE NEW.nr >> 6 WHEN 0 THEN 1 << (NEW.nr & 63) ELSE 0 END,
            CASE NEW.nr >> 6 WHEN 1 THEN 1 << (NEW.nr & 63) ELSE 0 END,
            CASE NEW.nr >> 6 WHEN 2 THEN 1 << (NEW.nr & 63) ELSE 0 END,
            CASE NEW.nr >> 6 WHEN 3 THEN 1 << (NEW.nr & 63) ELSE 0 END,
            CASE NEW.nr >> 6 WHEN 4 THEN 1 << (NEW.nr & 63) ELSE 0 END,
            CASE NEW.nr >> 6 WHEN 5 THEN 1 << (NEW.nr & 63) ELSE 0 END,
            CASE NEW.nr >> 6 WHEN 6 THEN 1 << (NEW.nr & 63) ELSE 0 END,
            CASE NEW.nr >> 6 WHEN 7 THEN 1 << (NEW.nr & 63) ELSE 0 END);
    INSERT OR IGNORE INTO names (space, nr, name)
    VALUES (coalesce(NEW.abi, 'capability'), NEW.nr, NEW.name);
END;

-- Every first sighting with its container: pid, command name, time as text.
CREATE VIEW sighting_details AS
SELECT c.container_id, c.name AS container_name, c.image, c.label, t.path AS tracefile,
       f.kind, f.abi, json_extract(j.value, '$[0]') AS nr, n.name, f.init,
       json_extract(j.value, '$[2]') AS pid, json_extract(j.value, '$[3]') AS comm,
       datetime(json_extract(j.value, '$[1]') / 1000, 'unixepoch') AS first_seen,
       json_extract(j.value, '$[1]') AS first_seen_ms
FROM first_sightings f
JOIN json_each(f.items) j
JOIN containers c ON c.id = f.container
JOIN tracefiles t ON t.id = f.tracefile
LEFT JOIN names n ON n.space = coalesce(f.abi, 'capability')
                 AND n.nr = json_extract(j.value, '$[0]');

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
