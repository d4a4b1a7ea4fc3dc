//! The API's OpenAPI document, generated from the handlers' annotations,
//! and the check that refuses query parameters a route does not take
//! (the document is the one list of what each route takes).

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::Json;
use axum::extract::{Query, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::error;
use super::{
    agents, audit, operations, pools, queues, schedules, settings, tasks, tokens, workers,
};

/// The API's OpenAPI document, from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Longshore API",
        description = "Inspect and steer a Longshore cluster: tasks, queues, workers, agents and pools, schedules, runtime settings, API tokens. \
            Every route but this document needs `Authorization: Bearer <token>` (create one with \
            `longshore tokens create`): a `read` token for GET, an `admin` token for \
            anything that changes something and for the token list. Every error is \
            `{\"error\": {\"code\": \"…\", \"message\": \"…\"}}` with a stable code."
    ),
    paths(
        tasks::list,
        tasks::enqueue,
        tasks::show,
        tasks::retry,
        tasks::cancel,
        tasks::delete,
        queues::stats,
        queues::recount,
        queues::list,
        queues::pause,
        queues::resume,
        queues::flush,
        workers::list,
        agents::list,
        agents::drain,
        pools::list,
        pools::create,
        schedules::list,
        schedules::create,
        schedules::show,
        schedules::change,
        schedules::pause,
        schedules::resume,
        schedules::run,
        schedules::delete,
        settings::list,
        settings::set,
        settings::set_keyed,
        tokens::list,
        tokens::create,
        tokens::revoke,
        audit::list,
        operations::list,
        operations::show,
        operations::cancel,
        openapi,
    ),
    modifiers(&BearerToken, &CommonAnswers),
    servers((url = "/", description = "The server that answered this document")),
    tags(
        (name = "tasks", description = "List, show, enqueue, retry, cancel and delete tasks"),
        (name = "stats", description = "Task counts"),
        (name = "queues", description = "Queues: depth by state, pause, resume, flush"),
        (name = "workers", description = "Live worker nodes and capacity"),
        (name = "agents", description = "Agents connected through the gRPC gateway, and their pools"),
        (name = "schedules", description = "Cron schedules: list, show, create, change, pause, resume, run by hand, delete"),
        (name = "settings", description = "Runtime settings every node follows: caps on running tasks"),
        (name = "tokens", description = "The API's bearer tokens: list, create, revoke (admin only, listing too)"),
        (name = "operations", description = "Bulk operations running in the background: progress, and a request to stop"),
        (name = "audit", description = "The audit trail of every change made through the API or the dashboard (admin only)"),
        (name = "meta", description = "This document"),
    )
)]
pub(crate) struct ApiDoc;

/// Where the document is served, without a token.
pub(crate) const PATH: &str = "/api/v1/openapi.json";

/// Declares the bearer-token scheme, and that every operation but the
/// document itself needs it (generated clients read it per operation).
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer_token",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("ls_<43 base64url characters>")
                        .description(Some(
                            "A token from `longshore tokens create --scope read|admin`",
                        ))
                        .build(),
                ),
            );
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (_, operation) in operations(item) {
                operation.security = Some(if path == PATH {
                    Vec::new()
                } else {
                    vec![SecurityRequirement::new(
                        "bearer_token",
                        Vec::<String>::new(),
                    )]
                });
            }
        }
    }
}

/// This API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI document (no token needed)", body = serde_json::Value),
    )
)]
pub(crate) async fn openapi() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(document())
}

/// The OpenAPI document, made once.
fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// The methods the API's routes answer, with their operations in `item`.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (Method, &mut Operation)> {
    [
        (Method::GET, item.get.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
}

/// Documents the answers any route may give beyond its own: a 400 for an
/// unknown query parameter; a 413 and a 415 for a body too large or not
/// sent as JSON, on the routes that take one; a 503 when the database is
/// unavailable (or its schema out of date) and a 500 when the server
/// fails, on every route, since checking the token asks the database.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                    )
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            for (_, operation) in operations(item) {
                let takes_body = operation.request_body.is_some();
                let answers = &mut operation.responses.responses;
                match answers.get_mut("400") {
                    // Among the causes, before "; nothing was changed" if said.
                    Some(RefOr::T(answer)) if !answer.description.contains("parameter") => {
                        let (causes, rest) = answer
                            .description
                            .split_once("; ")
                            .map_or((answer.description.as_str(), String::new()), |(c, r)| {
                                (c, format!("; {r}"))
                            });
                        answer.description =
                            format!("{causes}, or an unknown query parameter{rest}");
                    }
                    Some(_) => {}
                    None => {
                        answers.insert(
                            "400".into(),
                            error("An unknown query parameter; nothing was changed"),
                        );
                    }
                }
                let mut common = vec![
                    ("500", "The server failed; its log has the details"),
                    (
                        "503",
                        "The database is unavailable (worth retrying), or its schema is out of date",
                    ),
                ];
                if takes_body {
                    common.push((
                        "408",
                        "The body did not arrive within `http.body_read_timeout`; the connection is closed",
                    ));
                    common.push(("413", "The body is over `http.max_body_bytes`"));
                    common.push((
                        "415",
                        "The body is not sent as JSON (`Content-Type: application/json`)",
                    ));
                }
                for (status, description) in common {
                    answers
                        .entry(status.into())
                        .or_insert_with(|| error(description));
                }
            }
        }
    }
}

/// The query parameters each route takes, by method and path, as the
/// document lists them.
fn query_parameters() -> &'static HashMap<(Method, String), Vec<String>> {
    static PARAMETERS: OnceLock<HashMap<(Method, String), Vec<String>>> = OnceLock::new();
    PARAMETERS.get_or_init(|| {
        let mut parameters = HashMap::new();
        for (path, mut item) in document().paths.paths.clone() {
            for (method, operation) in operations(&mut item) {
                let names = operation
                    .parameters
                    .iter()
                    .flatten()
                    .filter_map(|parameter| match parameter {
                        RefOr::T(p) if p.parameter_in == ParameterIn::Query => Some(p.name.clone()),
                        _ => None,
                    })
                    .collect();
                parameters.insert((method, path.clone()), names);
            }
        }
        parameters
    })
}

/// Refuses a request with a query parameter its route does not take (a
/// 400 naming it), before the handler runs: the routes without parameters
/// refuse them as those with parameters do.
pub(crate) async fn known_query_parameters_only(
    route: &'static str,
    request: Request,
    next: Next,
) -> Result<Response, error::ApiError> {
    if request.uri().query().is_some() {
        // HEAD is answered by the GET route.
        let method = if request.method() == Method::HEAD {
            Method::GET
        } else {
            request.method().clone()
        };
        let known = query_parameters()
            .get(&(method, route.to_owned()))
            .map_or(&[][..], Vec::as_slice);
        let Query(given) = Query::<Vec<(String, String)>>::try_from_uri(request.uri())
            .map_err(|e| error::ApiError::invalid_query(e.body_text()))?;
        if let Some((name, _)) = given.iter().find(|(name, _)| !known.contains(name)) {
            let takes = if known.is_empty() {
                "none".to_owned()
            } else {
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(error::ApiError::invalid_query(format!(
                "unknown query parameter `{name}`: {} {} takes {takes}",
                request.method(),
                route
            )));
        }
    }
    Ok(next.run(request).await)
}
