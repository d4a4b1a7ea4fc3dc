//! One node at a time holds a cluster-wide role under a lease: the leader
//! that runs maintenance.

#[macro_use]
mod common;

use std::time::Duration;

use common::{quick_config, start_worker, wait_for};
use longshore::core::Leadership;
use longshore::{Registry, WorkerConfig};

const ROLE: &str = "test-role";

/// Who holds the maintenance role now, if anyone.
async fn maintenance_holder(db: &common::TestDb) -> Option<String> {
    db.store
        .leaders()
        .await
        .expect("read the roles")
        .into_iter()
        .find(|l| l.name == Leadership::MAINTENANCE)
        .map(|l| l.holder)
}

conformance! {
    #[tokio::test]
    async fn a_role_is_held_by_one_node_until_its_lease_expires(db) {
        let ttl = Duration::from_secs(2);
        assert!(db.store.try_lead(ROLE, "a", ttl).await.unwrap());
        // Renewed by its holder, refused to anyone else.
        assert!(db.store.try_lead(ROLE, "a", ttl).await.unwrap());
        assert!(!db.store.try_lead(ROLE, "b", ttl).await.unwrap());
        let held = db.store.leaders().await.unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!((held[0].name.as_str(), held[0].holder.as_str()), (ROLE, "a"));
        let since = held[0].acquired_at;

        // Once the lease runs out, another node takes it…
        wait_for("b to take the expired role", Duration::from_secs(10), || async {
            db.store.try_lead(ROLE, "b", Duration::from_secs(30)).await.unwrap().then_some(())
        })
        .await;
        // …and the old holder cannot renew it any more.
        assert!(!db.store.try_lead(ROLE, "a", ttl).await.unwrap());
        let held = db.store.leaders().await.unwrap();
        assert_eq!(held[0].holder, "b");
        assert!(held[0].acquired_at > since);
    }

    #[tokio::test]
    async fn a_holder_that_resigns_lets_another_take_over_at_once(db) {
        let ttl = Duration::from_secs(60);
        assert!(db.store.try_lead(ROLE, "a", ttl).await.unwrap());
        // Resigning someone else's role changes nothing.
        db.store.resign(ROLE, "b").await.unwrap();
        assert!(!db.store.try_lead(ROLE, "b", ttl).await.unwrap());
        db.store.resign(ROLE, "a").await.unwrap();
        assert!(db.store.leaders().await.unwrap().is_empty());
        assert!(db.store.try_lead(ROLE, "b", ttl).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_of_two_workers_leads_maintenance_and_the_other_takes_over_when_it_stops(db) {
        let node = |id: &str| WorkerConfig { id: id.into(), ..quick_config() };
        let a = start_worker(db.other_store().await, Registry::new(), node("a"));
        let b = start_worker(db.other_store().await, Registry::new(), node("b"));
        let first = wait_for("a leader", Duration::from_secs(10), || maintenance_holder(&db))
        .await;
        assert!(first == "a" || first == "b", "{first}");
        // Several renewals later, still the same tenure: a takeover in
        // between, even one handed back, would have reset `acquired_at`.
        let tenure = db.store.leaders().await.unwrap().remove(0);
        let later = wait_for("a few renewals", Duration::from_secs(10), || async {
            let now = db.store.leaders().await.unwrap().remove(0);
            (now.expires_at > tenure.expires_at + chrono::Duration::milliseconds(500)).then_some(now)
        })
        .await;
        assert_eq!((later.holder.as_str(), later.acquired_at), (first.as_str(), tenure.acquired_at));

        let (leader, other) = if first == "a" { (a, b) } else { (b, a) };
        leader.shutdown().await.unwrap();
        let next = wait_for("the other worker to lead", Duration::from_secs(10), || maintenance_holder(&db))
        .await;
        assert_ne!(next, first);
        other.shutdown().await.unwrap();
        assert!(db.store.leaders().await.unwrap().is_empty(), "the last leader resigned");
    }
}
