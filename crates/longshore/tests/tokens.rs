//! API tokens as every engine stores them: created once by name, found by
//! the hash of their secret while not revoked, listed, revoked; and the
//! dashboard sessions opened with them.

#[macro_use]
mod common;

use longshore::StoreError;
use longshore::core::token::hash_secret;
use std::time::Duration;

use longshore::core::token::random_text;
use longshore::core::{TokenScope, TokenSecret};

conformance! {
    #[tokio::test]
    async fn a_session_lives_until_it_ends_expires_or_its_token_is_revoked(db) {
        let store = &db.store;
        let token = store
            .create_token("alice", TokenScope::Read, &TokenSecret::generate().unwrap().hash())
            .await
            .unwrap();
        let open = async |csrf: &str| {
            let hash = hash_secret(&random_text().unwrap());
            store
                .create_session(token.id, &hash, csrf, Duration::from_secs(3600))
                .await
                .unwrap();
            hash
        };

        // Found by its hash, with its token as it is now.
        let first = open("c1").await;
        let session = store.session(&first).await.unwrap().expect("the session");
        assert_eq!(session.token.name, "alice");
        assert_eq!(session.token.scope, TokenScope::Read);
        assert_eq!(session.csrf, "c1");
        assert!(session.expires_at > chrono::Utc::now());
        assert!(store.session(&hash_secret("other")).await.unwrap().is_none());
        // Signing out ends it; ending it again changes nothing.
        store.end_session(&first).await.unwrap();
        assert!(store.session(&first).await.unwrap().is_none());
        store.end_session(&first).await.unwrap();

        // Expired: not found, and purged.
        let second = open("c2").await;
        assert_eq!(store.purge_sessions(100).await.unwrap(), 0);
        db.observer()
            .execute("UPDATE longshore_sessions SET expires_at = created_at")
            .await;
        assert!(store.session(&second).await.unwrap().is_none());
        assert_eq!(store.purge_sessions(100).await.unwrap(), 1);

        // Revoking the token ends its sessions at once.
        let third = open("c3").await;
        assert!(store.session(&third).await.unwrap().is_some());
        store.revoke_token("alice").await.unwrap();
        assert!(store.session(&third).await.unwrap().is_none());

        // Only a SHA-256 hex hash is stored.
        let err = store
            .create_session(token.id, "not-a-hash", "c", Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    }

    #[tokio::test]
    async fn a_token_is_found_by_its_hash_until_it_is_revoked(db) {
        let secret = TokenSecret::generate().unwrap();
        let created = db
            .store
            .create_token("ci", TokenScope::Admin, &secret.hash())
            .await
            .unwrap();
        assert_eq!(created.name, "ci");
        assert_eq!(created.scope, TokenScope::Admin);
        assert!(created.last_used_at.is_none() && created.revoked_at.is_none());

        let found = db.store.token_by_hash(&secret.hash()).await.unwrap().unwrap();
        assert_eq!(found.id, created.id);
        let first_use = found.last_used_at.expect("the first use is recorded");
        // A second use within the precision writes nothing.
        let again = db.store.token_by_hash(&secret.hash()).await.unwrap().unwrap();
        assert_eq!(again.last_used_at, Some(first_use));
        let listed = db.store.tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].last_used_at, Some(first_use));

        // Another secret, or the secret itself where its hash belongs, finds nothing.
        assert!(db.store.token_by_hash(&hash_secret("ls_other")).await.unwrap().is_none());
        assert!(db.store.token_by_hash(secret.expose()).await.unwrap().is_none());

        let revoked = db.store.revoke_token("ci").await.unwrap();
        let at = revoked.revoked_at.expect("revoked");
        assert!(db.store.token_by_hash(&secret.hash()).await.unwrap().is_none());
        // Revoking again keeps the first time.
        let again = db.store.revoke_token("ci").await.unwrap();
        assert_eq!(again.revoked_at, Some(at));
        assert_eq!(db.store.tokens().await.unwrap()[0].revoked_at, Some(at));
    }

    #[tokio::test]
    async fn names_are_unique_forever_and_bad_input_writes_nothing(db) {
        let hash = TokenSecret::generate().unwrap().hash();
        db.store.create_token("deploy", TokenScope::Read, &hash).await.unwrap();
        let other = TokenSecret::generate().unwrap().hash();
        let err = db.store.create_token("deploy", TokenScope::Admin, &other).await.unwrap_err();
        assert!(matches!(err, StoreError::TokenExists(ref n) if n == "deploy"), "{err}");
        db.store.revoke_token("deploy").await.unwrap();
        // A revoked token's name stays taken.
        let err = db.store.create_token("deploy", TokenScope::Admin, &other).await.unwrap_err();
        assert!(matches!(err, StoreError::TokenExists(_)), "{err}");

        let err = db.store.create_token("has space", TokenScope::Read, &other).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
        let err = db.store.create_token("raw", TokenScope::Read, "ls_secret").await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
        let err = db.store.revoke_token("nobody").await.unwrap_err();
        assert!(matches!(err, StoreError::TokenNotFound(ref n) if n == "nobody"), "{err}");

        db.store.create_token("alpha", TokenScope::Admin, &other).await.unwrap();
        let names: Vec<(String, TokenScope, bool)> = db
            .store
            .tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.name.clone(), t.scope, t.is_active()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("alpha".to_owned(), TokenScope::Admin, true),
                ("deploy".to_owned(), TokenScope::Read, false),
            ]
        );
    }
}
