//! How `SharedDict::get` scales with the number of reader *processes*, with and without a
//! concurrent writer. A plain program (`harness = false`, no criterion), using only the
//! public API, so that the same file also builds against older versions of the crate and
//! the two can be run side by side.
//!
//! For R readers in 1, 2, 4 (and on up to `available_parallelism` by doubling, if that is
//! larger), over a 1024-key `u64 -> u64` dict in one named manager:
//!
//! * R reader processes call `get` in a loop (`writer: no`);
//! * the same again with one extra writer process calling `insert` in a loop (`writer: yes`).
//!
//! Every helper is this binary re-executed with `SHM_MANAGER_SCALING_ROLE` set. It opens the
//! manager, says `ready`, waits for `go` on its stdin (sent to all helpers at once), runs its
//! loop for a warm-up and then for a fixed time, and prints its op count and the exact time
//! it measured on stdout, with the CPU time it got meanwhile. A helper whose stdin closes before `go` exits, so a parent that
//! dies leaves nothing running; a parent that panics kills its helpers (a guard) and
//! removes the named manager (its handle's `Drop`).
//!
//! # Reading the table
//!
//! * `total M gets/s` is the sum over readers of each reader's own ops/s; `per reader` is
//!   that total divided by R, followed by the slowest and fastest reader.
//! * Readers that do not contend scale: total for R = 2 near twice R = 1 when there are two
//!   free cores. Readers that serialise on a lock, or bounce one cache line between cores,
//!   stay flat or fall.
//! * R larger than the number of cores is oversubscribed: the best a reader can then do is
//!   keep the total at the R = cores figure; a lock holder preempted by the scheduler makes
//!   the others wait for a time slice, which shows as a collapse.
//! * `writer: yes` shows what a writer costs the readers (every commit invalidates the
//!   cache lines they read) and what the readers cost the writer (`writer M inserts/s`).
//!   With a writer there are R + 1 processes for the cores.
//! * `readers CPU` and `writer CPU` are the CPU time the helpers got in their windows, in
//!   percent of one core (from `/proc/self/stat`, 10 ms resolution), summed over readers.
//!   They tell a lock apart from the scheduler: readers asleep on a lock get less CPU than
//!   the cores they could have; readers that get all of it and still slow down contend in
//!   the caches. A total well under `100% x min(cores, helpers)` for every row means
//!   something else was using the cores: rerun that table.
//! * Absolute figures on a shared virtual machine move from run to run with where the
//!   scheduler puts the processes; compare builds by running them alternately, several times.
//!
//! # Usage
//!
//! `cargo bench -p shm-manager --bench dict_scaling` (about 10 s), or with `-- --quick`
//! for a short run. Other arguments (criterion's `--bench`, filters) are ignored.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use shm_manager::Manager;

const ROLE_ENV: &str = "SHM_MANAGER_SCALING_ROLE";
const NAME_ENV: &str = "SHM_MANAGER_SCALING_NAME";
const WARMUP_ENV: &str = "SHM_MANAGER_SCALING_WARMUP_MS";
const MEASURE_ENV: &str = "SHM_MANAGER_SCALING_MEASURE_MS";
const DICT: &str = "bench";
const KEYS: u64 = 1024;
/// Operations between two looks at the clock.
const BATCH: u64 = 256;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Reader,
    Writer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
        }
    }
}

/// One helper's result: operations done in the measured window, the window's length, and
/// the CPU time the helper got in it (`None` where `/proc/self/stat` cannot be read).
struct Report {
    role: Role,
    ops: u64,
    elapsed: Duration,
    cpu: Option<Duration>,
}

impl Report {
    fn per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

/// This process's user + system CPU time, from `/proc/self/stat` (Linux; in units of
/// `USER_HZ`, which is 100 on every Linux ABI, so 10 ms resolution).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces:
    // state is field 3, utime 14 and stime 15.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Runs `op` in batches until `dur` has passed; returns (ops, time taken).
fn run_for(dur: Duration, mut i: u64, op: &mut dyn FnMut(u64)) -> (u64, Duration) {
    let start = Instant::now();
    let mut ops = 0u64;
    loop {
        for _ in 0..BATCH {
            op(i);
            i = i.wrapping_add(7);
        }
        ops += BATCH;
        let elapsed = start.elapsed();
        if elapsed >= dur {
            return (ops, elapsed);
        }
    }
}

/// A helper process: open, say ready, wait for go, warm up, measure, report.
fn child(role: &str) {
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let ms = |k: &str| Duration::from_millis(env(k).parse().expect("milliseconds"));
    let (warmup, measure) = (ms(WARMUP_ENV), ms(MEASURE_ENV));
    let manager = Manager::open(&env(NAME_ENV)).expect("open manager");
    let d = manager.dict::<u64, u64>(DICT).expect("open dict");
    let mut op: Box<dyn FnMut(u64)> = match role {
        "reader" => Box::new(|i| {
            black_box(d.get(&(i % KEYS)).expect("get").expect("key present"));
        }),
        "writer" => Box::new(|i| {
            black_box(d.insert(&(i % KEYS), &i).expect("insert"));
        }),
        other => panic!("unknown role {other}"),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 || line.trim() != "go" {
        return; // the parent went away
    }
    let seed = u64::from(std::process::id()) % KEYS;
    run_for(warmup, seed, &mut op);
    let cpu_before = cpu_time();
    let (ops, elapsed) = run_for(measure, seed, &mut op);
    let cpu = cpu_before
        .zip(cpu_time())
        .map_or(u128::MAX, |(a, b)| (b - a).as_nanos());
    writeln!(out, "{ops} {} {cpu}", elapsed.as_nanos()).unwrap();
    out.flush().unwrap();
}

/// The helpers of one run; kills and reaps any still running when dropped (also on panic).
struct Helpers {
    children: Vec<(Role, Child, BufReader<ChildStdout>, ChildStdin)>,
}

impl Helpers {
    fn spawn(name: &str, roles: &[Role], warmup: Duration, measure: Duration) -> Helpers {
        let mut helpers = Helpers {
            children: Vec::new(),
        };
        for &role in roles {
            let mut child = Command::new(std::env::current_exe().expect("current_exe"))
                .env(ROLE_ENV, role.as_str())
                .env(NAME_ENV, name)
                .env(WARMUP_ENV, warmup.as_millis().to_string())
                .env(MEASURE_ENV, measure.as_millis().to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn helper");
            let stdout = BufReader::new(child.stdout.take().unwrap());
            let stdin = child.stdin.take().unwrap();
            helpers.children.push((role, child, stdout, stdin));
        }
        for (role, _, stdout, _) in &mut helpers.children {
            let line = read_line(stdout);
            assert_eq!(line, "ready", "{} helper did not start", role.as_str());
        }
        helpers
    }

    /// Sends `go` to every helper, then collects their reports.
    fn run(mut self) -> Vec<Report> {
        for (_, _, _, stdin) in &mut self.children {
            stdin.write_all(b"go\n").expect("send go");
        }
        for (_, _, _, stdin) in &mut self.children {
            stdin.flush().expect("send go");
        }
        let mut reports = Vec::new();
        for (role, child, stdout, _) in &mut self.children {
            let line = read_line(stdout);
            let mut fields = line.split_whitespace().map(|f| f.parse::<u128>());
            let (Some(Ok(ops)), Some(Ok(nanos)), Some(Ok(cpu))) =
                (fields.next(), fields.next(), fields.next())
            else {
                panic!("bad report from {} helper: {line:?}", role.as_str());
            };
            let status = child.wait().expect("wait for helper");
            assert!(status.success(), "{} helper: {status}", role.as_str());
            reports.push(Report {
                role: *role,
                ops: ops as u64,
                elapsed: Duration::from_nanos(nanos as u64),
                cpu: (cpu != u128::MAX).then(|| Duration::from_nanos(cpu as u64)),
            });
        }
        reports
    }
}

impl Drop for Helpers {
    fn drop(&mut self) {
        for (_, child, _, _) in &mut self.children {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

fn read_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    let n = r.read_line(&mut line).expect("read from helper");
    assert!(n > 0, "helper exited early (see its stderr above)");
    line.trim().to_owned()
}

/// The CPU the helpers got in their windows, summed, in percent of one core ("-" where
/// unknown or there are no helpers).
fn cpu_percent(reports: &[&Report]) -> String {
    let shares: Option<Vec<f64>> = reports
        .iter()
        .map(|x| Some(x.cpu?.as_secs_f64() / x.elapsed.as_secs_f64()))
        .collect();
    match shares {
        Some(s) if !s.is_empty() => format!("{:.0}%", 100.0 * s.iter().sum::<f64>()),
        _ => "-".to_owned(),
    }
}

/// 1, 2, 4, then doubling up to `available_parallelism` (which is included itself).
fn reader_counts() -> Vec<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts = vec![1, 2, 4];
    let mut r = 8;
    while r < cores {
        counts.push(r);
        r *= 2;
    }
    if cores > 4 && !counts.contains(&cores) {
        counts.push(cores);
    }
    counts
}

fn main() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        child(&role);
        return;
    }
    // `cargo bench` passes `--bench`; criterion-style arguments are ignored.
    let quick = std::env::args().skip(1).any(|a| a == "--quick");
    let (warmup, measure) = if quick {
        (Duration::from_millis(50), Duration::from_millis(200))
    } else {
        (Duration::from_millis(200), Duration::from_millis(1000))
    };
    let name = format!("bench-scaling-{}", std::process::id());
    let manager = Manager::builder().create(&name).expect("create manager");
    let d = manager.dict::<u64, u64>(DICT).expect("create dict");
    for k in 0..KEYS {
        d.insert(&k, &k).expect("fill dict");
    }

    println!(
        "SharedDict<u64, u64> ({KEYS} keys): get throughput of R reader processes, \
         {} ms each after {} ms warm-up; available_parallelism = {}",
        measure.as_millis(),
        warmup.as_millis(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    println!(
        "{:>7}  {:>6}  {:>14}  {:>26}  {:>18}  {:>11}  {:>10}",
        "readers",
        "writer",
        "total M gets/s",
        "per reader (min-max)",
        "writer M inserts/s",
        "readers CPU",
        "writer CPU"
    );
    for writer in [false, true] {
        for &r in &reader_counts() {
            let mut roles = vec![Role::Reader; r];
            if writer {
                roles.push(Role::Writer);
            }
            let reports = Helpers::spawn(&name, &roles, warmup, measure).run();
            let (readers, writers): (Vec<_>, Vec<_>) =
                reports.iter().partition(|x| x.role == Role::Reader);
            let rates: Vec<f64> = readers.iter().map(|x| x.per_sec() / 1e6).collect();
            let total: f64 = rates.iter().sum();
            let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
            let max = rates.iter().copied().fold(0.0, f64::max);
            let writes = writers
                .first()
                .map_or("-".to_owned(), |x| format!("{:.3}", x.per_sec() / 1e6));
            println!(
                "{r:>7}  {:>6}  {total:>14.3}  {:>26}  {writes:>18}  {:>11}  {:>10}",
                if writer { "yes" } else { "no" },
                format!("{:.3} ({min:.3}-{max:.3})", total / r as f64),
                cpu_percent(&readers),
                cpu_percent(&writers),
            );
        }
    }
    drop(d);
    drop(manager); // removes the named segment
}
