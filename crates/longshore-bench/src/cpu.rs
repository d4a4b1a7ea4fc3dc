//! CPU time read from Linux's `/proc`: of one process, of a local
//! PostgreSQL server's processes, and of the whole machine. Where `/proc`
//! is missing or unreadable the readings are `None`, and the report says
//! so rather than showing a zero.

/// Clock ticks per second, the unit of `/proc`'s times.
fn ticks_per_second() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// The fields of `/proc/<pid>/stat` after the command's name (which may
/// hold spaces and parentheses, so the split is at its last `)`).
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // From the state (field 3) on; the state is a letter, read as 0.
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// The CPU time process `pid` has used, user and system, in seconds.
pub(crate) fn process_seconds(pid: u32) -> Option<f64> {
    let fields = stat_fields(pid)?;
    // utime and stime are the stat file's fields 14 and 15: here 11 and 12.
    Some((fields.get(11)? + fields.get(12)?) as f64 / ticks_per_second())
}

/// The CPU time every `postgres` process of this machine has used, with
/// that of their ended children (backends of closed connections, counted
/// into the server's main process), in seconds; `None` when no such
/// process is seen (the server runs elsewhere).
pub(crate) fn postgres_seconds() -> Option<f64> {
    let mut total = 0.0;
    let mut seen = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "postgres" {
            continue;
        }
        if let Some(fields) = stat_fields(pid) {
            // utime, stime, cutime, cstime: fields 14 to 17.
            let ticks: u64 = fields.get(11..15).map_or(0, |f| f.iter().sum());
            total += ticks as f64 / ticks_per_second();
            seen = true;
        }
    }
    seen.then_some(total)
}

/// The whole machine's CPU time so far: (busy, all), in seconds summed
/// over its cores, from the first line of `/proc/stat`.
pub(crate) fn machine_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is
    // already inside user).
    let all: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    let per_second = ticks_per_second();
    Some(((all - idle) as f64 / per_second, all as f64 / per_second))
}

/// What the machine did between two readings: busy cores over the span
/// (2.0 is two cores fully busy), and the share of all its cores.
pub(crate) fn busy_between(before: (f64, f64), after: (f64, f64), seconds: f64) -> (f64, f64) {
    let busy = after.0 - before.0;
    let all = after.1 - before.1;
    let cores = if seconds > 0.0 { busy / seconds } else { 0.0 };
    let share = if all > 0.0 { busy / all * 100.0 } else { 0.0 };
    (cores, share)
}

/// The readings at the start of a timed span: this process, the local
/// PostgreSQL server (when `postgres`) and the machine.
pub(crate) struct Span {
    process: Option<f64>,
    database: Option<f64>,
    machine: Option<(f64, f64)>,
}

/// Where a span's CPU went.
#[derive(Clone, Copy, serde::Serialize)]
pub(crate) struct Spent {
    /// This bench process (the worker under test, the probe and, on
    /// SQLite, the engine itself), in CPU seconds.
    pub(crate) bench_cpu_seconds: Option<f64>,
    /// The local PostgreSQL server's processes, in CPU seconds (none on
    /// SQLite, or for a server on another machine).
    pub(crate) database_cpu_seconds: Option<f64>,
    /// The whole machine: busy cores on average over the span.
    pub(crate) machine_busy_cores: f64,
    pub(crate) machine_busy_percent: f64,
}

impl Span {
    pub(crate) fn start(postgres: bool) -> Span {
        Span {
            process: process_seconds(std::process::id()),
            database: postgres.then(postgres_seconds).flatten(),
            machine: machine_seconds(),
        }
    }

    /// What was spent since the start, over `seconds` of wall time.
    pub(crate) fn spent(&self, seconds: f64) -> Spent {
        let since = |before: Option<f64>, now: Option<f64>| before.zip(now).map(|(b, a)| a - b);
        let (machine_busy_cores, machine_busy_percent) = self
            .machine
            .zip(machine_seconds())
            .map_or((0.0, 0.0), |(before, after)| {
                busy_between(before, after, seconds)
            });
        Spent {
            bench_cpu_seconds: since(self.process, process_seconds(std::process::id())),
            database_cpu_seconds: self
                .database
                .and_then(|b| since(Some(b), postgres_seconds())),
            machine_busy_cores,
            machine_busy_percent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_and_the_machine_have_used_some_cpu() {
        // Spend a little CPU so the reading cannot be zero.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        let mine = process_seconds(std::process::id()).expect("/proc/self");
        assert!(mine > 0.0, "{mine}");
        let (busy, all) = machine_seconds().expect("/proc/stat");
        assert!(busy > 0.0 && all >= busy, "{busy} {all}");
        assert_eq!(busy_between((1.0, 4.0), (3.0, 8.0), 2.0), (1.0, 50.0));
        assert!(process_seconds(u32::MAX).is_none());
    }
}
