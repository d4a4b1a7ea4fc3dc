//! What the process-level tests share: a database of the test's own on
//! either engine, the `longshore` binary run with a clean environment, a raw
//! pool that observes the tables, and child processes that cannot outlive
//! their test.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use longshore_testing::ScratchDb;
use sqlx::{PgPool, SqlitePool};
use tempfile::TempDir;
use tokio::sync::OnceCell;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_longshore");

/// The data directory's SQLite file, relative to the working directory,
/// when no database is configured.
pub(crate) const DEFAULT_DB: &str = "longshore-data/longshore.db";

pub(crate) mod browser;
pub(crate) mod cluster;

pub(crate) use longshore_testing::Engine;

/// A raw pool on the test's database, to look at the tables directly.
pub(crate) enum Observer {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl Observer {
    /// One `i64` per row of `sql` (the same text on both engines).
    pub(crate) async fn i64s(&self, sql: &str) -> Vec<i64> {
        match self {
            Observer::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            Observer::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// One text per row of `sql` (the same text on both engines).
    pub(crate) async fn strings(&self, sql: &str) -> Vec<String> {
        match self {
            Observer::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            Observer::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The one `i64` `sql` returns.
    pub(crate) async fn i64(&self, sql: &str) -> i64 {
        let values = self.i64s(sql).await;
        assert_eq!(values.len(), 1, "{sql} returned {values:?}");
        values[0]
    }

    pub(crate) async fn counts(&self) -> HashMap<String, i64> {
        match self {
            Observer::Postgres(pool) => {
                sqlx::query_as::<_, (String, i64)>(
                    "SELECT state::text, count(*) FROM longshore_tasks GROUP BY state",
                )
                .fetch_all(pool)
                .await
            }
            Observer::Sqlite(pool) => {
                sqlx::query_as::<_, (String, i64)>(
                    "SELECT state, count(*) FROM longshore_tasks GROUP BY state",
                )
                .fetch_all(pool)
                .await
            }
        }
        .unwrap()
        .into_iter()
        .collect()
    }

    /// A task's state, lease owner and attempt.
    pub(crate) async fn task(&self, id: &str) -> (String, Option<String>, i64) {
        match self {
            Observer::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT state::text, lease_owner, attempt::bigint FROM longshore_tasks WHERE id = $1::uuid",
                )
                .bind(id.trim())
                .fetch_one(pool)
                .await
            }
            Observer::Sqlite(pool) => {
                sqlx::query_as(
                    "SELECT state, lease_owner, attempt FROM longshore_tasks WHERE id = ?1",
                )
                .bind(id.trim())
                .fetch_one(pool)
                .await
            }
        }
        .unwrap_or_else(|e| panic!("task {id}: {e}"))
    }
}

pub(crate) use longshore_testing::sqlite_pool;

/// A database of the test's own, a scratch directory that every process
/// runs in, and an observer pool.
pub(crate) struct Env {
    pub(crate) engine: Engine,
    /// The working directory of every process the test starts.
    pub(crate) dir: TempDir,
    /// What `LONGSHORE_DATABASE_URL` says; `None`: the data directory's
    /// SQLite file.
    url: Option<String>,
    scratch: Option<ScratchDb>,
    observer: OnceCell<Observer>,
}

impl Env {
    /// A migrated database on `engine`, named by URL.
    pub(crate) async fn new(engine: Engine) -> Env {
        let env = Env::unmigrated(engine).await;
        env.ok(&["migrate"]);
        env.observer().await;
        env
    }

    /// A database on `engine` named by URL; on SQLite, a file that does not
    /// exist yet.
    pub(crate) async fn unmigrated(engine: Engine) -> Env {
        let dir = longshore_testing::scratch_dir();
        let (url, scratch) = match engine {
            Engine::Postgres => {
                let db = ScratchDb::create().await;
                (db.url.clone(), Some(db))
            }
            Engine::Sqlite => (
                format!("sqlite://{}", dir.path().join("longshore.db").display()),
                None,
            ),
        };
        Env {
            engine,
            dir,
            url: Some(url),
            scratch,
            observer: OnceCell::new(),
        }
    }

    /// A migrated PostgreSQL database the test made itself, at `url`
    /// (a [`cluster::Cluster`]'s, say).
    pub(crate) async fn on_postgres_url(url: String) -> Env {
        let pool = PgPool::connect(&url).await.unwrap();
        let env = Env {
            engine: Engine::Postgres,
            dir: longshore_testing::scratch_dir(),
            url: Some(url),
            scratch: None,
            observer: OnceCell::new_with(Some(Observer::Postgres(pool))),
        };
        env.ok(&["migrate"]);
        env
    }

    /// An empty directory and no database configured: the binary uses
    /// `./longshore-data/longshore.db`.
    pub(crate) fn zero_config() -> Env {
        Env {
            engine: Engine::Sqlite,
            dir: longshore_testing::scratch_dir(),
            url: None,
            scratch: None,
            observer: OnceCell::new(),
        }
    }

    /// The scratch PostgreSQL database's name (on PostgreSQL).
    pub(crate) fn scratch_name(&self) -> &str {
        &self.scratch.as_ref().expect("not on PostgreSQL").name
    }

    /// The URL given to the binary, if any.
    pub(crate) fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The SQLite file (on SQLite).
    pub(crate) fn sqlite_path(&self) -> PathBuf {
        assert_eq!(self.engine, Engine::Sqlite);
        match &self.url {
            Some(url) => PathBuf::from(url.strip_prefix("sqlite://").unwrap()),
            None => self.dir.path().join(DEFAULT_DB),
        }
    }

    /// The observer pool, opened on first use (on SQLite the file must
    /// exist by then).
    pub(crate) async fn observer(&self) -> &Observer {
        self.observer
            .get_or_init(|| async {
                match &self.scratch {
                    Some(db) => {
                        Observer::Postgres(PgPool::connect_with(db.options()).await.unwrap())
                    }
                    None => Observer::Sqlite(sqlite_pool(&self.sqlite_path()).await),
                }
            })
            .await
    }

    /// The binary, with a clean environment and quick timings.
    pub(crate) fn cmd(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .current_dir(self.dir.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LONGSHORE_LOG", "warn")
            // Quick timings so that leases expire within a test's patience.
            .env("LONGSHORE_WORKER__LEASE", "2s")
            .env("LONGSHORE_WORKER__HEARTBEAT", "500ms")
            .env("LONGSHORE_WORKER__IDLE_MAX", "200ms")
            .env("LONGSHORE_WORKER__MAINTENANCE_INTERVAL", "200ms")
            .env("LONGSHORE_WORKER__SCHEDULER_INTERVAL", "200ms")
            .env("LONGSHORE_WORKER__CANCEL_GRACE", "1s")
            .env("LONGSHORE_RETRY__BASE", "100ms")
            .env("LONGSHORE_RETRY__MAX", "200ms");
        if let Some(url) = &self.url {
            cmd.env("LONGSHORE_DATABASE_URL", url);
        }
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "longshore {args:?} failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// The JSON a command prints.
    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("longshore {args:?}: {e}: {out}"))
    }

    pub(crate) fn worker(&self, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = self.cmd();
        cmd.arg("worker")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Proc::spawn(cmd)
    }

    pub(crate) async fn counts(&self) -> HashMap<String, i64> {
        self.observer().await.counts().await
    }

    pub(crate) async fn total(&self) -> i64 {
        self.counts().await.values().sum()
    }

    pub(crate) async fn count(&self, state: &str) -> i64 {
        self.counts().await.get(state).copied().unwrap_or(0)
    }

    pub(crate) async fn wait_until(&self, what: &str, done: impl AsyncFnMut(&Env) -> bool) {
        self.wait_within(Duration::from_secs(30), what, done).await;
    }

    /// [`Env::wait_until`] with a deadline of `limit`.
    pub(crate) async fn wait_within(
        &self,
        limit: Duration,
        what: &str,
        mut done: impl AsyncFnMut(&Env) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + limit;
        while !done(self).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; counts {:?}",
                self.counts().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A child process killed (SIGKILL) if the test ends without stopping it.
/// Its stderr, when piped, is collected in the background.
pub(crate) struct Proc {
    pub(crate) child: Child,
    stderr: Arc<Mutex<String>>,
    stdout_lines: Option<mpsc::Receiver<String>>,
}

impl Proc {
    /// Starts `cmd`; piped stdout arrives line by line, piped stderr is
    /// collected.
    pub(crate) fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let stdout_lines = child.stdout.take().map(|pipe| {
            let (send, lines) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if send.send(line).is_err() {
                        break;
                    }
                }
            });
            lines
        });
        Proc {
            child,
            stderr,
            stdout_lines,
        }
    }

    pub(crate) fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub(crate) fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// What it wrote to stderr so far (when piped).
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The next line of stdout (when piped), failing the test after `limit`.
    pub(crate) fn stdout_line(&mut self, limit: Duration) -> String {
        let lines = self.stdout_lines.as_ref().expect("stdout is not piped");
        match lines.recv_timeout(limit) {
            Ok(line) => line,
            Err(e) => panic!(
                "no line on stdout within {limit:?} ({e}); exited: {:?}; stderr: {}",
                self.child.try_wait(),
                self.stderr()
            ),
        }
    }

    /// The rest of stdout, once the process has exited.
    pub(crate) fn rest_of_stdout(&mut self) -> Vec<String> {
        let lines = self.stdout_lines.as_ref().expect("stdout is not piped");
        let mut rest = Vec::new();
        loop {
            match lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => rest.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return rest,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("stdout still open"),
            }
        }
    }

    /// Waits for the process to exit, failing the test after `limit`.
    pub(crate) async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "process did not exit within {limit:?}; stderr: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn ids(stdout: &str) -> Vec<String> {
    stdout.lines().map(str::to_owned).collect()
}
