//! `http`: calls a webhook.
//!
//! Arguments: `{"url": "https://…", "method": "POST", "headers": {…},
//! "body": <JSON or text>, "expect_status": [200, 204]}`. Only `url` is
//! required; the method defaults to `POST` with a body and `GET` without,
//! and any 2xx status is expected unless `expect_status` says otherwise.
//! The response status and a bounded excerpt of its body go to the task's
//! log. An unexpected status or a network error is retried; malformed
//! arguments fail at once.

use std::collections::BTreeMap;

use async_trait::async_trait;
use longshore::{Actor, TaskContext, TaskError};
use serde::Deserialize;

use crate::HttpSettings;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpArgs {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<serde_json::Value>,
    #[serde(default)]
    expect_status: Option<Vec<u16>>,
}

struct Request {
    method: reqwest::Method,
    url: reqwest::Url,
    headers: reqwest::header::HeaderMap,
    body: Option<serde_json::Value>,
    expect: Option<Vec<u16>>,
}

fn request(args: &serde_json::Value) -> Result<Request, String> {
    let args: HttpArgs = super::parse("http", args)?;
    let url = reqwest::Url::parse(&args.url).map_err(|e| {
        format!(
            "invalid arguments for actor `http`: url `{}`: {e}",
            args.url
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "invalid arguments for actor `http`: url scheme must be http or https, got `{}`",
            url.scheme()
        ));
    }
    let method = match &args.method {
        Some(m) => reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("invalid arguments for actor `http`: method `{m}`"))?,
        None if args.body.is_some() => reqwest::Method::POST,
        None => reqwest::Method::GET,
    };
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &args.headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid arguments for actor `http`: header name `{name}`"))?;
        let value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| format!("invalid arguments for actor `http`: value of header `{name}`"))?;
        headers.insert(name, value);
    }
    if let Some(codes) = &args.expect_status
        && (codes.is_empty() || codes.iter().any(|c| !(100..=599).contains(c)))
    {
        return Err(
            "invalid arguments for actor `http`: expect_status must list HTTP status codes (100-599)"
                .into(),
        );
    }
    Ok(Request {
        method,
        url,
        headers,
        body: args.body,
        expect: args.expect_status,
    })
}

pub(super) fn validate(args: &serde_json::Value) -> Result<(), String> {
    request(args).map(|_| ())
}

/// The `http` actor: calls a webhook per task (see the module docs).
pub struct HttpActor {
    client: reqwest::Client,
    max_excerpt: usize,
}

impl HttpActor {
    /// An actor whose requests follow `settings`.
    pub fn new(settings: &HttpSettings) -> Result<HttpActor, String> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("longshore/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HttpActor {
            client,
            max_excerpt: settings.max_excerpt_bytes,
        })
    }
}

#[async_trait]
impl Actor for HttpActor {
    async fn run(&self, args: serde_json::Value, ctx: TaskContext) -> Result<(), TaskError> {
        let request = request(&args).map_err(TaskError::fatal)?;
        ctx.info(format!("{} {}", request.method, request.url));
        let mut builder = self
            .client
            .request(request.method, request.url)
            .headers(request.headers);
        builder = match request.body {
            Some(serde_json::Value::String(text)) => builder.body(text),
            Some(json) => builder.json(&json),
            None => builder,
        };
        let response = tokio::select! {
            response = builder.send() => response?,
            () = ctx.cancelled() => return Err(TaskError::retry("cancelled before the response arrived")),
        };
        let status = response.status();
        let body = tokio::select! {
            body = response.bytes() => body?,
            () = ctx.cancelled() => return Err(TaskError::retry("cancelled while reading the response")),
        };
        let excerpt = excerpt(&body, self.max_excerpt);
        ctx.info(format!("status {status}; body: {excerpt}"));
        let expected = match &request.expect {
            Some(codes) => codes.contains(&status.as_u16()),
            None => status.is_success(),
        };
        if expected {
            Ok(())
        } else {
            Err(TaskError::retry(format!("unexpected status {status}")))
        }
    }
}

/// The first `max` bytes of `body` as text, cut at a character boundary.
fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    if text.len() <= max {
        return text.into_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], body.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_are_checked() {
        assert!(validate(&json!({"url": "http://127.0.0.1:9/hook"})).is_ok());
        assert!(validate(&json!({"url": "ftp://example.com"})).is_err());
        assert!(validate(&json!({"url": "not a url"})).is_err());
        assert!(validate(&json!({"url": "http://x", "method": "NOT A METHOD"})).is_err());
        assert!(validate(&json!({"url": "http://x", "expect_status": [99]})).is_err());
        assert!(validate(&json!({"url": "http://x", "headers": {"bad header": "x"}})).is_err());
        assert!(validate(&json!({"method": "GET"})).is_err());
    }

    #[test]
    fn excerpt_is_bounded_on_a_character_boundary() {
        assert_eq!(excerpt(b"short", 10), "short");
        let long = "é".repeat(10);
        let cut = excerpt(long.as_bytes(), 5);
        assert!(cut.starts_with("éé…"), "{cut}");
        assert!(cut.contains("20 bytes"));
    }
}
