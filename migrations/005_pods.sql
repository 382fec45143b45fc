-- Kubernetes pods: which pod, namespace and pod-spec container a traced container is, from
-- the io.kubernetes.* labels a CRI runtime (cri-dockerd) puts on it (src/docker/pod.rs).
-- NULL for containers started outside Kubernetes.
ALTER TABLE containers ADD COLUMN pod_name TEXT;
ALTER TABLE containers ADD COLUMN pod_namespace TEXT;
ALTER TABLE containers ADD COLUMN pod_uid TEXT;
ALTER TABLE containers ADD COLUMN pod_container TEXT;   -- spec.containers[].name

-- Per traced pod container: the container_summary row with its pod.
CREATE VIEW pod_containers AS
SELECT c.pod_namespace AS namespace, c.pod_name AS pod, c.pod_container AS container,
       c.pod_uid, s.*
FROM containers c
JOIN container_summary s ON s.container_id = c.container_id
WHERE c.pod_name IS NOT NULL;
