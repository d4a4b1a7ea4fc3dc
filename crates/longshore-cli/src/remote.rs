//! The CLI as a client of a server's HTTP API (`--server URL`, with
//! `--token` or `LONGSHORE_TOKEN`): the requests, and every way they can
//! fail turned into one line for people.
//!
//! The commands that work this way get the same values from the API as
//! from the database (see [`crate::commands::Source`]) and print them
//! with the same code.

use std::time::Duration;

use anyhow::{anyhow, bail};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

/// How long one request may take, connection included. Deleting millions
/// of tasks is answered when the last batch is done, hence generous.
const TIMEOUT: Duration = Duration::from_secs(600);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A server's API and the token to use on it.
pub(crate) struct Remote {
    base: Url,
    token: Option<String>,
    client: reqwest::Client,
}

impl Remote {
    /// A client for the server at `server` (`http://host:port`, perhaps
    /// with a path prefix).
    pub(crate) fn new(server: &str, token: Option<String>) -> anyhow::Result<Remote> {
        let base = Url::parse(server.trim()).map_err(|e| {
            anyhow!(
                "--server `{server}` is not a URL ({e}): give one such as http://127.0.0.1:8080"
            )
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            bail!("--server `{server}` is not an http:// or https:// URL");
        }
        let token = token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("longshore-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow!("cannot set up the HTTP client: {e}"))?;
        Ok(Remote {
            base,
            token,
            client,
        })
    }

    /// `/api/v1/` followed by `segments`, each percent-encoded as needed,
    /// with `query`.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        url.set_query(None);
        url.set_fragment(None);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
        }
        url
    }

    /// GET `/api/v1/<segments>?<query>`.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        self.send(Method::GET, segments, query, None).await
    }

    /// POST `/api/v1/<segments>` with a JSON body.
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &serde_json::Value,
    ) -> anyhow::Result<T> {
        self.send(Method::POST, segments, &[], Some(body)).await
    }

    /// PATCH `/api/v1/<segments>` with a JSON body.
    pub(crate) async fn patch<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &serde_json::Value,
    ) -> anyhow::Result<T> {
        self.send(Method::PATCH, segments, &[], Some(body)).await
    }

    /// PUT `/api/v1/<segments>` with a JSON body.
    pub(crate) async fn put<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &serde_json::Value,
    ) -> anyhow::Result<T> {
        self.send(Method::PUT, segments, &[], Some(body)).await
    }

    /// DELETE `/api/v1/<segments>?<query>`.
    pub(crate) async fn delete<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        self.send(Method::DELETE, segments, query, None).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<T> {
        let url = self.url(segments, query);
        let mut request = self.client.request(method, url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            anyhow!(
                "the server at {} did not finish its answer: {}",
                self.base,
                root_cause(&e)
            )
        })?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
            anyhow!(
                "the server at {} answered {status} with something other than Longshore's JSON API: is --server the address of `longshore serve`?",
                self.base
            )
        })?;
        if !status.is_success() {
            return Err(self.refusal(status, &json));
        }
        serde_json::from_value(json).map_err(|e| {
            anyhow!(
                "the server at {} answered in an unexpected shape ({e}): is it running the same version of Longshore as this command?",
                self.base
            )
        })
    }

    /// A request that got no answer.
    fn unreachable(&self, error: &reqwest::Error) -> anyhow::Error {
        let why = if error.is_timeout() {
            "no answer in time".to_owned()
        } else if error.is_connect() {
            root_cause(error)
        } else {
            error.to_string()
        };
        anyhow!(
            "cannot reach the server at {}: {why} (is `longshore serve` running there?)",
            self.base
        )
    }

    /// An error answer as one line: what to do about a token, or the
    /// server's own message (the same words as the database path's).
    fn refusal(&self, status: StatusCode, body: &serde_json::Value) -> anyhow::Error {
        let code = body["error"]["code"].as_str().unwrap_or_default();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        match status {
            StatusCode::UNAUTHORIZED if self.token.is_none() => anyhow!(
                "the server at {} needs a token: set LONGSHORE_TOKEN (or pass --token) to one made by \
                 `longshore tokens create --name NAME --scope read|admin` on its database",
                self.base
            ),
            StatusCode::UNAUTHORIZED => anyhow!(
                "the server at {} refused the token: it is unknown or revoked; \
                 `longshore tokens list` on its database shows the live ones, `longshore tokens create` makes one",
                self.base
            ),
            StatusCode::FORBIDDEN => anyhow!(
                "the token is a read token: this command changes something (or lists tokens) and needs an admin token \
                 (`longshore tokens create --name NAME --scope admin`)"
            ),
            // Longshore's answer to a route it does not have: the URL has a
            // path the server does not serve.
            StatusCode::NOT_FOUND if code == "not_found" => anyhow!(
                "there is no API at {}: is --server the address of `longshore serve`, without a path?",
                self.base
            ),
            _ if code.is_empty() || message.is_empty() => anyhow!(
                "the server at {} answered {status} with something other than Longshore's JSON API: is --server the address of `longshore serve`?",
                self.base
            ),
            _ if status.is_server_error() => {
                anyhow!("the server failed ({code}): {message}")
            }
            _ => anyhow!("{message}"),
        }
    }
}

/// The innermost cause of an error, e.g. `Connection refused (os error 111)`.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_under_the_api() {
        // As `main` does: one TLS provider for every client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let remote = Remote::new("http://127.0.0.1:8080", None).expect("valid");
        assert_eq!(
            remote
                .url(&["queues", "a b/c", "pause"], &[("x", "1+2".into())])
                .as_str(),
            "http://127.0.0.1:8080/api/v1/queues/a%20b%2Fc/pause?x=1%2B2"
        );
        let remote = Remote::new("https://h/prefix/", None).expect("valid");
        assert_eq!(
            remote.url(&["tasks"], &[]).as_str(),
            "https://h/prefix/api/v1/tasks"
        );
        assert!(Remote::new("127.0.0.1:8080", None).is_err());
        assert!(Remote::new("not a url", None).is_err());
    }
}
