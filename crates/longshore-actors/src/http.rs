//! `http`: calls a webhook.
//!
//! Arguments: `{"url": "https://…", "method": "POST", "headers": {…},
//! "body": <JSON or text>, "expect_status": [200, 204]}`. Only `url` is
//! required; the method defaults to `POST` with a body and `GET` without,
//! and any 2xx status is expected unless `expect_status` says otherwise.
//! The response status and a bounded excerpt of its body go to the task's
//! log. An unexpected status or a network error is retried; malformed
//! arguments fail at once.
//!
//! Redirects are followed to the same host only, unless
//! `actors.http.redirects` says `any` (or `none`); `actors.http.allowed_hosts`
//! limits the hosts a task may call at all. A task whose URL, or a redirect,
//! leads where it may not go fails at once, saying where and which setting
//! stopped it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use longshore::{Actor, TaskContext, TaskError};
use serde::Deserialize;

use crate::{HttpSettings, Redirects};

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
    redirects: Redirects,
    allowed: AllowedHosts,
}

/// `actors.http.allowed_hosts`: exact hosts, and `*.domain` for the
/// subdomains of one; empty allows every host.
#[derive(Clone, Debug)]
struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    fn new(hosts: &[String]) -> Result<AllowedHosts, String> {
        let hosts: Vec<String> = hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        if let Some(bad) = hosts.iter().find(|h| {
            let wildcard = h.strip_prefix("*.").unwrap_or(h);
            wildcard.is_empty() || wildcard.contains(['/', ':', ' ', '*'])
        }) {
            return Err(format!(
                "invalid setting: actors.http.allowed_hosts: `{bad}` is not a host name nor `*.domain`"
            ));
        }
        Ok(AllowedHosts(hosts))
    }

    fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.0.is_empty()
            || self
                .0
                .iter()
                .any(|allowed| match allowed.strip_prefix("*.") {
                    Some(domain) => host
                        .strip_suffix(domain)
                        .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                    None => *allowed == host,
                })
    }
}

impl HttpActor {
    /// An actor whose requests follow `settings`.
    pub fn new(settings: &HttpSettings) -> Result<HttpActor, String> {
        let allowed = AllowedHosts::new(&settings.allowed_hosts)?;
        let mode = settings.redirects;
        let policy = match mode {
            Redirects::None => reqwest::redirect::Policy::none(),
            Redirects::SameHost | Redirects::Any => {
                let allowed = allowed.clone();
                reqwest::redirect::Policy::custom(move |attempt| {
                    if attempt.previous().len() > 10 {
                        return attempt.error("more than ten redirects in a row");
                    }
                    let target = attempt.url().host_str().unwrap_or_default().to_owned();
                    let named = attempt
                        .previous()
                        .first()
                        .and_then(|url| url.host_str())
                        .unwrap_or_default();
                    let same_host = target.eq_ignore_ascii_case(named);
                    if (mode == Redirects::SameHost && !same_host) || !allowed.allows(&target) {
                        // Answered as it came; `run` says why it stopped.
                        attempt.stop()
                    } else {
                        attempt.follow()
                    }
                })
            }
        };
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(policy)
            .user_agent(concat!("longshore/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HttpActor {
            client,
            max_excerpt: settings.max_excerpt_bytes,
            redirects: mode,
            allowed,
        })
    }

    /// Why a redirect answered as it came was not followed, if it was
    /// stopped rather than wanted.
    fn unfollowed(&self, response: &reqwest::Response) -> Option<String> {
        if self.redirects == Redirects::None || !response.status().is_redirection() {
            return None;
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)?
            .to_str()
            .ok()?;
        let target = response.url().join(location).ok()?;
        let host = target.host_str().unwrap_or_default();
        let why = if !self.allowed.allows(host) {
            "its host is not in actors.http.allowed_hosts"
        } else {
            "it leads to another host, and actors.http.redirects is same_host (set it to any to follow)"
        };
        Some(format!(
            "redirected to {}, which was not followed: {why}",
            shown_url(&target)
        ))
    }
}

#[async_trait]
impl Actor for HttpActor {
    async fn run(&self, args: serde_json::Value, ctx: TaskContext) -> Result<(), TaskError> {
        let request = request(&args).map_err(TaskError::fatal)?;
        ctx.info(format!("{} {}", request.method, shown_url(&request.url)));
        let host = request.url.host_str().unwrap_or_default();
        if !self.allowed.allows(host) {
            return Err(TaskError::fatal(format!(
                "host {host} is not in actors.http.allowed_hosts; nothing was sent"
            )));
        }
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
        let unfollowed = self.unfollowed(&response);
        let head = tokio::select! {
            head = read_head(response, self.max_excerpt) => head?,
            () = ctx.cancelled() => return Err(TaskError::retry("cancelled while reading the response")),
        };
        ctx.info(format!(
            "status {status}; body: {}",
            head.excerpt(self.max_excerpt)
        ));
        let expected = match &request.expect {
            Some(codes) => codes.contains(&status.as_u16()),
            None => status.is_success(),
        };
        match unfollowed {
            _ if expected => Ok(()),
            // The same redirect would stop the same way at every attempt.
            Some(why) => Err(TaskError::fatal(why)),
            None => Err(TaskError::retry(format!("unexpected status {status}"))),
        }
    }
}

/// The start of a response's body: never more than the excerpt needs, so
/// that a huge answer costs no memory (the rest is not read; the
/// connection is dropped).
struct Head {
    bytes: Vec<u8>,
    /// The body's length, when the response says it or it was read whole.
    total: Option<u64>,
    /// Whether bytes were left unread.
    cut: bool,
}

impl Head {
    /// The start as text, cut at a character boundary within `max`
    /// bytes, saying how much there was.
    fn excerpt(&self, max: usize) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        if text.len() <= max && !self.cut {
            return text.into_owned();
        }
        let mut end = max.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        match self.total {
            Some(total) => format!("{}… ({total} bytes in all)", &text[..end]),
            None => format!("{}… (the rest was not read)", &text[..end]),
        }
    }
}

/// Reads the first `max` bytes of `response`'s body (and a few more, to
/// tell whether there is more), then stops.
async fn read_head(mut response: reqwest::Response, max: usize) -> Result<Head, reqwest::Error> {
    let declared = response.content_length();
    let mut bytes = Vec::new();
    // A byte more than the excerpt shows tells a cut body from a whole one;
    // a few more keep a character whole at the cut.
    let wanted = max.saturating_add(4);
    while bytes.len() <= wanted {
        match response.chunk().await? {
            Some(chunk) => bytes.extend_from_slice(&chunk),
            None => {
                let total = u64::try_from(bytes.len()).ok();
                return Ok(Head {
                    cut: bytes.len() > max,
                    bytes,
                    total,
                });
            }
        }
    }
    bytes.truncate(wanted);
    Ok(Head {
        bytes,
        total: declared,
        cut: true,
    })
}

/// `url` fit for a task's log: a password and the values of query
/// parameters that look like credentials are masked.
fn shown_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    if shown.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let lower = name.to_ascii_lowercase();
                let secret = [
                    "key",
                    "token",
                    "secret",
                    "password",
                    "passwd",
                    "auth",
                    "signature",
                    "sig",
                    "credential",
                ]
                .iter()
                .any(|word| lower.contains(word));
                let value = if secret {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn allowed_hosts_match_exactly_or_by_subdomain() {
        let any = AllowedHosts::new(&[]).unwrap();
        assert!(any.allows("anything.example"));
        let some =
            AllowedHosts::new(&["hooks.example.com".into(), "*.internal.example".into()]).unwrap();
        assert!(some.allows("hooks.example.com"));
        assert!(some.allows("HOOKS.example.com"));
        assert!(!some.allows("evil-hooks.example.com"));
        assert!(some.allows("a.internal.example"));
        assert!(some.allows("a.b.internal.example"));
        assert!(!some.allows("internal.example"));
        assert!(!some.allows("xinternal.example"));
        for bad in ["", "*", "*.", "http://x", "a/b", "x:80", "a.*.b"] {
            assert!(AllowedHosts::new(&[bad.into()]).is_err(), "{bad}");
        }
    }

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
        let head = |text: &str, total, cut| Head {
            bytes: text.as_bytes().to_vec(),
            total,
            cut,
        };
        assert_eq!(head("short", Some(5), false).excerpt(10), "short");
        let long = "é".repeat(10);
        let cut = head(&long, Some(20), true).excerpt(5);
        assert!(cut.starts_with("éé…"), "{cut}");
        assert!(cut.contains("20 bytes"));
        let unknown = head(&long, None, true).excerpt(5);
        assert!(unknown.contains("the rest was not read"), "{unknown}");
    }

    #[test]
    fn credentials_never_reach_the_log() {
        let url = reqwest::Url::parse(
            "https://ops:hunter2@example.com/hook?api_key=abc&page=2&access_token=xyz",
        )
        .unwrap();
        let shown = shown_url(&url);
        assert!(
            !shown.contains("hunter2") && !shown.contains("abc") && !shown.contains("xyz"),
            "{shown}"
        );
        assert!(
            shown.contains("ops:***@") && shown.contains("page=2"),
            "{shown}"
        );
    }

    /// A huge answer is not read: the server gets to write little more
    /// than the client's buffers hold before the connection is dropped.
    #[tokio::test]
    async fn a_huge_answer_is_read_no_further_than_the_excerpt() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        const BODY: u64 = 1 << 30;
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let header = format!("HTTP/1.1 200 OK\r\ncontent-length: {BODY}\r\n\r\n");
            socket.write_all(header.as_bytes()).await.unwrap();
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = 0u64;
            while sent < BODY {
                if socket.write_all(&chunk).await.is_err() {
                    break;
                }
                sent += chunk.len() as u64;
            }
            sent
        });
        let response = reqwest::Client::new()
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap();
        let head = read_head(response, 1024).await.unwrap();
        assert!(head.cut);
        assert_eq!(head.total, Some(BODY));
        assert!(
            head.excerpt(1024)
                .ends_with(&format!("… ({BODY} bytes in all)"))
        );
        let sent = server.await.unwrap();
        assert!(
            sent < 64 << 20,
            "the server wrote {sent} bytes before the client stopped reading"
        );
    }
}
