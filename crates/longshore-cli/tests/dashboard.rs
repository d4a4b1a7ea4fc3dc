//! The dashboard in a real browser, on both engines: Debian's Chromium,
//! headless, through chromedriver, against `longshore serve` processes.
//! Each test also checks that no page logged a JavaScript error, and
//! leaves screenshots in `target/dashboard-screenshots/`.

// The shared support module unwraps what a test may unwrap.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Stdio;
use std::time::Duration;

use fantoccini::key::Key;
use longshore_testing::on_both_engines;
use support::browser::Browser;
use support::{Engine, Env, Proc};

/// `longshore serve` on a free port.
struct Node {
    proc: Proc,
    base: String,
    /// The agents' gateway.
    gateway: String,
}

impl Node {
    fn start(env: &Env) -> Node {
        let mut cmd = env.cmd();
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut proc = Proc::spawn(cmd);
        let line = proc.stdout_line(Duration::from_secs(30));
        let addr = line
            .strip_prefix("longshore serve: listening on http://")
            .and_then(|rest| rest.split_once(", using "))
            .map(|(addr, _)| addr.to_owned())
            .unwrap_or_else(|| panic!("unexpected start line: {line}"));
        let gateway = line
            .split("agents' gateway on ")
            .nth(1)
            .unwrap_or_else(|| panic!("no gateway in the start line: {line}"))
            .trim()
            .to_owned();
        Node {
            proc,
            base: format!("http://{addr}"),
            gateway,
        }
    }

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

fn token(env: &Env, name: &str, scope: &str) -> String {
    env.ok(&["tokens", "create", "--name", name, "--scope", scope])
        .trim()
        .to_owned()
}

/// Waits until the page at the browser's location, reloaded, shows `text`
/// in its `<main>`.
async fn until_shown(browser: &Browser, url: &str, text: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        browser.goto(url).await;
        let main = browser.main_text().await;
        if main.contains(text) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} never showed {text:?}; it shows:\n{main}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn no_console_errors(browser: &Browser, page: &str) {
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "{page}: JavaScript errors: {errors:?}");
}

/// Signing in, every page at a phone's width, signing out.
async fn signing_in_shows_every_page_and_signing_out_ends_the_session(engine: Engine) {
    let env = Env::new(engine).await;
    let admin = token(&env, "admin", "admin");
    env.ok(&["enqueue", "noop", "--count", "3"]);
    let node = Node::start(&env);
    let browser = Browser::start(375, 812).await;

    // Nothing is shown before signing in.
    browser.goto(&format!("{}/tasks", node.base)).await;
    assert!(
        browser.path().await.starts_with("/sign-in"),
        "{}",
        browser.path().await
    );
    browser.sign_in(&node.base, "ls_not-a-token").await;
    assert!(browser.main_text().await.contains("not a valid token"));
    no_console_errors(&browser, "sign-in").await;
    browser
        .screenshot(&format!("sign-in-{engine:?}").to_lowercase())
        .await;

    browser.sign_in(&node.base, &admin).await;
    assert_eq!(browser.path().await, "/");
    assert_eq!(browser.text("h1").await, "Overview");
    // The day's charts count what the node's worker ran, from its
    // maintenance fold.
    until_shown(&browser, &format!("{}/", node.base), "succeeded 3").await;
    let overview = browser.main_text().await;
    assert!(overview.contains("enqueued 3"), "{overview}");
    assert!(overview.contains("waiting 0"), "{overview}");
    let lines: serde_json::Value = browser
        .client
        .execute(
            "return document.querySelectorAll('.chart polyline').length",
            vec![],
        )
        .await
        .expect("count the lines");
    assert_eq!(
        lines,
        serde_json::json!(4),
        "three throughput lines and the backlog"
    );
    browser
        .client
        .execute("document.querySelector('.charts').scrollIntoView()", vec![])
        .await
        .expect("scroll to the charts");
    browser
        .screenshot(&format!("overview-charts-375-{engine:?}").to_lowercase())
        .await;
    for (path, heading, shot) in [
        ("/", "Overview", "overview"),
        ("/tasks?filtered=1", "Tasks", "tasks"),
        ("/schedules", "Schedules", "schedules"),
        ("/queues", "Queues", "queues"),
        ("/workers", "Workers", "workers"),
        ("/settings", "Settings", "settings"),
        ("/operations", "Bulk operations", "operations"),
        ("/audit", "Audit", "audit"),
    ] {
        browser.goto(&format!("{}{path}", node.base)).await;
        assert_eq!(browser.text("h1").await, heading, "{path}");
        no_console_errors(&browser, path).await;
        // A phone's width: nothing wider than the screen but the tables,
        // which scroll in their own box.
        let overflow: serde_json::Value = browser
            .client
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1",
                vec![],
            )
            .await
            .expect("measure the page");
        assert_eq!(
            overflow,
            serde_json::Value::Bool(true),
            "{path} is wider than the screen"
        );
        browser
            .screenshot(&format!("{shot}-375-{engine:?}").to_lowercase())
            .await;
        // The page and everything it loads: from this server only, and
        // under 100 KB before compression.
        let weight = browser
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 const urls = [location.href].concat(Array.from(
                     document.querySelectorAll('link[href], script[src], img[src]'),
                     (e) => e.href || e.src));
                 Promise.all(urls.map((u) => fetch(u).then((r) => r.arrayBuffer())))
                   .then((bodies) => done({
                     bytes: bodies.reduce((n, b) => n + b.byteLength, 0),
                     elsewhere: urls.filter((u) => !u.startsWith(location.origin + '/')),
                   }))
                   .catch((e) => done({error: String(e)}));",
                vec![],
            )
            .await
            .expect("weigh the page");
        assert_eq!(
            weight["elsewhere"],
            serde_json::json!([]),
            "{path}: {weight}"
        );
        let bytes = weight["bytes"].as_u64().unwrap_or(u64::MAX);
        assert!(bytes < 100_000, "{path} weighs {bytes} bytes: {weight}");
    }

    browser.click("header form button[type=submit]").await;
    browser.until_path_has("/sign-in").await;
    browser.goto(&format!("{}/", node.base)).await;
    assert!(
        browser.path().await.starts_with("/sign-in"),
        "the session outlived its sign-out"
    );
    browser.close().await;
    node.stop().await;
}

/// A task's logs split by execution; retry and cancel from the page, the
/// retry with the keyboard alone.
async fn a_task_shows_its_logs_by_execution_and_retries_and_cancels(engine: Engine) {
    let env = Env::new(engine).await;
    let admin = token(&env, "admin", "admin");
    let node = Node::start(&env);
    let browser = Browser::start(1280, 900).await;
    browser.sign_in(&node.base, &admin).await;

    let id = env
        .ok(&["enqueue", "fail", "--args", r#"{"times": 1}"#])
        .trim()
        .to_owned();
    let url = format!("{}/tasks/{id}", node.base);
    until_shown(&browser, &url, "Successful").await;
    assert_eq!(
        browser.text("h2:nth-of-type(2)").await,
        "Current execution logs (execution 2)"
    );
    let main = browser.main_text().await;
    assert!(main.contains("succeeded after 1 failures"), "{main}");
    assert!(main.contains("Previous execution logs"), "{main}");
    assert!(
        main.contains("failing on purpose (attempt 1 of 1 failures)"),
        "{main}"
    );
    browser
        .screenshot(&format!("task-{engine:?}").to_lowercase())
        .await;

    // Retry with the keyboard alone: Tab to the button, Enter, accept.
    let mut found = false;
    for _ in 0..30 {
        browser.press(Key::Tab).await;
        if browser.focused().await.contains("Retry") {
            found = true;
            break;
        }
    }
    assert!(found, "the Retry button is not reachable with Tab");
    browser.press(Key::Enter).await;
    browser.accept().await;
    browser.until_path_has("done=retried").await;
    // Queued again with its attempts counted from zero, it fails its first
    // attempt again (execution 3) and succeeds at its second (execution 4).
    until_shown(&browser, &url, "2 of 20, execution 4").await;
    until_shown(&browser, &url, "Successful").await;
    let task = env.json(&["tasks", "show", &id, "--json"]);
    assert_eq!(task["task"]["state"], "succeeded", "{task}");
    assert_eq!(task["task"]["attempt"], 2, "{task}");
    assert_eq!(task["task"]["execution"], 4, "{task}");
    assert_eq!(task["task"]["max_attempts"], 20, "{task}");

    // Cancel a task due in an hour.
    let later = env
        .ok(&["enqueue", "noop", "--delay", "1h"])
        .trim()
        .to_owned();
    browser.goto(&format!("{}/tasks/{later}", node.base)).await;
    browser.click("form[action$='/cancel'] button").await;
    browser.accept().await;
    browser.until_path_has("done=cancelled").await;
    assert!(
        browser
            .main_text()
            .await
            .contains("The task was cancelled.")
    );
    let task = env.json(&["tasks", "show", &later, "--json"]);
    assert_eq!(task["task"]["state"], "cancelled");
    no_console_errors(&browser, "task").await;
    browser.close().await;
    node.stop().await;
}

/// The filters and both toggles change the list.
async fn filters_and_toggles_change_the_list(engine: Engine) {
    let env = Env::new(engine).await;
    let admin = token(&env, "admin", "admin");
    env.ok(&["enqueue", "noop"]);
    env.ok(&["enqueue", "noop", "--related", "user:42"]);
    env.ok(&[
        "enqueue",
        "fail",
        "--args",
        r#"{"times": 100}"#,
        "--max-attempts",
        "1",
    ]);
    let node = Node::start(&env);
    env.wait_until("every task finishes", async |env| {
        env.count("succeeded").await == 2 && env.count("failed").await == 1
    })
    .await;
    let browser = Browser::start(1280, 900).await;
    browser.sign_in(&node.base, &admin).await;

    // A first visit leaves successful tasks out.
    browser.goto(&format!("{}/tasks", node.base)).await;
    assert_eq!(browser.count("tbody tr .badge").await, 1);
    assert!(browser.main_text().await.contains("fail"));

    // Unchecked: all three.
    browser.click("input[name=exclude_successful]").await;
    browser.click("form.filters button[type=submit]").await;
    browser.wait_for_count("tbody tr .badge", 3).await;

    // Standalone only: the one with a related object goes.
    browser.click("input[name=standalone]").await;
    browser.click("form.filters button[type=submit]").await;
    browser.until_path_has("standalone=true").await;
    browser.wait_for_count("tbody tr .badge", 2).await;
    assert!(!browser.main_text().await.contains("user:42"));

    // A related object, and a state.
    browser
        .goto(&format!("{}/tasks?filtered=1&related=user:42", node.base))
        .await;
    assert_eq!(browser.count("tbody tr .badge").await, 1);
    browser
        .goto(&format!("{}/tasks?filtered=1&state=failed", node.base))
        .await;
    assert_eq!(browser.count("tbody tr .badge").await, 1);
    // A filter that cannot mean anything says so.
    browser
        .goto(&format!("{}/tasks?filtered=1&related=user:", node.base))
        .await;
    assert!(
        browser.main_text().await.contains("related"),
        "{}",
        browser.main_text().await
    );
    no_console_errors(&browser, "tasks").await;
    browser.close().await;
    node.stop().await;
}

/// A read session shows no write controls, and a change posted by hand
/// with its cookie and CSRF token is refused and changes nothing.
async fn a_read_session_has_no_write_controls_and_its_posts_are_refused(engine: Engine) {
    let env = Env::new(engine).await;
    let read = token(&env, "viewer", "read");
    let id = env
        .ok(&[
            "enqueue",
            "fail",
            "--args",
            r#"{"times": 100}"#,
            "--max-attempts",
            "1",
        ])
        .trim()
        .to_owned();
    let node = Node::start(&env);
    env.wait_until("the task fails", async |env| env.count("failed").await == 1)
        .await;
    let browser = Browser::start(1280, 900).await;
    browser.sign_in(&node.base, &read).await;
    browser.goto(&format!("{}/tasks/{id}", node.base)).await;
    assert_eq!(browser.count("form[action$='/retry']").await, 0);
    browser
        .goto(&format!("{}/tasks?filtered=1", node.base))
        .await;
    assert_eq!(browser.count("#bulk").await, 0, "bulk actions shown");
    assert_eq!(browser.count("input[type=checkbox][name=id]").await, 0);
    for path in ["/queues", "/schedules", "/settings"] {
        browser.goto(&format!("{}{path}", node.base)).await;
        assert_eq!(
            browser.count("main form").await,
            0,
            "{path} shows a form to a read session"
        );
    }
    // The same POST the admin's button would make.
    let cookie = browser.session_cookie().await;
    let csrf = browser
        .client
        .find(fantoccini::Locator::Css("header input[name=csrf]"))
        .await
        .expect("the sign-out form")
        .attr("value")
        .await
        .expect("its CSRF token")
        .expect("a value");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let answer = client
        .post(format!("{}/tasks/{id}/retry", node.base))
        .header("Cookie", format!("longshore_session={cookie}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        // base64url: nothing to escape.
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), 403);
    let answer = client
        .post(format!("{}/tasks/bulk", node.base))
        .header("Cookie", format!("longshore_session={cookie}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&action=retry&id={id}"))
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), 403);
    let task = env.json(&["tasks", "show", &id, "--json"]);
    assert_eq!(
        task["task"]["state"], "failed",
        "a read session changed the task"
    );
    browser.close().await;
    node.stop().await;
}

/// A session survives a restart of the server and ends when its token is
/// revoked.
async fn sessions_survive_a_restart_and_end_with_their_token(engine: Engine) {
    let env = Env::new(engine).await;
    let admin = token(&env, "admin", "admin");
    let node = Node::start(&env);
    let browser = Browser::start(1280, 900).await;
    browser.sign_in(&node.base, &admin).await;
    assert_eq!(browser.text("h1").await, "Overview");
    node.stop().await;

    // Another process, another port, the same database: still signed in
    // (cookies do not depend on the port).
    let node = Node::start(&env);
    browser.goto(&format!("{}/", node.base)).await;
    assert_eq!(browser.path().await, "/");
    assert_eq!(browser.text("h1").await, "Overview");

    env.ok(&["tokens", "revoke", "admin"]);
    browser.goto(&format!("{}/", node.base)).await;
    assert!(
        browser.path().await.starts_with("/sign-in"),
        "a revoked token's session lives on"
    );
    browser.close().await;
    node.stop().await;
}

/// Schedules: pause, run, resume, and an edit whose invalid cron comes back
/// inline with nothing stored.
async fn schedules_pause_run_resume_and_edit_with_errors_inline(engine: Engine) {
    let env = Env::new(engine).await;
    let admin = token(&env, "admin", "admin");
    env.ok(&[
        "schedules",
        "add",
        "nightly",
        "--actor",
        "noop",
        "--cron",
        "0 3 * * *",
    ]);
    let node = Node::start(&env);
    let browser = Browser::start(1280, 900).await;
    browser.sign_in(&node.base, &admin).await;
    browser.goto(&format!("{}/schedules", node.base)).await;

    browser
        .submit("form[action='/schedules/nightly/pause'] button", "Paused.")
        .await;
    assert_eq!(
        env.json(&["schedules", "show", "nightly", "--json"])["schedule"]["paused"],
        true
    );
    browser
        .submit(
            "form[action='/schedules/nightly/run'] button",
            "The schedule was run.",
        )
        .await;
    env.wait_until("the run by hand ran", async |env| {
        env.count("succeeded").await == 1
    })
    .await;
    browser
        .submit(
            "form[action='/schedules/nightly/resume'] button",
            "Resumed.",
        )
        .await;
    assert_eq!(
        env.json(&["schedules", "show", "nightly", "--json"])["schedule"]["paused"],
        false
    );

    browser
        .goto(&format!("{}/schedules/nightly", node.base))
        .await;
    browser.type_into("input[name=cron]", "61 * * * *").await;
    browser.click("button[value=save]").await;
    browser.wait_for_count(".flash.error", 1).await;
    let main = browser.main_text().await;
    assert!(main.to_lowercase().contains("cron"), "{main}");
    assert_eq!(
        env.json(&["schedules", "show", "nightly", "--json"])["schedule"]["cron"],
        "0 3 * * *"
    );
    // The preview, then a valid edit.
    browser.type_into("input[name=cron]", "*/10 * * * *").await;
    browser
        .submit("button[value=preview]", "Next runs (UTC)")
        .await;
    browser.submit("button[value=save]", "Saved.").await;
    assert_eq!(
        env.json(&["schedules", "show", "nightly", "--json"])["schedule"]["cron"],
        "*/10 * * * *"
    );
    browser
        .screenshot(&format!("schedule-{engine:?}").to_lowercase())
        .await;
    no_console_errors(&browser, "schedule").await;
    browser.close().await;
    node.stop().await;
}

/// Queues: pause and resume; a flush asks for the queue's name first.
async fn queues_pause_and_flush_with_a_typed_confirmation(engine: Engine) {
    let env = Env::new(engine).await;
    let admin = token(&env, "admin", "admin");
    env.ok(&[
        "enqueue", "noop", "--queue", "mail", "--delay", "1h", "--count", "5",
    ]);
    let node = Node::start(&env);
    let browser = Browser::start(1280, 900).await;
    browser.sign_in(&node.base, &admin).await;
    browser.goto(&format!("{}/queues", node.base)).await;

    browser
        .submit("form[action='/queues/mail/pause'] button", "Paused.")
        .await;
    let queues = env.json(&["queues", "list", "--json"]);
    assert_eq!(queues[0]["paused"], true, "{queues}");

    // A wrong name typed back flushes nothing.
    browser
        .click("form[action='/queues/mail/flush'] button")
        .await;
    browser.answer("mai").await;
    assert_eq!(env.count("scheduled").await, 5);
    browser
        .click("form[action='/queues/mail/flush'] button")
        .await;
    browser.answer("mail").await;
    browser.until_path_has("done=flushed").await;
    assert!(browser.main_text().await.contains("The queue was flushed."));
    assert_eq!(env.count("scheduled").await, 0);
    browser
        .submit("form[action='/queues/mail/resume'] button", "Resumed.")
        .await;
    assert_eq!(env.json(&["queues", "list", "--json"])[0]["paused"], false);
    no_console_errors(&browser, "queues").await;

    // The audit trail lists what this session changed, newest first; the
    // flush refused in the browser never reached the server.
    browser.goto(&format!("{}/audit", node.base)).await;
    let mut rows = Vec::new();
    for row in browser
        .client
        .find_all(fantoccini::Locator::Css("#audit-list tbody tr"))
        .await
        .expect("the audit rows")
    {
        rows.push(row.text().await.expect("a row's text"));
    }
    let targets = [
        "/queues/mail/resume",
        "/queues/mail/flush",
        "/queues/mail/pause",
    ];
    assert_eq!(rows.len(), targets.len(), "{rows:?}");
    for (row, target) in rows.iter().zip(targets) {
        assert!(
            row.contains("admin") && row.contains("dashboard") && row.contains(target),
            "{row}"
        );
    }
    browser
        .screenshot(&format!("audit-{engine:?}").to_lowercase())
        .await;
    browser.close().await;
    node.stop().await;
}

/// The workers page lists a second worker process.
async fn the_workers_page_lists_a_live_second_worker(engine: Engine) {
    let env = Env::new(engine).await;
    let admin = token(&env, "admin", "admin");
    let node = Node::start(&env);
    let _second = env.worker(&["--worker-id", "second-node", "--queues", "other"], &[]);
    // A pool with a connected agent.
    env.ok(&[
        "pools",
        "add",
        "gpu",
        "--queues",
        "render",
        "--labels",
        "cuda",
        "--max-running",
        "3",
    ]);
    let agent_token = env
        .ok(&[
            "agents", "tokens", "create", "--name", "gpu-1", "--pool", "gpu",
        ])
        .trim()
        .to_owned();
    let mut cmd = env.cmd();
    cmd.args([
        "agent",
        "--gateway",
        &node.gateway,
        "--pool",
        "gpu",
        "--id",
        "gpu-agent",
        "--labels",
        "cuda",
    ])
    .env("LONGSHORE_AGENT_TOKEN", &agent_token)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let _agent = Proc::spawn(cmd);
    let browser = Browser::start(1280, 900).await;
    browser.sign_in(&node.base, &admin).await;
    until_shown(&browser, &format!("{}/workers", node.base), "second-node").await;
    until_shown(&browser, &format!("{}/workers", node.base), "gpu-agent").await;
    let text = browser.main_text().await;
    assert!(
        text.contains("inline + agents") && text.contains("render") && text.contains("cuda"),
        "{text}"
    );
    browser
        .screenshot(&format!("workers-{engine:?}").to_lowercase())
        .await;
    // Drain it from the page.
    browser
        .click("form[action='/agents/gpu-agent/drain'] button")
        .await;
    browser.accept().await;
    browser.until_path_has("done=draining").await;
    browser.wait_for_text("The agent was asked to drain").await;
    env.wait_until("the agent to show as draining", async |env| {
        env.json(&["agents", "list", "--json"])[0]["draining"] == true
    })
    .await;
    browser.close().await;
    node.stop().await;
}

/// Bulk actions: ticked rows, then every task a filter shows over several
/// pages, counted first, run in the background with their progress shown;
/// the audit trail names the filter.
async fn bulk_actions_run_in_the_background_and_report_progress(engine: Engine) {
    let env = Env::new(engine).await;
    let admin = token(&env, "admin", "admin");
    env.ok(&[
        "enqueue", "noop", "--delay", "1h", "--count", "120", "--quiet",
    ]);
    let node = Node::start(&env);
    let browser = Browser::start(1280, 900).await;
    browser.sign_in(&node.base, &admin).await;
    let list = format!("{}/tasks?filtered=1&state=scheduled", node.base);
    browser.goto(&list).await;
    assert_eq!(browser.count("input[type=checkbox][name=id]").await, 50);

    // Two ticked rows, cancelled.
    let boxes = browser
        .client
        .find_all(fantoccini::Locator::Css("input[type=checkbox][name=id]"))
        .await
        .expect("the rows' boxes");
    for tick in &boxes[..2] {
        tick.click().await.expect("tick a row");
    }
    browser.click("#bulk button[value=cancel]").await;
    browser.accept().await;
    browser.until_path_has("/operations/").await;
    let picked = browser.client.current_url().await.expect("url");
    until_shown(&browser, picked.as_str(), "finished").await;
    assert!(
        browser
            .main_text()
            .await
            .contains("2 changed, 2 looked at of 2 matched"),
        "{}",
        browser.main_text().await
    );
    assert_eq!(env.count("cancelled").await, 2);

    // Every task the filter shows: three pages, counted before confirming.
    browser.goto(&list).await;
    browser.click("#bulk a[href*='action=cancel']").await;
    browser.wait_for_text("118 tasks match now.").await;
    browser
        .screenshot(&format!("bulk-confirm-{engine:?}").to_lowercase())
        .await;
    no_console_errors(&browser, "bulk confirmation").await;
    browser.click("main form button[type=submit]").await;
    browser.until_path_has("/operations/").await;
    let operation = browser.client.current_url().await.expect("url").to_string();
    until_shown(&browser, &operation, "finished").await;
    let shown = browser.main_text().await;
    assert!(
        shown.contains("118 changed, 118 looked at of 118 matched"),
        "{shown}"
    );
    assert!(shown.contains("state=scheduled"), "{shown}");
    assert_eq!(env.count("cancelled").await, 120);
    assert_eq!(env.count("scheduled").await, 0);
    browser
        .screenshot(&format!("operation-{engine:?}").to_lowercase())
        .await;
    no_console_errors(&browser, "operation").await;

    // Both are listed; the audit trail names what each took.
    browser.goto(&format!("{}/operations", node.base)).await;
    assert_eq!(browser.count("#operations tbody tr").await, 2);
    browser.goto(&format!("{}/audit", node.base)).await;
    let audit = browser.main_text().await;
    assert!(
        audit.contains("/tasks/bulk cancel state=scheduled"),
        "{audit}"
    );
    assert!(audit.contains("cancel 2 tasks ticked"), "{audit}");
    browser.close().await;
    node.stop().await;
}

on_both_engines!(
    signing_in_shows_every_page_and_signing_out_ends_the_session,
    a_task_shows_its_logs_by_execution_and_retries_and_cancels,
    filters_and_toggles_change_the_list,
    a_read_session_has_no_write_controls_and_its_posts_are_refused,
    sessions_survive_a_restart_and_end_with_their_token,
    schedules_pause_run_resume_and_edit_with_errors_inline,
    queues_pause_and_flush_with_a_typed_confirmation,
    the_workers_page_lists_a_live_second_worker,
    bulk_actions_run_in_the_background_and_report_progress,
);
