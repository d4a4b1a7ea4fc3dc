//! Signing in and out, and the session every page needs.
//!
//! Signing in with an API token opens a session: a random secret in an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the request came
//! over HTTPS through a proxy that says so in `X-Forwarded-Proto`), of
//! which the database keeps only the hash, so that any node of the
//! cluster accepts it and a copy of the table opens nothing. Each session
//! has a CSRF token that every form carries back. A session ends when it
//! expires (`dashboard.session_ttl`), when its holder signs out, or when
//! its token is revoked.

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use longshore::core::token::{hash_secret, random_text};
use longshore::{Session, StoreError, TokenScope};
use serde::Deserialize;

use super::Dash;

/// The session cookie's name.
const COOKIE: &str = "longshore_session";

/// A request from a signed-in browser.
pub(crate) struct Signed {
    pub(crate) session: Session,
    /// The hash of its secret, which names it in the store.
    secret_hash: String,
}

impl Signed {
    /// Refuses a form whose CSRF token is not the session's, and a change
    /// asked by a session whose token may only read.
    pub(crate) fn check_change(&self, csrf: &str) -> Result<(), Refusal> {
        if !same(csrf.as_bytes(), self.session.csrf.as_bytes()) {
            return Err(Refusal::Forbidden(
                "This form is out of date or did not come from this dashboard: reload the page and try again."
                    .into(),
            ));
        }
        if self.session.token.scope != TokenScope::Admin {
            return Err(Refusal::Forbidden(format!(
                "Token {} may only read: changes need a session opened with an admin token.",
                self.session.token.name
            )));
        }
        Ok(())
    }
}

/// Compares two secrets in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a page is not shown.
pub(crate) enum Refusal {
    /// Not signed in: to the sign-in page, then back to `next`.
    SignIn { next: String },
    /// Signed in, but this may not be done (403).
    Forbidden(String),
    /// What was asked cannot mean anything (400).
    BadRequest(String),
    /// What was asked for does not exist (404).
    NotFound(String),
    /// The database is not answering (503).
    Unavailable,
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Refusal {
        match &error {
            StoreError::NotFound(id) => Refusal::NotFound(format!("No task has the id {id}.")),
            StoreError::ScheduleNotFound(name) => {
                Refusal::NotFound(format!("No schedule is named {name}."))
            }
            StoreError::InvalidInput(message) => Refusal::BadRequest(message.clone()),
            StoreError::InvalidState { .. } | StoreError::UniqueConflict { .. } => {
                Refusal::BadRequest(error.to_string())
            }
            _ => {
                tracing::warn!(error = %error, "dashboard: the store failed");
                Refusal::Unavailable
            }
        }
    }
}

/// A page that says why.
#[derive(Template)]
#[template(path = "message.html")]
struct Message<'a> {
    title: &'a str,
    text: &'a str,
    back: &'a str,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            Refusal::SignIn { next } => {
                let to = format!("/sign-in?next={}", urlencode(&next));
                return Redirect::to(&to).into_response();
            }
            Refusal::Forbidden(text) => (StatusCode::FORBIDDEN, "Not allowed", text),
            Refusal::BadRequest(text) => (StatusCode::BAD_REQUEST, "Cannot do that", text),
            Refusal::NotFound(text) => (StatusCode::NOT_FOUND, "Not found", text),
            Refusal::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Database unavailable",
                "The database is not answering; try again in a moment (the server's log has the details)."
                    .to_owned(),
            ),
        };
        let page = Message {
            title,
            text: &text,
            back: "/",
        };
        super::html(status, &page)
    }
}

/// `text` fit for a query parameter's value.
fn urlencode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The session cookie's value, if the request has one.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

impl FromRequestParts<Dash> for Signed {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, dash: &Dash) -> Result<Signed, Refusal> {
        let next = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let Some(secret) = cookie(&parts.headers) else {
            return Err(Refusal::SignIn { next });
        };
        let secret_hash = hash_secret(&secret);
        match dash.store.session(&secret_hash).await? {
            Some(session) => Ok(Signed {
                session,
                secret_hash,
            }),
            None => Err(Refusal::SignIn { next }),
        }
    }
}

/// Where to go after signing in: a path on this server only.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/"
    }
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignIn<'a> {
    error: Option<&'a str>,
    next: &'a str,
}

/// `?next=` of the sign-in page.
#[derive(Deserialize)]
pub(crate) struct NextQuery {
    #[serde(default)]
    next: String,
}

/// `GET /sign-in`.
pub(crate) async fn sign_in_page(
    axum::extract::Query(query): axum::extract::Query<NextQuery>,
) -> Response {
    let page = SignIn {
        error: None,
        next: safe_next(&query.next),
    };
    super::html(StatusCode::OK, &page)
}

/// The sign-in form.
#[derive(Deserialize)]
pub(crate) struct SignInForm {
    token: String,
    #[serde(default)]
    next: String,
}

/// `POST /sign-in`: a valid token opens a session and goes on to `next`.
pub(crate) async fn sign_in(
    State(dash): State<Dash>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, Refusal> {
    let next = safe_next(&form.next).to_owned();
    let presented = form.token.trim();
    let token = if longshore::core::TokenSecret::looks_valid(presented) {
        dash.store.token_by_hash(&hash_secret(presented)).await?
    } else {
        None
    };
    let Some(token) = token else {
        let page = SignIn {
            error: Some("That is not a valid token: it may be mistyped or revoked."),
            next: &next,
        };
        return Ok(super::html(StatusCode::UNAUTHORIZED, &page));
    };
    let (Ok(secret), Ok(csrf)) = (random_text(), random_text()) else {
        tracing::error!("dashboard: no random bytes for a session");
        return Err(Refusal::Unavailable);
    };
    dash.store
        .create_session(token.id, &hash_secret(&secret), &csrf, dash.session_ttl)
        .await?;
    tracing::info!(token = %token.name, "dashboard: signed in");
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        dash.session_ttl.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut response = Redirect::to(&next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: String,
}

/// `POST /sign-out`: ends the session (read sessions too).
pub(crate) async fn sign_out(
    State(dash): State<Dash>,
    signed: Signed,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Refusal> {
    if !same(form.csrf.as_bytes(), signed.session.csrf.as_bytes()) {
        return Err(Refusal::Forbidden(
            "This form is out of date: reload the page and try again.".into(),
        ));
    }
    dash.store.end_session(&signed.secret_hash).await?;
    let mut response = Redirect::to("/sign-in").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "longshore_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(safe_next("/tasks?state=failed"), "/tasks?state=failed");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; longshore_session=abc; b=2"),
        );
        assert_eq!(cookie(&headers).as_deref(), Some("abc"));
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
