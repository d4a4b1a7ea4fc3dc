//! A PostgreSQL cluster of the test's own, made with `initdb` in a scratch
//! directory and run with `pg_ctl` on a free port, so that a test may stop
//! and restart it without touching the shared server other tests use.
//!
//! `initdb` refuses to run as root: under root, every command runs as the
//! `postgres` user (which the PostgreSQL package creates) through
//! `runuser`, and the scratch directory is handed to that user.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// The directory holding `initdb` and `pg_ctl`:
/// `LONGSHORE_TEST_PG_BINDIR` when set, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout).
fn bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("LONGSHORE_TEST_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin \
             (scripts/test installs them; or set LONGSHORE_TEST_PG_BINDIR)"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A private cluster; stopped (immediately) when dropped.
pub(crate) struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// Makes and starts a cluster with trust authentication for the
    /// `postgres` role on 127.0.0.1 only.
    pub(crate) fn start() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("longshore-cluster-")
            .tempdir()
            .unwrap();
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").args(["-R", "postgres:", &path(dir.path())]));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let cluster = Cluster {
            bin: bindir(),
            port,
            as_postgres,
            dir,
        };
        let data = cluster.data();
        cluster.pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        cluster.pg_ctl_start();
        cluster
    }

    /// The URL of its `postgres` database.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it as a crash would (`-m immediate`: no checkpoint, every
    /// connection cut), then starts it again and waits until it accepts
    /// connections.
    pub(crate) fn crash_and_restart(&self) {
        self.pg(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        self.pg_ctl_start();
    }

    fn data(&self) -> String {
        path(&self.dir.path().join("data"))
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            path(self.dir.path())
        );
        let log = path(&self.dir.path().join("server.log"));
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    /// Runs one of the server's programs (as `postgres` under root).
    fn pg(&self, program: &str, args: &[&str]) {
        let program = path(&self.bin.join(program));
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--", &program]);
            cmd
        } else {
            Command::new(&program)
        };
        cmd.args(args).current_dir(self.dir.path());
        run(&mut cmd);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let program = path(&self.bin.join("pg_ctl"));
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--", &program])
                .args(args)
                .output()
        } else {
            Command::new(&program).args(args).output()
        };
    }
}

fn path(p: &Path) -> String {
    p.to_str().expect("a UTF-8 path").to_owned()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
