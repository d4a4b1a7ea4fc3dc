//! A real browser for the dashboard's tests: Debian's Chromium, headless,
//! driven through chromedriver (WebDriver) on a free loopback port.
//! `scripts/test` installs both when they are missing.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::Proc;

/// Where the tests leave their screenshots (docs/dashboard.md shows them).
pub(crate) fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshot directory");
    dir
}

/// A headless Chromium under its own chromedriver.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver_url: String,
    // Declared last: chromedriver outlives the session on it.
    _driver: Proc,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

impl Browser {
    /// Starts chromedriver and a Chromium window `width` pixels wide.
    pub(crate) async fn start(width: u32, height: u32) -> Browser {
        // The HTTP clients need a TLS provider chosen, even for plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let chromium =
            std::env::var("LONGSHORE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let driver = std::env::var("LONGSHORE_TEST_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = free_port();
        let mut cmd = Command::new(&driver);
        cmd.arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let proc = Proc::spawn(cmd);
        let driver_url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "chromedriver ({driver}) did not listen within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = longshore_testing::scratch_dir();
        let caps = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.keep().display()),
                ],
            },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!("capabilities are an object")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver_url)
            .await
            .expect("start a Chromium session through chromedriver");
        client
            .set_window_size(width, height)
            .await
            .expect("size the window");
        Browser {
            client,
            driver_url,
            _driver: proc,
        }
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The path (and query) the browser shows.
    pub(crate) async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The visible text of the page's `<main>`.
    pub(crate) async fn main_text(&self) -> String {
        self.text("main").await
    }

    /// The visible text of the first element `css` selects.
    pub(crate) async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
            .text()
            .await
            .unwrap_or_else(|e| panic!("text of {css}: {e}"))
    }

    /// Waits until the page's `<main>` shows `text` (a page that is still
    /// loading is read again).
    pub(crate) async fn wait_for_text(&self, text: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let shown = match self.client.find(Locator::Css("main")).await {
                Ok(main) => main.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if shown.contains(text) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page never showed {text:?}; it shows:\n{shown}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `css` selects `n` elements.
    pub(crate) async fn wait_for_count(&self, css: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let count = self.count(css).await;
            if count == n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{css} selects {count} elements, not {n}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks `css` (a form's button) and waits for the page it leads to,
    /// which shows `text`.
    pub(crate) async fn submit(&self, css: &str, text: &str) {
        self.click(css).await;
        self.wait_for_text(text).await;
    }

    /// How many elements `css` selects.
    pub(crate) async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |all| all.len())
    }

    /// Clicks what `css` selects. A page's live refresh may swap the
    /// element for a fresh copy between finding and clicking it: then it is
    /// found again.
    pub(crate) async fn click(&self, css: &str) {
        for _ in 0..5 {
            let element = self
                .client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("find {css}: {e}"));
            match element.click().await {
                Ok(()) => return,
                Err(e) if e.to_string().contains("stale element") => continue,
                Err(e) => panic!("click {css}: {e}"),
            }
        }
        panic!("click {css}: the element was replaced five times in a row");
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Accepts the confirmation the last click raised.
    pub(crate) async fn accept(&self) {
        self.client
            .accept_alert()
            .await
            .expect("accept the confirmation");
    }

    /// Answers the prompt the last click raised with `text`.
    pub(crate) async fn answer(&self, text: &str) {
        self.client
            .send_alert_text(text)
            .await
            .expect("type into the prompt");
        self.client.accept_alert().await.expect("accept the prompt");
    }

    /// Waits until the browser's location holds `part` (a confirmed form's
    /// redirect: accepting a dialog does not wait for the page it leads
    /// to).
    pub(crate) async fn until_path_has(&self, part: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let path = self.path().await;
            if path.contains(part) {
                // The new page is loaded once its <main> can be found.
                if self.client.find(Locator::Css("main")).await.is_ok() {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the browser never reached a page with {part:?}; it is at {path}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Presses `key` where the focus is.
    pub(crate) async fn press(&self, key: Key) {
        let focused = self
            .client
            .active_element()
            .await
            .expect("the focused element");
        focused
            .send_keys(&char::from(key).to_string())
            .await
            .expect("press a key");
    }

    /// The focused element's outer HTML.
    pub(crate) async fn focused(&self) -> String {
        let focused = self
            .client
            .active_element()
            .await
            .expect("the focused element");
        focused.html(false).await.unwrap_or_default()
    }

    /// Signs in at `base` with `token` from the sign-in page, and waits
    /// for the page it leads to (the overview, or the sign-in page again
    /// with its error).
    pub(crate) async fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/sign-in")).await;
        self.type_into("#token", token).await;
        self.click("form.signin button[type=submit]").await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let signed_in = !self.path().await.starts_with("/sign-in");
            if (signed_in || self.count(".flash.error").await > 0)
                && self.client.find(Locator::Css("main")).await.is_ok()
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "signing in never ended"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a screenshot as `name`.png in [`screenshot_dir`].
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("take a screenshot");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// The session cookie's value.
    pub(crate) async fn session_cookie(&self) -> String {
        self.client
            .get_named_cookie("longshore_session")
            .await
            .expect("the session cookie")
            .value()
            .to_owned()
    }

    /// Errors the browser's console recorded since the last call
    /// (chromedriver's browser log): script errors, and resources that
    /// failed to load.
    pub(crate) async fn console_errors(&self) -> Vec<String> {
        let session = self
            .client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("a session id");
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .expect("ask chromedriver for the browser log")
            .json()
            .await
            .expect("chromedriver's log as JSON");
        answer["value"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    // A page the server answered with a refusal on purpose
                    // (400, 401, 403, 409) is not an error of the page.
                    .filter(|e| {
                        let message = e["message"].as_str().unwrap_or_default();
                        !(e["source"] == "network"
                            && ["400", "401", "403", "409"]
                                .iter()
                                .any(|s| message.contains(&format!("status of {s}"))))
                    })
                    .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) async fn close(self) {
        let _ = self.client.close().await;
    }
}
