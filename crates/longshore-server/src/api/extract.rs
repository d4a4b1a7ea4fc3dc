//! The API's extractors: axum's JSON body, query and path extractors,
//! whose refusals answer with an [`ApiError`] like every other error.

use std::fmt;
use std::marker::PhantomData;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::error::{ApiError, ErrorCode};

/// A JSON body, refused with an [`ApiError`]. Every body the API reads is a
/// JSON object: anything else is refused, whatever `T` would accept.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Json::<Object<T>>::from_request(req, state)
            .await
            .map(|Json(Object(value))| ApiJson(value))
            .map_err(ApiError::from)
    }
}

/// Query parameters, refused with an [`ApiError`].
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|e: QueryRejection| ApiError::invalid_query(e.body_text()))
    }
}

/// Path parameters, refused with an [`ApiError`].
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|e: PathRejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidPath,
                    e.body_text(),
                )
            })
    }
}

/// A value read only from a JSON object.
///
/// A struct that derives `Deserialize` also accepts its fields as an array
/// (`[null]` for `{"value": null}`), which the API's document does not
/// allow: read through `Object`, an array, a string or a number is refused
/// with "expected a JSON object".
pub(crate) struct Object<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(Fields(PhantomData))
            .map(Object)
    }
}

/// For `#[serde(default, deserialize_with = "optional_object")]`: an
/// optional field whose value, when given, must be a JSON object.
pub(crate) fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Object<T>>::deserialize(deserializer).map(|o| o.map(|Object(value)| value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Pair {
        kind: String,
        id: Option<String>,
    }

    fn read<T: DeserializeOwned>(json: &str) -> Result<T, String> {
        serde_json::from_str::<Object<T>>(json)
            .map(|Object(value)| value)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_object_reads_as_its_struct() {
        assert_eq!(
            read::<Pair>(r#"{"kind": "user", "id": "7"}"#),
            Ok(Pair {
                kind: "user".into(),
                id: Some("7".into())
            })
        );
        assert_eq!(
            read::<serde_json::Value>(r#"{"a": [1]}"#),
            Ok(serde_json::json!({"a": [1]}))
        );
    }

    #[test]
    fn anything_but_an_object_is_refused() {
        // Without `Object`, serde reads a struct from an array of its fields.
        assert!(serde_json::from_str::<Pair>(r#"["user", null]"#).is_ok());
        for json in [r#"["user", null]"#, "[null]", "null", "7", r#""user""#] {
            let refused = read::<Pair>(json).expect_err(json);
            assert!(
                refused.contains("expected a JSON object"),
                "{json}: {refused}"
            );
        }
        assert!(read::<serde_json::Value>("[1]").is_err());
    }

    #[test]
    fn an_optional_object_is_null_missing_or_an_object() {
        #[derive(Debug, Deserialize)]
        struct Holder {
            #[serde(default, deserialize_with = "optional_object")]
            related: Option<Pair>,
        }
        let read = |json: &str| serde_json::from_str::<Holder>(json).map(|h| h.related);
        assert_eq!(read("{}").ok(), Some(None));
        assert_eq!(read(r#"{"related": null}"#).ok(), Some(None));
        assert!(read(r#"{"related": {"kind": "user"}}"#).is_ok_and(|r| r.is_some()));
        assert!(read(r#"{"related": ["user", "7"]}"#).is_err());
    }
}
