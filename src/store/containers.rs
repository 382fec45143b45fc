//! Containers, Tracefile names and daemon facts in the store.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use crate::registry::Container;

/// Records a traced container (again, if it was restarted) and returns its row id.
pub fn upsert(conn: &Connection, container: &Container, now_ms: i64) -> rusqlite::Result<i64> {
    let labels = serde_json::to_string(&container.labels).unwrap_or_else(|_| "{}".into());
    let pod = container.pod.as_ref();
    conn.execute(
        "INSERT INTO containers (container_id, name, image, label, labels, cgroup_id, started_at, \
         seccomp, pod_name, pod_namespace, pod_uid, pod_container) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
         ON CONFLICT (container_id) DO UPDATE SET cgroup_id = excluded.cgroup_id, \
         stopped_at = NULL, labels = excluded.labels, seccomp = excluded.seccomp",
        params![
            container.container_id,
            container.name,
            container.image,
            container.pattern.as_str(),
            labels,
            container.cgroup_id as i64,
            now_ms,
            container.seccomp,
            pod.map(|p| &p.name),
            pod.map(|p| &p.namespace),
            pod.and_then(|p| p.uid.as_ref()),
            pod.and_then(|p| p.container.as_ref()),
        ],
    )?;
    conn.query_row(
        "SELECT id FROM containers WHERE container_id = ?1",
        params![container.container_id],
        |r| r.get(0),
    )
}

pub fn mark_stopped(conn: &Connection, row: i64, at_ms: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE containers SET stopped_at = ?1 WHERE id = ?2",
        params![at_ms, row],
    )?;
    Ok(())
}

/// Adds first-sighting events received to each container row (`sightings_received`).
pub fn add_received(
    conn: &Connection,
    received: impl Iterator<Item = (i64, i64)>,
) -> rusqlite::Result<()> {
    let mut update = conn.prepare_cached(
        "UPDATE containers SET sightings_received = sightings_received + ?1 WHERE id = ?2",
    )?;
    for (row, n) in received {
        update.execute(params![n, row])?;
    }
    Ok(())
}

/// The row id of a Tracefile name, created on first use; `cache` spares the queries.
pub fn tracefile_id(
    conn: &Connection,
    cache: &mut HashMap<String, i64>,
    path: &str,
) -> rusqlite::Result<i64> {
    if let Some(id) = cache.get(path) {
        return Ok(*id);
    }
    conn.execute(
        "INSERT OR IGNORE INTO tracefiles (path) VALUES (?1)",
        params![path],
    )?;
    let id = conn.query_row(
        "SELECT id FROM tracefiles WHERE path = ?1",
        params![path],
        |r| r.get(0),
    )?;
    cache.insert(path.to_string(), id);
    Ok(id)
}

pub fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

pub fn delete_meta(conn: &Connection, key: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM meta WHERE key = ?1", params![key])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::pod::Pod;
    use crate::tracefile::label::TracefilePattern;

    #[test]
    fn a_pod_container_is_stored_with_its_pod() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open_rw(&dir.path().join("s.db")).unwrap();
        let mut c = Container {
            container_id: "ab".repeat(32),
            name: "k8s_nginx_web_shop_uid_0".into(),
            image: "nginx".into(),
            pattern: TracefilePattern::parse("web").unwrap(),
            labels: HashMap::new(),
            cgroup_id: 7,
            seccomp: None,
            pod: Some(Pod {
                name: "web".into(),
                namespace: "shop".into(),
                uid: Some("u-1".into()),
                container: Some("nginx".into()),
            }),
        };
        upsert(&conn, &c, 1000).unwrap();
        c.container_id = "cd".repeat(32);
        c.pod = None;
        upsert(&conn, &c, 1000).unwrap();
        let row: (String, String, String, String, String) = conn
            .query_row(
                "SELECT namespace, pod, container, pod_uid, label FROM pod_containers",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(
            row,
            (
                "shop".into(),
                "web".into(),
                "nginx".into(),
                "u-1".into(),
                "web".into()
            )
        );
        let plain: Option<String> = conn
            .query_row(
                "SELECT pod_name FROM containers WHERE container_id = ?1",
                [&c.container_id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(plain, None, "outside Kubernetes: no pod");
    }
}
