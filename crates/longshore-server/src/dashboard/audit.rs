//! The audit trail as the dashboard keeps and shows it: every change made
//! from a page is recorded with the session's token (the API records its
//! own, see `api/auth.rs`); `/audit` lists the trail for admins.

use askama::Template;
use axum::extract::{FromRequestParts, MatchedPath, Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use longshore::TokenScope;
use longshore::core::NewAuditEntry;
use serde::Deserialize;
use uuid::Uuid;

use super::session::{Refusal, Signed};
use super::view::{Chrome, time};
use super::{Dash, html};

/// Entries on a page.
const PAGE: i64 = 100;

/// What a handler adds to its change's target in the trail (a bulk
/// action's filter, which its form carries in the body), as an extension
/// of its response.
#[derive(Clone, Debug)]
pub(crate) struct AuditDetail(pub(crate) String);

/// Records each change a signed-in session posts, with how it ended.
pub(crate) async fn record(State(dash): State<Dash>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let action = format!(
        "POST {}",
        request
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| request.uri().path(), MatchedPath::as_str)
    );
    let target = request.uri().to_string();
    let (mut parts, body) = request.into_parts();
    let who = Signed::from_request_parts(&mut parts, &dash)
        .await
        .ok()
        .map(|signed| signed.session.token.name);
    let response = next.run(Request::from_parts(parts, body)).await;
    let target = match response.extensions().get::<AuditDetail>() {
        Some(AuditDetail(detail)) => format!("{target} {detail}"),
        None => target,
    };
    if let Some(who) = who {
        let entry = NewAuditEntry::new(
            who,
            "dashboard",
            action,
            &target,
            response.status().as_u16(),
        );
        if let Err(e) = dash.store.record_audit(&entry).await {
            tracing::warn!(error = %e, %target, "cannot record a dashboard change in the audit trail");
        }
    }
    response
}

/// One entry's line.
pub(crate) struct EntryLine {
    pub(crate) at: String,
    pub(crate) who: String,
    pub(crate) via: String,
    pub(crate) action: String,
    pub(crate) target: String,
    pub(crate) status: u16,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct Page {
    page: Chrome,
    entries: Vec<EntryLine>,
    next_page: Option<String>,
}

/// `?before=`.
#[derive(Deserialize)]
pub(crate) struct PageQuery {
    before: Option<Uuid>,
}

/// `GET /audit`: admins only, as through the API.
pub(crate) async fn page(
    State(dash): State<Dash>,
    signed: Signed,
    Query(query): Query<PageQuery>,
) -> Result<Response, Refusal> {
    if signed.session.token.scope != TokenScope::Admin {
        return Err(Refusal::Forbidden(
            "The audit trail names every token and what it did: it needs an admin session.".into(),
        ));
    }
    let mut entries = dash.store.audit_entries(PAGE + 1, query.before).await?;
    let more = i64::try_from(entries.len()).unwrap_or(i64::MAX) > PAGE;
    entries.truncate(usize::try_from(PAGE).unwrap_or(usize::MAX));
    let next_page = if more {
        entries.last().map(|e| format!("/audit?before={}", e.id))
    } else {
        None
    };
    let page = Page {
        page: Chrome::new(&signed, "audit").live(10),
        entries: entries
            .into_iter()
            .map(|e| EntryLine {
                at: time(e.at),
                who: e.entry.who,
                via: e.entry.via,
                action: e.entry.action,
                target: e.entry.target,
                status: e.entry.status,
            })
            .collect(),
        next_page,
    };
    Ok(html(StatusCode::OK, &page))
}
