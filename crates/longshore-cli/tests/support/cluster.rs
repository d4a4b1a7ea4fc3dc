//! A PostgreSQL cluster of the test's own, made with `initdb` in a scratch
//! directory and run with `pg_ctl` on a free port, so that a test may stop
//! and restart it without touching the shared server other tests use.
//!
//! `initdb` refuses to run as root: under root, every command runs as the
//! `postgres` user (which the PostgreSQL package creates) through
//! `runuser`, and the scratch directory is handed to that user. The same
//! goes for [`Bouncer`], a PgBouncer in transaction pooling in front of a
//! cluster (PgBouncer refuses root too).

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
        let as_postgres = is_root();
        let dir = scratch(&as_postgres);
        let port = free_port();
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

    /// Starts a PgBouncer in transaction pooling in front of it.
    pub(crate) fn bouncer(&self) -> Bouncer {
        let dir = scratch(&self.as_postgres);
        let port = free_port();
        let file = |name: &str| path(&dir.path().join(name));
        std::fs::write(dir.path().join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        let ini = format!(
            "[databases]\n\
             * = host=127.0.0.1 port={upstream}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {users}\n\
             pool_mode = transaction\n\
             max_client_conn = 500\n\
             default_pool_size = 10\n\
             logfile = {log}\n\
             pidfile = {pid}\n",
            upstream = self.port,
            users = file("users.txt"),
            log = file("pgbouncer.log"),
            pid = file("pgbouncer.pid"),
        );
        std::fs::write(dir.path().join("pgbouncer.ini"), ini).unwrap();
        if self.as_postgres {
            run(Command::new("chown").args(["-R", "postgres:", &path(dir.path())]));
        }
        let mut cmd = owned_by_postgres(self.as_postgres, &which("pgbouncer"));
        cmd.args(["-d", &file("pgbouncer.ini")]);
        run(&mut cmd);
        // It forks; wait until it accepts connections.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "pgbouncer did not listen: {}",
                std::fs::read_to_string(dir.path().join("pgbouncer.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Bouncer { dir, port }
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
        let mut cmd = owned_by_postgres(self.as_postgres, &path(&self.bin.join(program)));
        cmd.args(args).current_dir(self.dir.path());
        run(&mut cmd);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let pg_ctl = path(&self.bin.join("pg_ctl"));
        let _ = owned_by_postgres(self.as_postgres, &pg_ctl)
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
    }
}

/// A PgBouncer of the test's own (see [`Cluster::bouncer`]); stopped when
/// dropped.
pub(crate) struct Bouncer {
    dir: TempDir,
    port: u16,
}

impl Bouncer {
    /// The URL of database `name` through it.
    pub(crate) fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pgbouncer.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).output();
        }
    }
}

/// `program`, run as the `postgres` user when `as_postgres` (the tests run
/// as root, which PostgreSQL's and PgBouncer's programs refuse).
fn owned_by_postgres(as_postgres: bool, program: &str) -> Command {
    if as_postgres {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--", program]);
        cmd
    } else {
        Command::new(program)
    }
}

/// A scratch directory, owned by `postgres` when the tests run as root.
fn scratch(as_postgres: &bool) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("longshore-cluster-")
        .tempdir()
        .unwrap();
    if *as_postgres {
        run(Command::new("chown").args(["-R", "postgres:", &path(dir.path())]));
    }
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// `program`'s path, from PATH or the system directories PATH may lack.
fn which(program: &str) -> String {
    let path_var = std::env::var("PATH").unwrap_or_default();
    path_var
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin"])
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.exists())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| panic!("{program} is not installed (scripts/test installs it)"))
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
