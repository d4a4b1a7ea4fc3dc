//! The audit trail as every engine keeps it: entries recorded, listed
//! newest first a page at a time, and purged past their retention.

#[macro_use]
mod common;

use std::time::Duration;

use longshore::core::NewAuditEntry;

conformance! {
    #[tokio::test]
    async fn entries_are_listed_newest_first_a_page_at_a_time_and_purged(db) {
        let store = &db.store;
        for n in 0..5 {
            let entry = NewAuditEntry::new(
                "alice",
                "api",
                "POST /api/v1/queues/{name}/pause",
                &format!("/api/v1/queues/q{n}/pause"),
                200,
            );
            store.record_audit(&entry).await.unwrap();
        }
        let first = store.audit_entries(3, None).await.unwrap();
        let targets: Vec<&str> = first.iter().map(|e| e.entry.target.as_str()).collect();
        assert_eq!(targets, ["/api/v1/queues/q4/pause", "/api/v1/queues/q3/pause", "/api/v1/queues/q2/pause"]);
        assert_eq!(first[0].entry.who, "alice");
        assert_eq!(first[0].entry.status, 200);
        let rest = store.audit_entries(3, first.last().map(|e| e.id)).await.unwrap();
        let targets: Vec<&str> = rest.iter().map(|e| e.entry.target.as_str()).collect();
        assert_eq!(targets, ["/api/v1/queues/q1/pause", "/api/v1/queues/q0/pause"]);

        // Nothing is old enough yet; everything is older than nothing.
        assert_eq!(store.purge_audit(Duration::from_secs(3600), 100).await.unwrap(), 0);
        assert_eq!(store.purge_audit(Duration::ZERO, 2).await.unwrap(), 2);
        assert_eq!(store.purge_audit(Duration::ZERO, 100).await.unwrap(), 3);
        assert!(store.audit_entries(10, None).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_long_target_is_cut_at_a_character_boundary(db) {
        let long = "é".repeat(NewAuditEntry::MAX_TARGET_BYTES);
        let entry = NewAuditEntry::new("bob", "dashboard", "POST /tasks/{id}/retry", &long, 303);
        assert!(entry.target.len() <= NewAuditEntry::MAX_TARGET_BYTES);
        db.store.record_audit(&entry).await.unwrap();
        let stored = db.store.audit_entries(1, None).await.unwrap();
        assert_eq!(stored[0].entry, entry);
    }
}
