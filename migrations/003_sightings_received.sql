-- How many first-sighting events the kernel sent for each container, re-reports included
-- (after an epoch ends, a Tracefile window rolls over or the ring buffer was full). It shows
-- which containers the kernel was made to report again, e.g. that a window roll-over of one
-- container's Tracefile did not touch another's.
ALTER TABLE containers ADD COLUMN sightings_received INTEGER NOT NULL DEFAULT 0;
