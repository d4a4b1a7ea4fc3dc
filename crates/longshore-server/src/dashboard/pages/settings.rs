//! `/settings`: the runtime caps every node follows, and the API tokens
//! (listed, created, revoked; an admin session only).

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use longshore::core::TokenScope;
use longshore::ops::{self, OpError, runtime_settings};
use serde::Deserialize;

use super::Done;
use crate::dashboard::session::{CsrfForm, Refusal, Signed};
use crate::dashboard::view::{Chrome, maybe_time, time};
use crate::dashboard::{Dash, html};

/// A token's line.
pub(crate) struct TokenLine {
    pub(crate) name: String,
    pub(crate) scope: &'static str,
    pub(crate) created: String,
    pub(crate) last_used: String,
    pub(crate) revoked: String,
    pub(crate) active: bool,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct Page {
    page: Chrome,
    caps: Vec<(String, String)>,
    tokens: Vec<TokenLine>,
    new_secret: Option<String>,
}

async fn render(
    dash: &Dash,
    chrome: Chrome,
    new_secret: Option<String>,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let caps = runtime_settings::all(dash.store.as_ref())
        .await?
        .into_iter()
        .map(|(key, value)| {
            (
                key,
                value.map_or_else(|| "none".to_owned(), |n| n.to_string()),
            )
        })
        .collect();
    // Only an admin sees the tokens, as only an admin token lists them
    // through the API.
    let tokens = if chrome.admin {
        dash.store
            .tokens()
            .await?
            .into_iter()
            .map(|t| TokenLine {
                active: t.is_active(),
                scope: t.scope.as_str(),
                created: time(t.created_at),
                last_used: maybe_time(t.last_used_at),
                revoked: maybe_time(t.revoked_at),
                name: t.name,
            })
            .collect()
    } else {
        Vec::new()
    };
    let page = Page {
        page: chrome,
        caps,
        tokens,
        new_secret,
    };
    Ok(html(status, &page))
}

/// `GET /settings`.
pub(crate) async fn page(
    State(dash): State<Dash>,
    signed: Signed,
    Query(done): Query<Done>,
) -> Result<Response, Refusal> {
    let chrome = Chrome::new(&signed, "settings").done(done.done.as_deref());
    render(&dash, chrome, None, StatusCode::OK).await
}

/// The caps form.
#[derive(Deserialize)]
pub(crate) struct CapForm {
    csrf: String,
    key: String,
    value: String,
}

/// `POST /settings`: sets a cap, checked as `longshore settings set` checks it.
pub(crate) async fn set_cap(
    State(dash): State<Dash>,
    signed: Signed,
    Form(form): Form<CapForm>,
) -> Result<Response, Refusal> {
    signed.check_change(&form.csrf)?;
    let checked = runtime_settings::Key::parse(form.key.trim()).and_then(|key| {
        let cap = runtime_settings::parse_cap(&key, &form.value)?;
        let key = runtime_settings::checked(&key.name(), cap)?;
        Ok((key, cap))
    });
    match checked {
        Ok((key, cap)) => {
            runtime_settings::apply(dash.store.as_ref(), &key, cap).await?;
            tracing::info!(token = %signed.session.token.name, setting = %key.name(), ?cap, "dashboard: runtime setting changed");
            Ok(Redirect::to("/settings?done=saved").into_response())
        }
        Err(OpError::Store(e)) => Err(e.into()),
        Err(error) => {
            let chrome = Chrome::new(&signed, "settings").error(error.to_string());
            render(&dash, chrome, None, StatusCode::BAD_REQUEST).await
        }
    }
}

/// The new token form.
#[derive(Deserialize)]
pub(crate) struct TokenForm {
    csrf: String,
    name: String,
    scope: String,
}

/// `POST /tokens`: creates a token; its secret is on the answering page
/// only.
pub(crate) async fn create_token(
    State(dash): State<Dash>,
    signed: Signed,
    Form(form): Form<TokenForm>,
) -> Result<Response, Refusal> {
    signed.check_change(&form.csrf)?;
    let scope = form
        .scope
        .parse::<TokenScope>()
        .map_err(|e| Refusal::BadRequest(e.to_string()))?;
    match ops::tokens::create(dash.store.as_ref(), form.name.trim(), scope).await {
        Ok((token, secret)) => {
            tracing::info!(token = %signed.session.token.name, created = %token.name, "dashboard: token created");
            let chrome = Chrome::new(&signed, "settings");
            render(
                &dash,
                chrome,
                Some(secret.expose().to_owned()),
                StatusCode::OK,
            )
            .await
        }
        Err(OpError::Store(longshore::StoreError::InvalidInput(message))) => {
            let chrome = Chrome::new(&signed, "settings").error(message);
            render(&dash, chrome, None, StatusCode::BAD_REQUEST).await
        }
        Err(OpError::Store(e @ longshore::StoreError::TokenExists(_))) => {
            let chrome = Chrome::new(&signed, "settings").error(e.to_string());
            render(&dash, chrome, None, StatusCode::CONFLICT).await
        }
        Err(OpError::Store(e)) => Err(e.into()),
        Err(other) => {
            tracing::error!(error = %other, "dashboard: cannot create a token");
            Err(Refusal::Unavailable)
        }
    }
}

/// `POST /tokens/{name}/revoke`: its requests and sessions end at once.
pub(crate) async fn revoke_token(
    State(dash): State<Dash>,
    signed: Signed,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.check_change(&form.csrf)?;
    match dash.store.revoke_token(&name).await {
        Ok(_) => {}
        Err(longshore::StoreError::TokenNotFound(name)) => {
            return Err(Refusal::NotFound(format!("No token is named {name}.")));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(token = %signed.session.token.name, revoked = %name, "dashboard: token revoked");
    Ok(Redirect::to("/settings?done=revoked").into_response())
}
