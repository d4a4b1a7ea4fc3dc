//! API tokens as every engine stores them: created once by name, found by
//! the hash of their secret while not revoked, listed, revoked.

#[macro_use]
mod common;

use longshore::StoreError;
use longshore::core::token::hash_secret;
use longshore::core::{TokenScope, TokenSecret};

conformance! {
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
