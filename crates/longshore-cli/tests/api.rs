//! The HTTP API of `longshore serve` (and of `longshore worker --http`),
//! driven over HTTP as a client would:
//! every route's success, its authentication (401) and scope (403), bad
//! input of every kind (a 4xx with a JSON error, and nothing changed), and
//! the OpenAPI document checked against what the server answers.

// Test helpers may panic on any failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::{Engine, Env, Proc, text};

use longshore_testing::on_both_engines;

on_both_engines!(
    every_route_answers_an_admin_token,
    tokens_are_required_and_read_tokens_change_nothing,
    bad_input_is_a_json_4xx_and_changes_nothing,
    the_bad_input_corpus_gets_its_answers_and_changes_nothing,
    the_openapi_document_lists_exactly_the_routes_the_server_answers,
    token_commands_refuse_bad_input_with_one_line,
    delete_by_filter_and_flush_count_first_then_remove_only_what_matches,
    the_task_list_takes_every_filter_as_a_query_parameter,
    schedules_and_settings_change_through_the_api,
    bad_schedules_and_settings_are_refused_and_change_nothing,
    tokens_are_created_listed_and_revoked_through_the_api_by_admins_only,
    a_worker_with_http_serves_the_api_metrics_and_health_checks,
    a_worker_refuses_one_address_for_http_and_metrics_and_serves_two,
    changes_and_refused_changes_are_in_the_audit_trail_for_admins,
);

/// Every route the API has, as the OpenAPI document must list it.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/tasks"),
    ("POST", "/api/v1/tasks"),
    ("DELETE", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks/{id}"),
    ("POST", "/api/v1/tasks/{id}/retry"),
    ("POST", "/api/v1/tasks/{id}/cancel"),
    ("GET", "/api/v1/stats"),
    ("POST", "/api/v1/stats/recount"),
    ("GET", "/api/v1/queues"),
    ("POST", "/api/v1/queues/{name}/pause"),
    ("POST", "/api/v1/queues/{name}/resume"),
    ("POST", "/api/v1/queues/{name}/flush"),
    ("GET", "/api/v1/workers"),
    ("GET", "/api/v1/agents"),
    ("POST", "/api/v1/agents/{id}/drain"),
    ("GET", "/api/v1/pools"),
    ("POST", "/api/v1/pools"),
    ("GET", "/api/v1/schedules"),
    ("POST", "/api/v1/schedules"),
    ("GET", "/api/v1/schedules/{name}"),
    ("PATCH", "/api/v1/schedules/{name}"),
    ("DELETE", "/api/v1/schedules/{name}"),
    ("POST", "/api/v1/schedules/{name}/pause"),
    ("POST", "/api/v1/schedules/{name}/resume"),
    ("POST", "/api/v1/schedules/{name}/run"),
    ("GET", "/api/v1/settings"),
    ("PUT", "/api/v1/settings"),
    ("PUT", "/api/v1/settings/{key}"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens/{name}/revoke"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/operations"),
    ("GET", "/api/v1/operations/{id}"),
    ("POST", "/api/v1/operations/{id}/cancel"),
    ("GET", "/api/v1/openapi.json"),
];

/// Polls the operation a `202` answer started until it is no longer
/// running; its last view.
async fn ended(server: &Server, doc: &Value, started: &Value) -> Value {
    let id = started["operation"]["id"]
        .as_str()
        .expect("an operation id");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let op = server
            .get(&format!("/api/v1/operations/{id}"))
            .await
            .ok(200);
        check_answer(doc, "GET", "/api/v1/operations/{id}", 200, &op);
        if op["state"] != "running" {
            return op;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still running: {op}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The body limit the tests' servers run with, so that an oversized body
/// stays small.
const BODY_LIMIT: usize = 4096;

/// A running `longshore serve`, an admin and a read token, and a client.
struct Server {
    proc: Proc,
    base: String,
    client: reqwest::Client,
    admin: String,
    read: String,
}

/// What the server answered: the status, the headers and the JSON body.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    /// The error code of an error answer.
    fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body ({}): {}", self.status, self.body))
    }

    /// Asserts an error answer of `status` and `code` with a message.
    #[track_caller]
    fn error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.code(), code, "{}", self.body);
        let message = self.body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{}", self.body);
    }

    /// Asserts `status` and returns the body.
    #[track_caller]
    fn ok(self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        self.body
    }
}

impl Server {
    /// Creates an admin and a read token, then starts `serve` on queues
    /// `default` and `api` (not `held` nor `idle`) with the small body
    /// limit, and waits for its start line.
    async fn start(env: &Env) -> Server {
        let (server, line) = Server::spawn(
            env,
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--grpc-listen",
                "127.0.0.1:0",
                "--queues",
                "default,api",
            ],
        );
        let addr = line
            .strip_prefix("longshore serve: listening on http://")
            .and_then(|rest| rest.split_once(", using "))
            .map(|(addr, _)| addr)
            .unwrap_or_else(|| panic!("unexpected start line: {line}"));
        server.at(addr)
    }

    /// Creates the tokens, then starts `longshore <args>` with the small
    /// body limit; the server (its address still unknown) and its start
    /// line.
    fn spawn(env: &Env, args: &[&str]) -> (Server, String) {
        let admin = env
            .ok(&["tokens", "create", "--name", "admin", "--scope", "admin"])
            .trim()
            .to_owned();
        let read = env
            .ok(&["tokens", "create", "--name", "viewer", "--scope", "read"])
            .trim()
            .to_owned();
        let mut cmd = env.cmd();
        cmd.env("LONGSHORE_HTTP__MAX_BODY_BYTES", BODY_LIMIT.to_string())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut proc = Proc::spawn(cmd);
        let line = proc.stdout_line(Duration::from_secs(30));
        // The client needs a TLS provider chosen, even for plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let server = Server {
            proc,
            base: String::new(),
            client,
            admin,
            read,
        };
        (server, line)
    }

    /// The server, answering at `addr` (as its start line printed it).
    fn at(self, addr: &str) -> Server {
        let addr: SocketAddr = addr
            .parse()
            .unwrap_or_else(|e| panic!("`{addr}` is not an address: {e}"));
        assert_ne!(addr.port(), 0);
        Server {
            base: format!("http://{addr}"),
            ..self
        }
    }

    /// A request to `path`, bearing `token` if any.
    fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request` and reads the JSON answer (every answer is JSON).
    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = content_type(&headers);
        let text = response.text().await.unwrap();
        assert!(
            content_type.starts_with("application/json"),
            "{status} with content type `{content_type}`: {text}"
        );
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {e}: {text}"));
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Sends only the head of a request whose body would be `length`
    /// bytes, and reads the answer. A body over the limit is refused
    /// before it is read; a client still writing one may find the
    /// connection closed under it (a broken pipe) before it reads the
    /// answer, so the corpus's oversized cases send no body at all.
    async fn send_head(
        &self,
        method: &Method,
        path: &str,
        token: Option<&str>,
        length: usize,
    ) -> Answer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\n{auth}Connection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
            .await
            .expect("no answer to a request's head within 30 s")
            .unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("not an HTTP answer: {raw}"));
        let mut lines = head.lines();
        let status_line = lines.next().unwrap_or_default();
        let code: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status in `{status_line}`"));
        let mut headers = reqwest::header::HeaderMap::new();
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(
                    reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                    value.trim().parse().unwrap(),
                );
            }
        }
        assert!(
            !headers.contains_key(reqwest::header::TRANSFER_ENCODING),
            "a chunked answer to a request's head: {raw}"
        );
        Answer {
            status: StatusCode::from_u16(code).unwrap(),
            body: serde_json::from_str(body).unwrap_or_else(|e| panic!("{code}: {e}: {body}")),
            headers,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.request(Method::GET, path, Some(&self.admin)))
            .await
    }

    async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(
            self.request(Method::POST, path, Some(&self.admin))
                .json(body),
        )
        .await
    }

    /// POST with a raw body sent as JSON.
    async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        self.send(
            self.request(Method::POST, path, Some(&self.admin))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body),
        )
        .await
    }

    /// Enqueues `body`, expecting `status`; the ids of the tasks.
    async fn enqueue(&self, body: Value, status: u16) -> Vec<String> {
        let answer = self.post("/api/v1/tasks", &body).await.ok(status);
        answer["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits for task `id` to be in `state`; returns its detail.
    async fn wait_for_state(&self, id: &str, state: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let detail = self.get(&format!("/api/v1/tasks/{id}")).await.ok(200);
            if detail["task"]["state"] == state {
                return detail;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {id} is not {state} after 30s: {detail}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then a clean exit.
    async fn stop(mut self) {
        self.proc.signal("TERM");
        let status = self.proc.exit_within(Duration::from_secs(15)).await;
        assert!(
            status.success(),
            "serve exited with {status}: {}",
            self.proc.stderr()
        );
    }
}

impl Server {
    /// Both health checks answer `ok`, without a token.
    async fn assert_healthy(&self) {
        for path in ["/health/live", "/health/ready"] {
            let answer = self.send(self.request(Method::GET, path, None)).await;
            assert_eq!(answer.ok(200)["status"], "ok", "{path}");
        }
    }

    /// The names of the paused queues.
    async fn paused_queues(&self) -> Vec<String> {
        let queues = self.get("/api/v1/queues").await.ok(200);
        queues["queues"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|q| q["paused"] != false)
            .map(|q| q["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// The content type of an answer (empty without one).
fn content_type(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The string `key` of each object in the array `list`.
fn strings<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap())
        .collect()
}

/// The OpenAPI document, as the server serves it.
async fn document(server: &Server) -> Value {
    server.get("/api/v1/openapi.json").await.ok(200)
}

/// Checks `value` against the document's schema `schema` (the parts of
/// JSON Schema utoipa writes: `$ref`, `oneOf`, `type`, `properties`,
/// `required`, `items`, `enum`, `format: uuid`, and `allOf` of objects,
/// as a flattened field makes); every object's keys must be known to its
/// schema.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{at}: no schema {name}"));
        }
        return conforms(doc, target, value, at);
    }
    if let Some(parts) = schema["allOf"].as_array() {
        // One object schema with every part's properties and requirements.
        let mut merged = json!({"type": "object", "properties": {}, "required": []});
        for part in parts {
            let mut part = part;
            while let Some(reference) = part["$ref"].as_str() {
                let name = reference.trim_start_matches("#/components/schemas/");
                part = &doc["components"]["schemas"][name];
            }
            if let Some(properties) = part["properties"].as_object() {
                for (key, property) in properties {
                    merged["properties"][key] = property.clone();
                }
            }
            for key in part["required"].as_array().into_iter().flatten() {
                merged["required"].as_array_mut().unwrap().push(key.clone());
            }
        }
        return conforms(doc, &merged, value, at);
    }
    if let Some(options) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        return if options
            .iter()
            .any(|option| conforms(doc, option, value, at).is_ok())
        {
            Ok(())
        } else {
            Err(format!("{at}: {value} matches none of {options:?}"))
        };
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {values:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed = types.is_empty()
        || types.contains(&actual)
        || (actual == "integer" && types.contains(&"number"));
    if !allowed {
        return Err(format!("{at}: {value} is {actual}, not {types:?}"));
    }
    if schema["format"] == "uuid"
        && let Some(text) = value.as_str()
        && text.parse::<uuid::Uuid>().is_err()
    {
        return Err(format!("{at}: {text} is not a UUID"));
    }
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema["properties"].as_object() {
                for key in map.keys() {
                    if !properties.contains_key(key) {
                        return Err(format!("{at}: `{key}` is not in the schema"));
                    }
                }
                for (key, property) in properties {
                    match map.get(key) {
                        Some(v) => conforms(doc, property, v, &format!("{at}.{key}"))?,
                        None if schema["required"]
                            .as_array()
                            .is_some_and(|r| r.contains(&json!(key))) =>
                        {
                            return Err(format!("{at}: required `{key}` is missing"));
                        }
                        None => {}
                    }
                }
            }
        }
        Value::Array(items) if !schema["items"].is_null() => {
            for (i, item) in items.iter().enumerate() {
                conforms(doc, &schema["items"], item, &format!("{at}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Checks `body`, answered with `status` by `method` on the route
/// `template`, against what the document says that answer is.
#[track_caller]
fn check_answer(doc: &Value, method: &str, template: &str, status: u16, body: &Value) {
    let operation = &doc["paths"][template][method.to_ascii_lowercase()];
    let schema =
        &operation["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "the document has no {status} answer for {method} {template}"
    );
    if let Err(e) = conforms(doc, schema, body, "body") {
        panic!("{method} {template} ({status}) does not match the document: {e}\n{body}");
    }
}

async fn every_route_answers_an_admin_token(engine: Engine) {
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;
    let doc = document(&server).await;

    // Enqueue: one task, many, and a duplicate of an active unique key.
    let single = server
        .post(
            "/api/v1/tasks",
            &json!({"actor": "fail", "args": {"times": 2}, "max_attempts": 5}),
        )
        .await;
    let location = single
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let single = single.ok(201);
    check_answer(&doc, "POST", "/api/v1/tasks", 201, &single);
    assert_eq!(single["tasks"][0]["inserted"], true);
    let failing = single["tasks"][0]["id"].as_str().unwrap().to_owned();
    // One task created: `Location` names it, and it can be read there.
    assert_eq!(location, Some(format!("/api/v1/tasks/{failing}")));
    server
        .get(&format!("/api/v1/tasks/{failing}"))
        .await
        .ok(200);
    let bulk = server
        .post(
            "/api/v1/tasks",
            &json!({"tasks": [
                {"actor": "noop", "queue": "api", "priority": 3},
                {"actor": "noop", "queue": "api", "related": {"kind": "user", "id": "42"}},
                {"actor": "custom", "any_actor": true, "queue": "held",
                 "run_at": "2100-01-01T00:00:00Z", "unique_key": "once"},
            ]}),
        )
        .await;
    assert!(
        bulk.headers.get("location").is_none(),
        "three tasks created have no one Location"
    );
    let bulk: Vec<String> = bulk.ok(201)["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bulk.len(), 3);
    let held = bulk[2].clone();
    let duplicate = server
        .post(
            "/api/v1/tasks",
            &json!({"actor": "custom", "any_actor": true, "unique_key": "once"}),
        )
        .await
        .ok(200);
    check_answer(&doc, "POST", "/api/v1/tasks", 200, &duplicate);
    assert_eq!(
        duplicate["tasks"][0],
        json!({"id": held, "inserted": false})
    );

    // Show: the failing task's logs come by execution.
    let detail = server.wait_for_state(&failing, "succeeded").await;
    check_answer(&doc, "GET", "/api/v1/tasks/{id}", 200, &detail);
    assert_eq!(detail["task"]["attempt"], 3);
    assert_eq!(detail["task"]["execution"], 3);
    assert_eq!(detail["current_execution"]["number"], 3);
    let previous: Vec<i64> = detail["previous_executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["number"].as_i64().unwrap())
        .collect();
    assert_eq!(previous, vec![2, 1]);
    assert!(
        detail["previous_executions"][1]["logs"][0]["message"]
            .as_str()
            .unwrap()
            .contains("failing on purpose"),
        "{detail}"
    );
    for id in &bulk[..2] {
        server.wait_for_state(id, "succeeded").await;
    }

    // List: filters and keyset pages.
    let page = server.get("/api/v1/tasks?queue=api&limit=1").await.ok(200);
    check_answer(&doc, "GET", "/api/v1/tasks", 200, &page);
    assert_eq!(page["tasks"][0]["id"], bulk[1].as_str());
    let before = page["next_before"].as_str().unwrap();
    let next = server
        .get(&format!("/api/v1/tasks?queue=api&limit=1&before={before}"))
        .await
        .ok(200);
    assert_eq!(next["tasks"][0]["id"], bulk[0].as_str());
    assert_eq!(next["next_before"], Value::Null);
    let last = server
        .get(&format!(
            "/api/v1/tasks?queue=api&limit=1&before={}",
            bulk[0]
        ))
        .await
        .ok(200);
    assert_eq!(last, json!({"tasks": [], "next_before": null}));
    let waiting = server
        .get("/api/v1/tasks?state=scheduled,queued&actor=custom")
        .await
        .ok(200);
    assert_eq!(waiting["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(waiting["tasks"][0]["status"], "scheduled");
    assert_eq!(waiting["next_before"], Value::Null);
    let none = server.get("/api/v1/tasks?schedule=nightly").await.ok(200);
    assert_eq!(none["tasks"], json!([]));

    // Retry a finished task; cancel a waiting one; neither twice.
    let retried = server
        .post(&format!("/api/v1/tasks/{failing}/retry"), &json!(null))
        .await
        .ok(200);
    check_answer(&doc, "POST", "/api/v1/tasks/{id}/retry", 200, &retried);
    assert_eq!(retried["state"], "queued");
    server.wait_for_state(&failing, "succeeded").await;
    let cancelled = server
        .post(&format!("/api/v1/tasks/{held}/cancel"), &json!(null))
        .await
        .ok(200);
    check_answer(&doc, "POST", "/api/v1/tasks/{id}/cancel", 200, &cancelled);
    assert_eq!(cancelled, json!({"id": held, "outcome": "cancelled"}));
    server
        .post(&format!("/api/v1/tasks/{held}/cancel"), &json!(null))
        .await
        .error(409, "invalid_state");
    let waiting = server
        .enqueue(json!({"actor": "noop", "queue": "held"}), 201)
        .await;
    server
        .post(&format!("/api/v1/tasks/{}/retry", waiting[0]), &json!(null))
        .await
        .error(409, "invalid_state");
    let unknown = uuid::Uuid::now_v7();
    server
        .get(&format!("/api/v1/tasks/{unknown}"))
        .await
        .error(404, "task_not_found");
    server
        .post(&format!("/api/v1/tasks/{unknown}/cancel"), &json!(null))
        .await
        .error(404, "task_not_found");

    // Stats by state, actor and queue.
    let stats = server.get("/api/v1/stats").await.ok(200);
    check_answer(&doc, "GET", "/api/v1/stats", 200, &stats);
    assert_eq!(stats["by"], "state");
    assert_eq!(stats["counts"]["succeeded"], 3);
    assert_eq!(stats["counts"]["cancelled"], 1);
    assert_eq!(stats["counts"]["queued"], 1);
    assert_eq!(stats["total"], 5);
    assert_eq!(stats["groups"], json!([]));
    let by_actor = server.get("/api/v1/stats?by=actor").await.ok(200);
    check_answer(&doc, "GET", "/api/v1/stats", 200, &by_actor);
    let actors: Vec<(&str, i64)> = by_actor["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"].as_str().unwrap(), g["total"].as_i64().unwrap()))
        .collect();
    assert_eq!(actors, vec![("custom", 1), ("fail", 1), ("noop", 3)]);
    let by_queue = server.get("/api/v1/stats?by=queue").await.ok(200);
    let api = by_queue["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == "api")
        .unwrap();
    assert_eq!(api["counts"]["succeeded"], 2);

    // Queues: depth by state, pause and resume.
    let paused = server
        .post("/api/v1/queues/held/pause", &json!(null))
        .await
        .ok(200);
    check_answer(&doc, "POST", "/api/v1/queues/{name}/pause", 200, &paused);
    assert_eq!(paused, json!({"name": "held", "paused": true}));
    let queues = server.get("/api/v1/queues").await.ok(200);
    check_answer(&doc, "GET", "/api/v1/queues", 200, &queues);
    let held_queue = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "held")
        .unwrap();
    assert_eq!(held_queue["paused"], true);
    assert_eq!(held_queue["counts"]["queued"], 1);
    assert_eq!(held_queue["counts"]["cancelled"], 1);
    let resumed = server
        .post("/api/v1/queues/held/resume", &json!(null))
        .await
        .ok(200);
    check_answer(&doc, "POST", "/api/v1/queues/{name}/resume", 200, &resumed);
    assert_eq!(resumed["paused"], false);

    // Workers: serve's own inline worker, leading; the capacity settings.
    env.ok(&["settings", "set", "max_running", "7"]);
    let workers = server.get("/api/v1/workers").await.ok(200);
    check_answer(&doc, "GET", "/api/v1/workers", 200, &workers);
    assert_eq!(workers["workers"].as_array().unwrap().len(), 1);
    assert_eq!(workers["workers"][0]["concurrency"], 16);
    assert_eq!(workers["capacity"]["max_running"], 7);
    assert_eq!(workers["capacity"]["total_slots"], 16);

    // Schedules: at least the built-in maintenance ones.
    let schedules = server.get("/api/v1/schedules").await.ok(200);
    check_answer(&doc, "GET", "/api/v1/schedules", 200, &schedules);
    let names = strings(&schedules["schedules"], "name");
    assert!(names.contains(&"longshore.purge"), "{names:?}");

    // Health checks need no token.
    server.assert_healthy().await;
    server.stop().await;
}

/// A concrete path for a route template (`probe` is a queue and, once
/// [`add_probe`] made it, a schedule).
fn concrete(template: &str, id: &str) -> String {
    template
        .replace("{id}", id)
        .replace("{name}", "probe")
        .replace("{key}", "max_running")
}

/// Creates schedule `probe` (paused), so that `{name}` routes find one.
fn add_probe(env: &Env) {
    env.ok(&[
        "schedules",
        "add",
        "probe",
        "--actor",
        "noop",
        "--cron",
        "@yearly",
        "--paused",
    ]);
}

async fn tokens_are_required_and_read_tokens_change_nothing(engine: Engine) {
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;
    add_probe(&env);
    let id = server
        .enqueue(json!({"actor": "noop", "queue": "idle"}), 201)
        .await;
    let id = &id[0];
    let total = env.total().await;

    let unknown = format!("ls_{}", "A".repeat(43));
    let revoked = env
        .ok(&["tokens", "create", "--name", "gone", "--scope", "admin"])
        .trim()
        .to_owned();
    // It works until it is revoked, and not a moment after.
    server
        .send(server.request(Method::GET, "/api/v1/stats", Some(&revoked)))
        .await
        .ok(200);
    let out = env.ok(&["tokens", "revoke", "gone"]);
    assert!(out.contains("token gone (admin) revoked at"), "{out}");

    // The document describes the API and reveals nothing: tools load it
    // without a token.
    let open = server
        .send(server.request(Method::GET, "/api/v1/openapi.json", None))
        .await
        .ok(200);
    assert!(open["servers"][0]["url"].is_string(), "{}", open["servers"]);
    for (method, template) in ROUTES {
        if *template == "/api/v1/openapi.json" {
            continue;
        }
        let path = concrete(template, id);
        let method: Method = method.parse().unwrap();
        let refusals = [
            (None, "no token"),
            (Some("not-a-token"), "garbage"),
            (Some(unknown.as_str()), "unknown token"),
            (Some(revoked.as_str()), "revoked token"),
        ];
        for (token, what) in refusals {
            let answer = server
                .send(server.request(method.clone(), &path, token))
                .await;
            assert_eq!(
                answer.status, 401,
                "{method} {path} with {what}: {}",
                answer.body
            );
            answer.error(401, "unauthorized");
            assert!(
                answer
                    .headers
                    .contains_key(reqwest::header::WWW_AUTHENTICATE),
                "{method} {path}"
            );
        }
        // A header that is not `Bearer`.
        let answer = server
            .send(
                server
                    .request(method.clone(), &path, None)
                    .header("Authorization", format!("Basic {}", server.admin)),
            )
            .await;
        answer.error(401, "unauthorized");

        let answer = server
            .send(
                server
                    .request(method.clone(), &path, Some(&server.read))
                    .json(&json!({"actor": "noop"})),
            )
            .await;
        // Reading the token list and the audit trail needs an admin token
        // too.
        if *template == "/api/v1/operations/{id}" {
            // Allowed to read; the id here is a task's.
            answer.error(404, "operation_not_found");
        } else if method == Method::GET && !["/api/v1/tokens", "/api/v1/audit"].contains(template) {
            assert_eq!(answer.status, 200, "{method} {path}: {}", answer.body);
        } else {
            answer.error(403, "forbidden");
        }
    }
    // The read token changed nothing.
    assert_eq!(env.total().await, total);
    assert_eq!(server.paused_queues().await, Vec::<String>::new());
    assert_eq!(
        server.get(&format!("/api/v1/tasks/{id}")).await.ok(200)["task"]["state"],
        "queued"
    );

    // Uses are recorded; secrets are never listed.
    let listed = env.json(&["tokens", "list", "--json"]);
    let names: Vec<(&str, bool, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap(),
                t["active"].as_bool().unwrap(),
                t["last_used_at"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("admin", true, true),
            ("gone", false, true),
            ("viewer", true, true)
        ]
    );
    let text = listed.to_string();
    assert!(
        !text.contains(&server.admin) && !text.contains("hash"),
        "{text}"
    );
    server.stop().await;
}

/// What the tables hold, apart from what reading changes (a token's last
/// use) and what refusals add on purpose (the audit trail).
async fn rows(env: &Env) -> Vec<String> {
    let observer = env.observer().await;
    let mut rows = Vec::new();
    for sql in [
        "SELECT CAST(id AS TEXT) || ' ' || CAST(state AS TEXT) || ' ' || CAST(modified_at AS TEXT) \
         FROM longshore_tasks ORDER BY id",
        // Built-in schedules record each run: not what a request changed.
        "SELECT name || ' ' || CAST(modified_at AS TEXT) FROM longshore_schedules \
         WHERE NOT builtin ORDER BY name",
        "SELECT name || ' ' || CAST(modified_at AS TEXT) FROM longshore_queues ORDER BY name",
        "SELECT name || ' ' || CAST(modified_at AS TEXT) FROM longshore_settings ORDER BY name",
        "SELECT name || ' ' || scope || ' ' || COALESCE(CAST(revoked_at AS TEXT), '-') \
         FROM longshore_tokens ORDER BY name",
        "SELECT CAST(count(*) AS TEXT) FROM longshore_task_logs",
    ] {
        rows.extend(observer.strings(sql).await);
    }
    rows
}

/// Every case of tests/fixtures/bad-input.json gets its status and code,
/// on either engine, and no row changes.
async fn the_bad_input_corpus_gets_its_answers_and_changes_nothing(engine: Engine) {
    let corpus: Value = serde_json::from_str(include_str!("fixtures/bad-input.json")).unwrap();
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;
    // Something for each kind of path to name: a waiting task, a schedule,
    // a paused queue.
    let task = server
        .enqueue(
            json!({"actor": "noop", "queue": "held", "run_at": "2999-01-01T00:00:00Z"}),
            201,
        )
        .await
        .remove(0);
    server
        .post(
            "/api/v1/schedules",
            &json!({"name": "nightly", "actor": "noop", "cron": "0 0 3 * * *"}),
        )
        .await
        .ok(201);
    server
        .post("/api/v1/queues/held/pause", &json!(null))
        .await
        .ok(200);
    let before = rows(&env).await;

    let mut wrong = Vec::new();
    let cases = corpus["cases"].as_array().unwrap();
    assert!(cases.len() >= 50, "the corpus lost cases");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let method = Method::from_bytes(case["method"].as_str().unwrap().as_bytes()).unwrap();
        let path = case["path"]
            .as_str()
            .unwrap()
            .replace("{task}", &task)
            .replace("{schedule}", "nightly")
            .replace("{queue}", "held");
        let token = match case["token"].as_str().unwrap_or("admin") {
            "admin" => Some(server.admin.clone()),
            "read" => Some(server.read.clone()),
            "bad" => Some("lsk_no-such-token-0000000000000000".to_owned()),
            "none" => None,
            other => panic!("{name}: unknown token kind {other}"),
        };
        let body = if let Some(depth) = case["deep"].as_u64() {
            let mut args = json!(1);
            for _ in 0..depth {
                args = json!([args]);
            }
            Some(json!({"actor": "noop", "args": {"nested": args}}).to_string())
        } else if let Some(bytes) = case["pad"].as_u64() {
            let pad = "x".repeat(usize::try_from(bytes).unwrap());
            Some(json!({"actor": "noop", "args": {"pad": pad}}).to_string())
        } else {
            case["body"].as_str().map(str::to_owned)
        };
        let answer = match body {
            Some(body) if case["status"] == 413 => {
                server
                    .send_head(&method, &path, token.as_deref(), body.len())
                    .await
            }
            Some(body) => {
                let request = server
                    .request(method, &path, token.as_deref())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body);
                server.send(request).await
            }
            None => {
                server
                    .send(server.request(method, &path, token.as_deref()))
                    .await
            }
        };
        let status = case["status"].as_u64().unwrap();
        let code = case["code"].as_str();
        let got_code = answer.body["error"]["code"].as_str();
        if u64::from(answer.status.as_u16()) != status || code.is_some_and(|c| Some(c) != got_code)
        {
            wrong.push(format!("{name}: got {} {}", answer.status, answer.body));
        }
        assert_eq!(rows(&env).await, before, "{name} changed a row");
    }
    assert!(
        wrong.is_empty(),
        "answers not as the corpus says:\n{}",
        wrong.join("\n")
    );
    server.stop().await;
}

async fn bad_input_is_a_json_4xx_and_changes_nothing(engine: Engine) {
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;
    server.enqueue(json!({"actor": "noop"}), 201).await;
    let before = env.total().await;

    // The corpus of bad requests (tests/fixtures/bad-input.json) is run by
    // the_bad_input_corpus_gets_its_answers_and_changes_nothing; here, what
    // needs more than a status and a code.
    let long_queue = json!({"actor": "noop", "queue": "q".repeat(300)}).to_string();
    let long_key = json!({"actor": "noop", "unique_key": "k".repeat(1100)}).to_string();
    for body in [long_queue, long_key] {
        server
            .post_raw("/api/v1/tasks", body)
            .await
            .error(400, "invalid_input");
    }
    let answer = server
        .post_raw(
            "/api/v1/tasks",
            r#"{"tasks": [{"actor": "noop"}, {"actor": "noop", "colour": 1}]}"#,
        )
        .await;
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tasks[1]"),
        "{}",
        answer.body
    );
    // PostgreSQL cannot store a NUL character: its refusal is the
    // caller's error, not the server's. (SQLite stores one.)
    if engine == Engine::Postgres {
        for body in [
            r#"{"actor": "noop", "queue": "q\u0000"}"#,
            r#"{"actor": "x", "any_actor": true, "args": {"a": "\u0000"}}"#,
        ] {
            server
                .post_raw("/api/v1/tasks", body.to_owned())
                .await
                .error(400, "invalid_input");
        }
        server
            .post("/api/v1/queues/a%00b/pause", &json!(null))
            .await
            .error(400, "invalid_input");
    }
    // No JSON content type.
    server
        .send(
            server
                .request(Method::POST, "/api/v1/tasks", Some(&server.admin))
                .body(r#"{"actor": "noop"}"#),
        )
        .await
        .error(415, "unsupported_media_type");
    // Over the body limit, though valid.
    let big = json!({"actor": "noop", "args": {"pad": "x".repeat(BODY_LIMIT)}}).to_string();
    server
        .post_raw("/api/v1/tasks", big)
        .await
        .error(413, "payload_too_large");

    // Filters and paths.
    let queries = [
        "/api/v1/tasks?state=queued,",
        "/api/v1/tasks?limit=many",
        "/api/v1/tasks?before=yesterday",
        "/api/v1/tasks?status=fine",
        "/api/v1/tasks?status=warning,",
        "/api/v1/tasks?related=:42",
        "/api/v1/tasks?related=user:",
        "/api/v1/tasks?related=user&standalone=true",
        "/api/v1/tasks?standalone=yes",
        "/api/v1/tasks?exclude_successful=1",
        "/api/v1/tasks?finished_before=2025-13-01T00:00:00Z",
        "/api/v1/tasks?created_after=1h&created_before=2h",
        "/api/v1/tasks?finished_after=2025-01-02T00:00:00Z&finished_before=2025-01-01T00:00:00Z",
        "/api/v1/tasks?related_id=42",
        // An empty name is no filter the document allows.
        "/api/v1/tasks?queue=",
        "/api/v1/tasks?schedule=",
        "/api/v1/stats?by=colour",
        "/api/v1/stats?group=state",
    ];
    for path in queries {
        server.get(path).await.error(400, "invalid_query");
    }
    server
        .post("/api/v1/tasks/not-a-uuid/retry", &json!(null))
        .await
        .error(400, "invalid_path");
    server.get("/api/v1/nowhere").await.error(404, "not_found");
    server
        .send(server.request(Method::PUT, "/api/v1/tasks", Some(&server.admin)))
        .await
        .error(405, "method_not_allowed");

    // Nothing changed.
    assert_eq!(env.total().await, before);
    let queues = server.get("/api/v1/queues").await.ok(200);
    assert!(
        queues["queues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["paused"] == false && q["name"] != " "),
        "{queues}"
    );
    server.stop().await;
}

async fn the_openapi_document_lists_exactly_the_routes_the_server_answers(engine: Engine) {
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;
    let doc = document(&server).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert!(
        doc["components"]["securitySchemes"]["bearer_token"]["scheme"] == "bearer",
        "{}",
        doc["components"]
    );
    // Request bodies list as required only what the server requires: a
    // body without an optional field is accepted, which a client
    // generated from the document (or a fuzzer) must not be told is
    // invalid. `args` once slipped in for schedules.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["NewSchedule"]["required"],
        json!(["name", "actor", "cron"])
    );
    assert!(
        schemas["ScheduleChanges"]["required"].is_null(),
        "{}",
        schemas["ScheduleChanges"]
    );
    assert_eq!(schemas["TaskRequest"]["required"], json!(["actor"]));

    // The document's routes are exactly the API's.
    let methods = ["get", "post", "put", "patch", "delete"];
    let mut listed = BTreeSet::new();
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in methods {
            let Some(operation) = item.get(method) else {
                continue;
            };
            listed.insert((method.to_ascii_uppercase(), path.clone()));
            let id = operation["operationId"].as_str().unwrap();
            assert!(
                operation_ids.insert(id.to_owned()),
                "operationId {id} twice"
            );
            // Every route but the document needs a token, says so
            // itself (generated clients read it per operation) and says it
            // may refuse one.
            if path == "/api/v1/openapi.json" {
                assert_eq!(operation["security"], json!([]), "{method} {path}");
                assert!(operation["responses"]["401"].is_null(), "{method} {path}");
            } else {
                assert_eq!(
                    operation["security"],
                    json!([{"bearer_token": []}]),
                    "{method} {path} does not require the token"
                );
                assert!(
                    !operation["responses"]["401"].is_null(),
                    "{method} {path} documents no 401"
                );
            }
            if method != "get" {
                assert!(
                    !operation["responses"]["403"].is_null(),
                    "{method} {path} documents no 403"
                );
            }
            // Any route may refuse a query parameter, and fail with the
            // database (checking the token asks it); a route taking a
            // body may find it too large or not JSON.
            let mut statuses = vec!["400", "500", "503"];
            if !operation["requestBody"].is_null() {
                statuses.extend(["413", "415"]);
            }
            for status in statuses {
                assert_eq!(
                    operation["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} documents no {status} with an error body"
                );
            }
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(listed, expected);

    // Every documented path answers its documented methods and refuses the
    // others as not allowed (`probe` is a schedule and a token).
    add_probe(&env);
    env.ok(&["tokens", "create", "--name", "probe", "--scope", "read"]);
    let id = server.enqueue(json!({"actor": "noop"}), 201).await;

    // An unknown query parameter on any route, and a body not sent as
    // JSON: the documented refusal, and nothing changed.
    server.wait_for_state(&id[0], "succeeded").await;
    let before = (snapshot(&server).await, env.counts().await);
    for (method, path) in &listed {
        let method: Method = method.parse().unwrap();
        let concrete = concrete(path, &id[0]);
        let answer = server
            .send(
                server
                    .request(
                        method.clone(),
                        &format!("{concrete}?colour=red"),
                        Some(&server.admin),
                    )
                    .json(&json!({"probe": true})),
            )
            .await;
        answer.error(400, "invalid_query");
        let message = answer.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("`colour`"), "{method} {path}: {message}");
        check_answer(&doc, method.as_str(), path, 400, &answer.body);
        let lower = method.as_str().to_ascii_lowercase();
        if !doc["paths"][path][&lower]["requestBody"].is_null() {
            let answer = server
                .send(
                    server
                        .request(method.clone(), &concrete, Some(&server.admin))
                        .body(r#"{"probe": true}"#),
                )
                .await;
            answer.error(415, "unsupported_media_type");
            check_answer(&doc, method.as_str(), path, 415, &answer.body);
        }
    }
    assert_eq!((snapshot(&server).await, env.counts().await), before);
    for path in doc["paths"].as_object().unwrap().keys() {
        let concrete = concrete(path, &id[0]);
        for method in methods {
            let documented = listed.contains(&(method.to_ascii_uppercase(), path.clone()));
            let request = server
                .request(
                    method.to_ascii_uppercase().parse().unwrap(),
                    &concrete,
                    Some(&server.admin),
                )
                // An enqueue that is refused: the probe writes no task.
                .json(&json!({"probe": true}));
            let answer = server.send(request).await;
            if documented {
                assert_ne!(answer.status, 405, "{method} {path}: {}", answer.body);
                // A 404 may say the thing named is not there (no agent
                // of that id is connected), never that the route is not.
                assert_ne!(
                    answer.body["error"]["code"], "not_found",
                    "{method} {path}: {}",
                    answer.body
                );
                let status = answer.status.as_u16();
                // What it answered is documented, and in the documented shape.
                check_answer(&doc, method, path, status, &answer.body);
            } else {
                answer.error(405, "method_not_allowed");
            }
        }
    }
    // Paths the document does not list are not there.
    for path in [
        "/api/v1",
        "/api/v1/task",
        "/api/v1/tasks/x/logs",
        "/api/v2/tasks",
    ] {
        server.get(path).await.error(404, "not_found");
    }
    server.stop().await;
}

impl Server {
    async fn delete(&self, path: &str) -> Answer {
        self.send(self.request(Method::DELETE, path, Some(&self.admin)))
            .await
    }

    /// `method` on `path` with a JSON body, as admin.
    async fn with_body(&self, method: Method, path: &str, body: &Value) -> Answer {
        self.send(self.request(method, path, Some(&self.admin)).json(body))
            .await
    }
}

async fn delete_by_filter_and_flush_count_first_then_remove_only_what_matches(engine: Engine) {
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;
    let doc = document(&server).await;
    // `held` is not served: its tasks wait. `api` is.
    server
        .enqueue(
            json!({"tasks": [
                {"actor": "noop", "queue": "held"},
                {"actor": "noop", "queue": "held"},
                {"actor": "noop", "queue": "held"},
                {"actor": "custom", "any_actor": true, "queue": "held"},
                {"actor": "noop", "queue": "held", "run_at": "2100-01-01T00:00:00Z"},
            ]}),
            201,
        )
        .await;
    let done = server
        .enqueue(
            json!({"tasks": [{"actor": "noop", "queue": "api"}, {"actor": "noop", "queue": "api"}]}),
            201,
        )
        .await;
    for id in &done {
        server.wait_for_state(id, "succeeded").await;
    }
    let total = env.total().await;

    // Bad input: a 4xx with a JSON error, and nothing deleted.
    let refusals = [
        ("/api/v1/tasks?actor=noop", 400, "confirmation_required"),
        (
            "/api/v1/tasks?actor=noop&confirm=false",
            400,
            "confirmation_required",
        ),
        (
            "/api/v1/tasks?actor=noop&confirm=true&dry_run=true",
            400,
            "invalid_query",
        ),
        ("/api/v1/tasks?confirm=true", 400, "invalid_input"),
        ("/api/v1/tasks?dry_run=true", 400, "invalid_input"),
        (
            "/api/v1/tasks?state=queued,running&confirm=true",
            400,
            "invalid_input",
        ),
        ("/api/v1/tasks?actor=&confirm=true", 400, "invalid_input"),
        (
            "/api/v1/tasks?state=done&confirm=true",
            400,
            "invalid_query",
        ),
        (
            "/api/v1/tasks?older_than=soon&confirm=true",
            400,
            "invalid_query",
        ),
        ("/api/v1/tasks?actor=noop&confirm=yes", 400, "invalid_query"),
        (
            "/api/v1/tasks?older_than=7000y&dry_run=true",
            400,
            "invalid_input",
        ),
        (
            "/api/v1/tasks?actor=noop&colour=red&confirm=true",
            400,
            "invalid_query",
        ),
    ];
    for (path, status, code) in refusals {
        let answer = server.delete(path).await;
        answer.error(status, code);
        check_answer(&doc, "DELETE", "/api/v1/tasks", status, &answer.body);
    }
    assert_eq!(env.total().await, total);

    // The dry run counts, by state; the deletion then removes just that.
    let path = "/api/v1/tasks?actor=noop&state=queued&queue=held";
    let dry = server.delete(&format!("{path}&dry_run=true")).await.ok(200);
    check_answer(&doc, "DELETE", "/api/v1/tasks", 200, &dry);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["matched"]["queued"], 3);
    assert_eq!(dry["matched_total"], 3);
    assert_eq!(dry["deleted"], 0);
    assert_eq!(env.total().await, total);
    // Confirmed: started in the background (202), polled to its end.
    let started = server.delete(&format!("{path}&confirm=true")).await.ok(202);
    check_answer(&doc, "DELETE", "/api/v1/tasks", 202, &started);
    assert_eq!(started["dry_run"], false);
    assert_eq!(started["matched_total"], 3);
    assert_eq!(started["operation"]["action"], "delete");
    let deleted = ended(&server, &doc, &started).await;
    assert_eq!(deleted["state"], "finished", "{deleted}");
    assert_eq!(deleted["done"], 3);
    assert_eq!(deleted["matched"], 3);
    assert_eq!(deleted["started_by"], "admin");
    let counts = env.counts().await;
    assert_eq!(counts.get("queued"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("scheduled"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("succeeded"), Some(&2), "{counts:?}");
    // By age: finished just now is not an hour old.
    let young = server
        .delete("/api/v1/tasks?state=succeeded,failed,cancelled&older_than=1h&confirm=true")
        .await
        .ok(202);
    assert_eq!(ended(&server, &doc, &young).await["done"], 0);
    let old = server
        .delete("/api/v1/tasks?state=succeeded&older_than=0s&confirm=true")
        .await
        .ok(202);
    assert_eq!(ended(&server, &doc, &old).await["done"], 2);
    assert_eq!(env.total().await, 2);
    // The operations, newest first; a finished one cannot be stopped, an
    // unknown one is not found, a read token may not stop one.
    let listed = server.get("/api/v1/operations").await.ok(200);
    check_answer(&doc, "GET", "/api/v1/operations", 200, &listed);
    assert_eq!(listed["operations"].as_array().map(Vec::len), Some(3));
    assert_eq!(listed["operations"][0]["id"], old["operation"]["id"]);
    let id = old["operation"]["id"].as_str().unwrap();
    let answer = server
        .post(&format!("/api/v1/operations/{id}/cancel"), &json!({}))
        .await;
    check_answer(
        &doc,
        "POST",
        "/api/v1/operations/{id}/cancel",
        409,
        &answer.body,
    );
    answer.error(409, "invalid_state");
    let unknown = format!("/api/v1/operations/{}", uuid::Uuid::now_v7());
    let answer = server.get(&unknown).await;
    check_answer(&doc, "GET", "/api/v1/operations/{id}", 404, &answer.body);
    answer.error(404, "operation_not_found");
    server
        .get("/api/v1/operations/not-a-uuid")
        .await
        .error(400, "invalid_path");

    // Flush: two tasks running on `api`, then the queue paused so that
    // nothing more starts, and tasks waiting behind them.
    let running = server
        .enqueue(
            json!({"tasks": [
                {"actor": "sleep", "args": {"ms": 60000}, "queue": "api"},
                {"actor": "sleep", "args": {"ms": 60000}, "queue": "api"},
            ]}),
            201,
        )
        .await;
    for id in &running {
        server.wait_for_state(id, "running").await;
    }
    server
        .post("/api/v1/queues/api/pause", &json!(null))
        .await
        .ok(200);
    server
        .enqueue(
            json!({"tasks": [{"actor": "noop", "queue": "api"}, {"actor": "noop", "queue": "api"},
                             {"actor": "noop", "queue": "api", "run_at": "2100-01-01T00:00:00Z"}]}),
            201,
        )
        .await;
    let total = env.total().await;
    let flush = "/api/v1/queues/api/flush";
    for (body, status, code) in [
        ("{}", 400, "confirmation_required"),
        (r#"{"confirm": false}"#, 400, "confirmation_required"),
        (r#"{"confirm": true, "dry_run": true}"#, 400, "invalid_body"),
        (r#"{"confirm": "yes"}"#, 400, "invalid_body"),
        (r#"{"confirm": true, "colour": 1}"#, 400, "invalid_body"),
        (r#"{"confirm": true"#, 400, "invalid_json"),
    ] {
        let answer = server.post_raw(flush, body).await;
        answer.error(status, code);
        check_answer(
            &doc,
            "POST",
            "/api/v1/queues/{name}/flush",
            status,
            &answer.body,
        );
    }
    server
        .post("/api/v1/queues/%20/flush", &json!({"confirm": true}))
        .await
        .error(400, "invalid_input");
    server
        .send(
            server
                .request(Method::POST, flush, Some(&server.admin))
                .body(r#"{"confirm": true}"#),
        )
        .await
        .error(415, "unsupported_media_type");
    assert_eq!(env.total().await, total);
    assert_eq!(env.count("running").await, 2);

    let dry = server.post(flush, &json!({"dry_run": true})).await.ok(200);
    check_answer(&doc, "POST", "/api/v1/queues/{name}/flush", 200, &dry);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["matched"]["queued"], 2);
    assert_eq!(dry["matched"]["scheduled"], 1);
    assert_eq!(dry["matched"]["running"], 2);
    assert_eq!(
        (dry["deleted"].clone(), dry["signalled"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(env.total().await, total);
    let flushed = server.post(flush, &json!({"confirm": true})).await.ok(200);
    check_answer(&doc, "POST", "/api/v1/queues/{name}/flush", 200, &flushed);
    assert_eq!(flushed["name"], "api");
    assert_eq!(flushed["deleted"], 3);
    assert_eq!(flushed["signalled"], 2);
    for id in &running {
        server.wait_for_state(id, "cancelled").await;
    }
    // The other queue's tasks are still there.
    let counts = env.counts().await;
    assert_eq!(counts.get("queued"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("scheduled"), Some(&1), "{counts:?}");
    assert_eq!(env.total().await, 4);
    server.stop().await;
}

/// A command that must fail with one line on stderr naming `expected`,
/// and print nothing on stdout.
fn refused(env: &Env, args: &[&str], expected: &str) {
    let out = env.run(args);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
}

async fn token_commands_refuse_bad_input_with_one_line(engine: Engine) {
    let env = Env::new(engine).await;
    let out = env.run(&["tokens", "create", "--name", "ci", "--scope", "read"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secret = text(&out.stdout);
    assert_eq!(secret.lines().count(), 1, "{secret}");
    assert!(secret.starts_with("ls_"), "{secret}");
    // The warning goes to stderr, so that `$(longshore tokens create …)` is the secret alone.
    assert!(
        text(&out.stderr).contains("shown this once only"),
        "{}",
        text(&out.stderr)
    );
    refused(
        &env,
        &["tokens", "create", "--name", "ci", "--scope", "admin"],
        "an API token named `ci` exists already",
    );
    refused(
        &env,
        &["tokens", "create", "--name", "c i", "--scope", "admin"],
        "token name `c i` contains ` `",
    );
    let out = env.run(&["tokens", "create", "--name", "x", "--scope", "write"]);
    assert!(!out.status.success() && out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("possible values: read, admin"),
        "{}",
        text(&out.stderr)
    );
    refused(
        &env,
        &["tokens", "revoke", "nobody"],
        "no API token named `nobody`",
    );
    let table = env.ok(&["tokens", "list"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(!table.contains(secret.trim()), "{table}");
    // Only the secret's SHA-256 is stored.
    let stored = env
        .observer()
        .await
        .i64("SELECT count(*) FROM longshore_tokens WHERE length(secret_hash) = 64")
        .await;
    assert_eq!(stored, 1);
}

async fn the_task_list_takes_every_filter_as_a_query_parameter(engine: Engine) {
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;
    let doc = document(&server).await;
    let first = server
        .enqueue(
            json!({"actor": "noop", "related": {"kind": "user", "id": "1"}}),
            201,
        )
        .await;
    let second = server
        .enqueue(
            json!({"actor": "noop", "related": {"kind": "user", "id": "2"}}),
            201,
        )
        .await;
    let alone = server.enqueue(json!({"actor": "noop"}), 201).await;
    let later = server
        .enqueue(
            json!({"actor": "noop", "run_at": "2999-01-01T00:00:00Z"}),
            201,
        )
        .await;
    let ids = |path: &str| {
        let path = path.to_owned();
        let server = &server;
        let doc = &doc;
        async move {
            let page = server.get(&path).await.ok(200);
            check_answer(doc, "GET", "/api/v1/tasks", 200, &page);
            let mut ids: Vec<String> = page["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            ids
        }
    };
    let sorted = |groups: &[&Vec<String>]| {
        let mut all: Vec<String> = groups.iter().flat_map(|g| g.iter().cloned()).collect();
        all.sort();
        all
    };
    assert_eq!(
        ids("/api/v1/tasks?related=user").await,
        sorted(&[&first, &second])
    );
    assert_eq!(
        ids("/api/v1/tasks?related=user:2").await,
        sorted(&[&second])
    );
    assert_eq!(
        ids("/api/v1/tasks?standalone=true").await,
        sorted(&[&alone, &later])
    );
    assert_eq!(
        ids("/api/v1/tasks?status=scheduled").await,
        sorted(&[&later])
    );
    assert_eq!(
        // The server's worker may have run it already.
        ids("/api/v1/tasks?status=waiting_to_run,running,successful&standalone=true").await,
        sorted(&[&alone])
    );
    assert!(ids("/api/v1/tasks?status=warning,error").await.is_empty());
    let kept = server
        .get("/api/v1/tasks?exclude_successful=true")
        .await
        .ok(200);
    let kept = kept["tasks"].as_array().unwrap();
    assert!(
        kept.iter().any(|t| t["id"] == later[0].as_str()),
        "{kept:?}"
    );
    assert!(kept.iter().all(|t| t["status"] != "successful"), "{kept:?}");
    assert_eq!(ids("/api/v1/tasks?created_after=1h").await.len(), 4);
    assert!(ids("/api/v1/tasks?created_before=1h").await.is_empty());
    assert_eq!(
        ids("/api/v1/tasks?created_after=2000-01-01T00:00:00%2B02:00&related=user:1").await,
        sorted(&[&first])
    );
    // Unfinished tasks never match a finish time (the others may have
    // run by now).
    assert!(
        !ids("/api/v1/tasks?finished_after=2000-01-01T00:00:00Z")
            .await
            .contains(&later[0])
    );
    assert!(
        ids("/api/v1/tasks?finished_before=2000-01-01T00:00:00Z")
            .await
            .is_empty()
    );
    // Pages of a filtered list hold each match once.
    let page = server
        .get("/api/v1/tasks?related=user&limit=1")
        .await
        .ok(200);
    let before = page["next_before"].as_str().unwrap().to_owned();
    let next = server
        .get(&format!(
            "/api/v1/tasks?related=user&limit=1&before={before}"
        ))
        .await
        .ok(200);
    assert_ne!(page["tasks"][0]["id"], next["tasks"][0]["id"]);
    assert_eq!(next["next_before"], Value::Null);
    server.stop().await;
}

/// The user schedules (the built-in ones move on their own) and the
/// runtime settings, as the API lists them.
async fn snapshot(server: &Server) -> (Vec<Value>, Value) {
    let schedules = server.get("/api/v1/schedules").await.ok(200);
    let users = schedules["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["builtin"] == false)
        .cloned()
        .collect();
    (users, server.get("/api/v1/settings").await.ok(200))
}

async fn schedules_and_settings_change_through_the_api(engine: Engine) {
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;
    let doc = document(&server).await;

    // Create: every field, then a paused one with an actor of one's own.
    let created = server
        .post(
            "/api/v1/schedules",
            &json!({
                "name": "nightly", "actor": "sleep", "args": {"ms": 1},
                "cron": "0 3 * * *", "time_zone": "Europe/Paris", "queue": "held",
                "priority": 4, "max_attempts": 2, "time_limit_ms": 9000,
                "related": {"kind": "user", "id": "7"}, "overlap": "skip",
            }),
        )
        .await
        .ok(201);
    check_answer(&doc, "POST", "/api/v1/schedules", 201, &created);
    assert_eq!(created["time_zone"], "Europe/Paris");
    assert_eq!(created["overlap"], "skip");
    assert_eq!(created["paused"], false);
    assert!(created["next_run_at"].is_string(), "{created}");
    let custom = server
        .post(
            "/api/v1/schedules",
            &json!({"name": "custom", "actor": "mine", "any_actor": true,
                    "cron": "@hourly", "paused": true}),
        )
        .await
        .ok(201);
    assert_eq!(custom["paused"], true);
    assert!(custom["next_run_at"].is_null(), "{custom}");
    // The server's retry.max_attempts, as the CLI's.
    let by_cli = env.json(&["schedules", "show", "custom", "--json"]);
    assert_eq!(by_cli["schedule"]["max_attempts"], custom["max_attempts"]);

    // Show.
    let shown = server.get("/api/v1/schedules/nightly").await.ok(200);
    check_answer(&doc, "GET", "/api/v1/schedules/{name}", 200, &shown);
    assert_eq!(shown["schedule"], created);
    assert_eq!(shown["recent_runs"], json!([]));

    // Change: only the fields given; null clears.
    let changed = server
        .with_body(
            Method::PATCH,
            "/api/v1/schedules/nightly",
            &json!({"cron": "30 4 * * *", "priority": 2, "related": null}),
        )
        .await
        .ok(200);
    check_answer(&doc, "PATCH", "/api/v1/schedules/{name}", 200, &changed);
    assert_eq!(changed["cron"], "30 4 * * *");
    assert_eq!(changed["priority"], 2);
    assert!(changed["related"].is_null());
    assert_eq!(changed["time_zone"], "Europe/Paris");
    assert_eq!(changed["time_limit_ms"], 9000);
    // A built-in schedule's timing.
    let builtin = server
        .with_body(
            Method::PATCH,
            "/api/v1/schedules/longshore.purge",
            &json!({"cron": "*/2 * * * *"}),
        )
        .await
        .ok(200);
    assert_eq!(builtin["cron"], "*/2 * * * *");

    // Pause and resume.
    let paused = server
        .post("/api/v1/schedules/nightly/pause", &json!(null))
        .await
        .ok(200);
    check_answer(&doc, "POST", "/api/v1/schedules/{name}/pause", 200, &paused);
    assert_eq!(paused["paused"], true);

    // Run by hand while paused (so that the server's scheduler, which fires
    // a resumed schedule at once, cannot run it first; queue `held` is not
    // served): enqueued, then skipped behind it (policy skip).
    let pause_held = server.post("/api/v1/queues/held/pause", &json!(null)).await;
    pause_held.ok(200);
    let run = server
        .post("/api/v1/schedules/nightly/run", &json!(null))
        .await
        .ok(200);
    check_answer(&doc, "POST", "/api/v1/schedules/{name}/run", 200, &run);
    assert_eq!(run["outcome"], "enqueued", "{run}");
    let task = run["task"].as_str().unwrap().to_owned();
    let again = server
        .post("/api/v1/schedules/nightly/run", &json!(null))
        .await
        .ok(200);
    check_answer(&doc, "POST", "/api/v1/schedules/{name}/run", 200, &again);
    assert_eq!(again, json!({"outcome": "skipped", "behind": task}));
    let resumed = server
        .post("/api/v1/schedules/nightly/resume", &json!(null))
        .await
        .ok(200);
    check_answer(
        &doc,
        "POST",
        "/api/v1/schedules/{name}/resume",
        200,
        &resumed,
    );
    assert_eq!(resumed["paused"], false);
    let shown = server.get("/api/v1/schedules/nightly").await.ok(200);
    check_answer(&doc, "GET", "/api/v1/schedules/{name}", 200, &shown);
    assert_eq!(shown["recent_runs"][0]["id"], task.as_str());
    assert_eq!(shown["recent_runs"][0]["schedule"], "nightly");

    // Delete, with its confirmation; its task stays.
    let deleted = server
        .delete("/api/v1/schedules/nightly?confirm=true")
        .await
        .ok(200);
    check_answer(&doc, "DELETE", "/api/v1/schedules/{name}", 200, &deleted);
    assert_eq!(deleted, json!({"name": "nightly", "deleted": true}));
    server
        .get("/api/v1/schedules/nightly")
        .await
        .error(404, "schedule_not_found");
    server.get(&format!("/api/v1/tasks/{task}")).await.ok(200);

    // Settings: set, list, lift.
    let set = server
        .with_body(
            Method::PUT,
            "/api/v1/settings/max_running",
            &json!({"value": 5}),
        )
        .await
        .ok(200);
    check_answer(&doc, "PUT", "/api/v1/settings/{key}", 200, &set);
    assert_eq!(set, json!({"key": "max_running", "value": 5}));
    let set = server
        .with_body(
            Method::PUT,
            "/api/v1/settings/queues.mail.max_running",
            &json!({"value": 2}),
        )
        .await
        .ok(200);
    assert_eq!(set, json!({"key": "queues.mail.max_running", "value": 2}));
    let listed = server.get("/api/v1/settings").await.ok(200);
    check_answer(&doc, "GET", "/api/v1/settings", 200, &listed);
    assert_eq!(listed["settings"]["max_running"], 5);
    assert_eq!(listed["settings"]["queues.mail.max_running"], 2);
    assert_eq!(env.ok(&["settings", "get", "max_running"]).trim(), "5");
    let lifted = server
        .with_body(
            Method::PUT,
            "/api/v1/settings/max_running",
            &json!({"value": null}),
        )
        .await
        .ok(200);
    assert_eq!(lifted, json!({"key": "max_running", "value": null}));
    assert_eq!(env.ok(&["settings", "get", "max_running"]).trim(), "none");
    server.stop().await;
}

async fn bad_schedules_and_settings_are_refused_and_change_nothing(engine: Engine) {
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;
    server
        .post(
            "/api/v1/schedules",
            &json!({"name": "nightly", "actor": "noop", "cron": "0 3 * * *"}),
        )
        .await
        .ok(201);
    env.ok(&["settings", "set", "max_running", "3"]);
    let before = snapshot(&server).await;
    let tasks = env.total().await;

    let new = |extra: Value| {
        let mut body = json!({"name": "fresh", "actor": "noop", "cron": "@daily"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases: Vec<(Method, &str, Value, u16, &str, &str)> = vec![
        (
            Method::POST,
            "/api/v1/schedules",
            new(json!({"cron": "not cron"})),
            400,
            "invalid_input",
            "invalid cron expression `not cron`",
        ),
        (
            Method::POST,
            "/api/v1/schedules",
            new(json!({"time_zone": "Mars/Olympus"})),
            400,
            "invalid_input",
            "unknown time zone `Mars/Olympus`",
        ),
        (
            Method::POST,
            "/api/v1/schedules",
            new(json!({"actor": "mine"})),
            400,
            "invalid_input",
            "\"any_actor\": true",
        ),
        (
            Method::POST,
            "/api/v1/schedules",
            new(json!({"actor": "sleep", "args": {"ms": "x"}})),
            400,
            "invalid_input",
            "",
        ),
        (
            Method::POST,
            "/api/v1/schedules",
            new(json!({"name": "nightly"})),
            409,
            "conflict",
            "nightly",
        ),
        (
            Method::POST,
            "/api/v1/schedules",
            new(json!({"colour": "red"})),
            400,
            "invalid_body",
            "colour",
        ),
        (
            Method::POST,
            "/api/v1/schedules",
            new(json!({"name": "longshore.mine"})),
            400,
            "invalid_input",
            "reserved",
        ),
        (
            Method::POST,
            "/api/v1/schedules",
            new(json!({"args": [1]})),
            400,
            "invalid_input",
            "JSON object",
        ),
        (
            Method::POST,
            "/api/v1/schedules",
            new(json!({"overlap": "sometimes"})),
            400,
            "invalid_body",
            "",
        ),
        (
            Method::POST,
            "/api/v1/schedules",
            json!({"name": "fresh", "actor": "noop"}),
            400,
            "invalid_body",
            "cron",
        ),
        (
            Method::PATCH,
            "/api/v1/schedules/nightly",
            json!({"cron": "61 * * * *"}),
            400,
            "invalid_input",
            "invalid cron expression",
        ),
        (
            Method::PATCH,
            "/api/v1/schedules/nightly",
            json!({"time_zone": "Nowhere/Else"}),
            400,
            "invalid_input",
            "unknown time zone",
        ),
        (
            Method::PATCH,
            "/api/v1/schedules/nightly",
            json!({"actor": "mine"}),
            400,
            "invalid_input",
            "unknown actor",
        ),
        (
            Method::PATCH,
            "/api/v1/schedules/nightly",
            json!({}),
            400,
            "invalid_input",
            "nothing to change",
        ),
        (
            Method::PATCH,
            "/api/v1/schedules/nightly",
            json!({"colour": "red"}),
            400,
            "invalid_body",
            "colour",
        ),
        (
            Method::PATCH,
            "/api/v1/schedules/longshore.purge",
            json!({"queue": "other"}),
            400,
            "invalid_input",
            "built-in",
        ),
        (
            Method::PATCH,
            "/api/v1/schedules/missing",
            json!({"cron": "@daily"}),
            404,
            "schedule_not_found",
            "missing",
        ),
        (
            Method::POST,
            "/api/v1/schedules/missing/pause",
            json!(null),
            404,
            "schedule_not_found",
            "missing",
        ),
        (
            Method::POST,
            "/api/v1/schedules/missing/run",
            json!(null),
            404,
            "schedule_not_found",
            "missing",
        ),
        (
            Method::DELETE,
            "/api/v1/schedules/longshore.purge?confirm=true",
            json!(null),
            400,
            "invalid_input",
            "built-in",
        ),
        (
            Method::DELETE,
            "/api/v1/schedules/nightly",
            json!(null),
            400,
            "confirmation_required",
            "confirm=true",
        ),
        (
            Method::DELETE,
            "/api/v1/schedules/nightly?confirm=maybe",
            json!(null),
            400,
            "invalid_query",
            "",
        ),
        (
            Method::DELETE,
            "/api/v1/schedules/missing?confirm=true",
            json!(null),
            404,
            "schedule_not_found",
            "missing",
        ),
        (
            Method::PUT,
            "/api/v1/settings/worker.concurrency",
            json!({"value": 5}),
            400,
            "invalid_input",
            "unknown runtime setting",
        ),
        (
            Method::PUT,
            "/api/v1/settings/queues..max_running",
            json!({"value": 5}),
            400,
            "invalid_input",
            "names no queue",
        ),
        (
            Method::PUT,
            "/api/v1/settings/max_running",
            json!({"value": 0}),
            400,
            "invalid_input",
            "max_running",
        ),
        (
            Method::PUT,
            "/api/v1/settings/max_running",
            json!({"value": -2}),
            400,
            "invalid_input",
            "max_running",
        ),
        (
            Method::PUT,
            "/api/v1/settings/max_running",
            json!({"value": "many"}),
            400,
            "invalid_body",
            "",
        ),
        (
            Method::PUT,
            "/api/v1/settings/max_running",
            json!({"value": 99_999_999_999_i64}),
            400,
            "invalid_body",
            "",
        ),
        (
            Method::PUT,
            "/api/v1/settings/max_running",
            json!({}),
            400,
            "invalid_body",
            "value",
        ),
        (
            Method::PUT,
            "/api/v1/settings/max_running",
            json!({"value": 4, "colour": 1}),
            400,
            "invalid_body",
            "colour",
        ),
    ];
    for (method, path, body, status, code, words) in cases {
        let answer = server.with_body(method.clone(), path, &body).await;
        answer.error(status, code);
        let message = answer.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{method} {path} {body}: {message}");
    }
    assert_eq!(snapshot(&server).await, before);
    assert_eq!(env.total().await, tasks);

    // The same checks as the CLI's, in the same words.
    for (args, body) in [
        (
            &[
                "schedules",
                "add",
                "fresh",
                "--actor",
                "noop",
                "--cron",
                "not cron",
            ][..],
            new(json!({"cron": "not cron"})),
        ),
        (
            &[
                "schedules",
                "add",
                "fresh",
                "--actor",
                "noop",
                "--cron",
                "@daily",
                "--tz",
                "Mars/Olympus",
            ],
            new(json!({"time_zone": "Mars/Olympus"})),
        ),
    ] {
        let answer = server.post("/api/v1/schedules", &body).await;
        let message = answer.body["error"]["message"].as_str().unwrap().to_owned();
        refused(&env, args, &message);
    }
    server.stop().await;
}

impl Server {
    /// Starts `longshore worker` on queues `default` and `api` with `args`
    /// (an `--http` address among them); the server at its API address
    /// and its start line.
    async fn start_worker(env: &Env, args: &[&str]) -> (Server, String) {
        let mut all = vec!["worker", "--queues", "default,api"];
        all.extend(args);
        let (server, line) = Server::spawn(env, &all);
        let addr = line
            .strip_prefix("longshore worker: API, metrics and health checks on http://")
            .or_else(|| line.strip_prefix("longshore worker: API on http://"))
            .map(|rest| rest.split(',').next().unwrap_or_default())
            .unwrap_or_else(|| panic!("unexpected start line: {line}"))
            .to_owned();
        (server.at(&addr), line)
    }

    /// GET `path` without a token, as monitoring asks: the status, the
    /// content type and the text.
    async fn probe(&self, path: &str) -> (u16, String, String) {
        let response = self.request(Method::GET, path, None).send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = content_type(response.headers());
        (status, content_type, response.text().await.unwrap())
    }
}

/// The token list as (name, scope, revoked) triples: what a refused
/// request must leave as it was (a use moves `last_used_at`).
async fn token_list(server: &Server) -> Vec<(String, String, bool)> {
    let list = server.get("/api/v1/tokens").await.ok(200);
    list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["scope"].as_str().unwrap().to_owned(),
                !t["revoked_at"].is_null(),
            )
        })
        .collect()
}

async fn tokens_are_created_listed_and_revoked_through_the_api_by_admins_only(engine: Engine) {
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;
    let doc = document(&server).await;

    // Create: the secret once, in the answer; it authenticates at once.
    let created = server
        .post("/api/v1/tokens", &json!({"name": "ci", "scope": "read"}))
        .await
        .ok(201);
    check_answer(&doc, "POST", "/api/v1/tokens", 201, &created);
    assert_eq!(created["name"], "ci");
    assert_eq!(created["scope"], "read");
    assert_eq!(created["active"], true);
    assert!(created["revoked_at"].is_null(), "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ls_") && secret.len() == 46, "{secret}");
    let answer = server
        .send(server.request(Method::GET, "/api/v1/stats", Some(&secret)))
        .await;
    answer.ok(200);
    let admin = server
        .post("/api/v1/tokens", &json!({"name": "ops", "scope": "admin"}))
        .await
        .ok(201);
    let admin_secret = admin["secret"].as_str().unwrap().to_owned();
    // An admin token made through the API may make more.
    let answer = server
        .send(
            server
                .request(Method::POST, "/api/v1/tokens", Some(&admin_secret))
                .json(&json!({"name": "ops.2", "scope": "read"})),
        )
        .await;
    assert_eq!(answer.ok(201)["scope"], "read");

    // List: every token, never a secret nor its hash; the CLI sees the same.
    let list = server.get("/api/v1/tokens").await.ok(200);
    check_answer(&doc, "GET", "/api/v1/tokens", 200, &list);
    assert_eq!(
        strings(&list["tokens"], "name"),
        vec!["admin", "ci", "ops", "ops.2", "viewer"]
    );
    let text = list.to_string();
    assert!(
        !text.contains(&secret) && !text.contains("ls_") && !text.contains("hash"),
        "{text}"
    );
    let listed = env.json(&["tokens", "list", "--json"]);
    assert_eq!(strings(&listed, "name"), strings(&list["tokens"], "name"));
    // Only the secrets' SHA-256 are stored.
    let hashed = env
        .observer()
        .await
        .i64("SELECT count(*) FROM longshore_tokens WHERE length(secret_hash) = 64")
        .await;
    assert_eq!(hashed, 5);

    // Refusals: no token (401), a read token (403) on every route, GET too;
    // a taken name (409), a bad scope or name (400), an unknown token
    // (404). Each changes nothing.
    let before = token_list(&server).await;
    let routes = [
        (Method::GET, "/api/v1/tokens", "/api/v1/tokens"),
        (Method::POST, "/api/v1/tokens", "/api/v1/tokens"),
        (
            Method::POST,
            "/api/v1/tokens/ci/revoke",
            "/api/v1/tokens/{name}/revoke",
        ),
    ];
    for (method, path, template) in &routes {
        let body = json!({"name": "sneaky", "scope": "admin"});
        let answer = server
            .send(server.request(method.clone(), path, None).json(&body))
            .await;
        answer.error(401, "unauthorized");
        for token in [&server.read, &secret] {
            let answer = server
                .send(
                    server
                        .request(method.clone(), path, Some(token))
                        .json(&body),
                )
                .await;
            answer.error(403, "forbidden");
            check_answer(&doc, method.as_str(), template, 403, &answer.body);
        }
    }
    let refusals: &[(Value, u16, &str)] = &[
        (json!({"name": "ci", "scope": "admin"}), 409, "conflict"),
        (json!({"name": "viewer", "scope": "read"}), 409, "conflict"),
        (json!({"name": "x", "scope": "write"}), 400, "invalid_body"),
        (json!({"name": "x"}), 400, "invalid_body"),
        (
            json!({"name": "x", "scope": "read", "secret": "ls_mine"}),
            400,
            "invalid_body",
        ),
        (
            json!({"name": "c i", "scope": "read"}),
            400,
            "invalid_input",
        ),
        (json!({"name": "", "scope": "read"}), 400, "invalid_input"),
    ];
    for (body, status, code) in refusals {
        let answer = server.post("/api/v1/tokens", body).await;
        answer.error(*status, code);
        check_answer(&doc, "POST", "/api/v1/tokens", *status, &answer.body);
    }
    let conflict = server
        .post("/api/v1/tokens", &json!({"name": "ci", "scope": "read"}))
        .await;
    let message = conflict.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("`ci` exists already"), "{message}");
    let unknown = server
        .post("/api/v1/tokens/nobody/revoke", &json!({}))
        .await;
    unknown.error(404, "token_not_found");
    check_answer(
        &doc,
        "POST",
        "/api/v1/tokens/{name}/revoke",
        404,
        &unknown.body,
    );
    assert_eq!(token_list(&server).await, before);

    // Revoke: the token as it is now; refused from that moment; a second
    // revocation keeps the first time.
    let revoked = server
        .post("/api/v1/tokens/ci/revoke", &json!({}))
        .await
        .ok(200);
    check_answer(&doc, "POST", "/api/v1/tokens/{name}/revoke", 200, &revoked);
    assert_eq!(revoked["name"], "ci");
    assert_eq!(revoked["active"], false);
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert!(revoked.get("secret").is_none(), "{revoked}");
    let answer = server
        .send(server.request(Method::GET, "/api/v1/stats", Some(&secret)))
        .await;
    answer.error(401, "unauthorized");
    let again = server
        .post("/api/v1/tokens/ci/revoke", &json!({}))
        .await
        .ok(200);
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);
    // Its name stays taken.
    server
        .post("/api/v1/tokens", &json!({"name": "ci", "scope": "read"}))
        .await
        .error(409, "conflict");
    let out = env.ok(&["tokens", "list"]);
    let ci = out.lines().find(|l| l.starts_with("ci ")).unwrap();
    assert!(!ci.trim_end().ends_with('-'), "{out}");
    server.stop().await;
}

async fn a_worker_with_http_serves_the_api_metrics_and_health_checks(engine: Engine) {
    let env = Env::new(engine).await;
    let (server, line) =
        Server::start_worker(&env, &["--http", "127.0.0.1:0", "--worker-id", "http-node"]).await;
    assert_eq!(
        line,
        format!(
            "longshore worker: API, metrics and health checks on {}",
            server.base
        )
    );
    let doc = document(&server).await;

    // The same API as serve's, with the same tokens.
    let stats = server.get("/api/v1/stats").await.ok(200);
    check_answer(&doc, "GET", "/api/v1/stats", 200, &stats);
    assert_eq!(stats["total"], 0);
    server
        .send(server.request(Method::GET, "/api/v1/stats", Some(&server.read)))
        .await
        .ok(200);
    let answer = server
        .send(server.request(Method::GET, "/api/v1/stats", None))
        .await;
    answer.error(401, "unauthorized");
    assert!(
        answer
            .headers
            .contains_key(reqwest::header::WWW_AUTHENTICATE)
    );
    server
        .send(
            server
                .request(Method::POST, "/api/v1/tasks", Some(&server.read))
                .json(&json!({"actor": "noop"})),
        )
        .await
        .error(403, "forbidden");

    // Enqueued through its API, run by its worker.
    let id = server.enqueue(json!({"actor": "noop"}), 201).await;
    server.wait_for_state(&id[0], "succeeded").await;
    let workers = server.get("/api/v1/workers").await.ok(200);
    check_answer(&doc, "GET", "/api/v1/workers", 200, &workers);
    assert_eq!(strings(&workers["workers"], "id"), vec!["http-node"]);

    // An unknown query parameter, on routes that take none: refused,
    // naming it, and nothing changed.
    let total = env.total().await;
    let answer = server.get("/api/v1/queues?colour=red").await;
    answer.error(400, "invalid_query");
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("`colour`"), "{message}");
    server
        .post("/api/v1/queues/default/pause?now=true", &json!(null))
        .await
        .error(400, "invalid_query");
    server
        .post("/api/v1/tasks?priority=9", &json!({"actor": "noop"}))
        .await
        .error(400, "invalid_query");
    assert_eq!(server.paused_queues().await, Vec::<String>::new());
    assert_eq!(env.total().await, total);

    // Metrics and health checks, without a token.
    server.assert_healthy().await;
    let (status, content_type, text) = server.probe("/metrics").await;
    assert_eq!(status, 200, "{text}");
    assert!(content_type.contains("openmetrics"), "{content_type}");
    assert!(
        text.contains("longshore_tasks_enqueued_total{actor=\"noop\",queue=\"default\"} 1"),
        "{text}"
    );
    server.stop().await;
}

async fn a_worker_refuses_one_address_for_http_and_metrics_and_serves_two(engine: Engine) {
    let env = Env::new(engine).await;
    let waiting = env.ok(&["enqueue", "noop"]).trim().to_owned();

    // The same address twice, from flags or settings: one line, before
    // anything is claimed.
    let by_flags = env
        .cmd()
        .args([
            "worker",
            "--http",
            "127.0.0.1:9",
            "--metrics-addr",
            "127.0.0.1:9",
        ])
        .output()
        .unwrap();
    let by_settings = env
        .cmd()
        .env("LONGSHORE_WORKER__HTTP_ADDR", "127.0.0.1:9")
        .env("LONGSHORE_WORKER__METRICS_ADDR", "127.0.0.1:9")
        .arg("worker")
        .output()
        .unwrap();
    for out in [by_flags, by_settings] {
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: --http and --metrics-addr")
                && err.contains("are both 127.0.0.1:9"),
            "{err}"
        );
    }
    assert_eq!(env.count("queued").await, 1);

    // Two addresses: the API on one, the probes on the other, each alone.
    let (server, line) = Server::start_worker(
        &env,
        &["--http", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"],
    )
    .await;
    let metrics = line
        .split_once(", metrics and health checks on http://")
        .map(|(_, addr)| addr.parse::<SocketAddr>().unwrap())
        .unwrap_or_else(|| panic!("unexpected start line: {line}"));
    assert!(
        line.starts_with("longshore worker: API on http://"),
        "{line}"
    );
    assert_ne!(metrics.port(), 0);
    assert_ne!(format!("http://{metrics}"), server.base);
    server.wait_for_state(&waiting, "succeeded").await;
    server.get("/api/v1/stats").await.ok(200);
    for path in ["/metrics", "/health/live", "/health/ready"] {
        server
            .send(server.request(Method::GET, path, None))
            .await
            .error(404, "not_found");
    }
    let probes = Server {
        base: format!("http://{metrics}"),
        ..server
    };
    probes.assert_healthy().await;
    let (status, _, text) = probes.probe("/metrics").await;
    assert_eq!(status, 200, "{text}");
    let (status, _, text) = probes.probe("/api/v1/stats").await;
    // Not a 401: no API there at all.
    assert_eq!(status, 404, "{text}");
    probes.stop().await;
}

/// Every change made through the API, and every change refused for its
/// token's scope, is in the audit trail with the token's name, the route,
/// the target and the status; only an admin reads the trail.
async fn changes_and_refused_changes_are_in_the_audit_trail_for_admins(engine: Engine) {
    let env = Env::new(engine).await;
    let server = Server::start(&env).await;
    let doc = document(&server).await;
    server
        .post("/api/v1/queues/mail/pause", &json!({}))
        .await
        .ok(200);
    server
        .send(server.request(
            Method::POST,
            "/api/v1/queues/mail/resume",
            Some(&server.read),
        ))
        .await
        .error(403, "forbidden");
    server
        .send(server.request(Method::GET, "/api/v1/audit", Some(&server.read)))
        .await
        .error(403, "forbidden");
    // Reading records nothing.
    server.get("/api/v1/queues").await.ok(200);

    let page = server.get("/api/v1/audit").await.ok(200);
    check_answer(&doc, "GET", "/api/v1/audit", 200, &page);
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{page}");
    assert_eq!(entries[0]["who"], "viewer");
    assert_eq!(entries[0]["action"], "POST /api/v1/queues/{name}/resume");
    assert_eq!(entries[0]["target"], "/api/v1/queues/mail/resume");
    assert_eq!(entries[0]["status"], 403);
    assert_eq!(entries[1]["who"], "admin");
    assert_eq!(entries[1]["via"], "api");
    assert_eq!(entries[1]["target"], "/api/v1/queues/mail/pause");
    assert_eq!(entries[1]["status"], 200);
    assert!(page["next_before"].is_null());
    // A page at a time.
    let first = server.get("/api/v1/audit?limit=1").await.ok(200);
    let next = first["next_before"].as_str().unwrap().to_owned();
    let second = server
        .get(&format!("/api/v1/audit?limit=1&before={next}"))
        .await
        .ok(200);
    assert_eq!(second["entries"][0]["who"], "admin");
    server
        .get("/api/v1/audit?limit=0")
        .await
        .error(400, "invalid_query");
    server.stop().await;
}
