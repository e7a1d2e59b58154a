//! `multiproc bench`: multiproc side by side with the hardware floor and the references,
//! all measured in the same run, interleaved round by round, and reported as ratios (the
//! only figures that mean something on machines whose two cores are sometimes near and
//! sometimes far apart).

mod cases;

use std::collections::HashMap;
use std::process::{Command, ExitCode};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// The Python reference, shipped in the binary and written to a temporary file to run.
const PYTHON_REFERENCE: &str = include_str!("reference.py");

/// Whether a larger figure is better (throughput) or a smaller one (time).
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

struct Case {
    key: &'static str,
    measure: Box<dyn Fn() -> f64>,
}

/// One line of the comparison.
#[derive(Debug, Serialize)]
struct Row {
    case: String,
    unit: String,
    ours: f64,
    reference: String,
    reference_value: f64,
    /// Above 1 means multiproc is better, whatever the unit.
    ratio: f64,
}

#[derive(Debug, Serialize)]
struct Probe {
    before: f64,
    after: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    probe_ns: Probe,
    results: Vec<Row>,
}

fn cases(k: f64) -> Vec<Case> {
    let n = move |base: f64| (base * k).max(1.0) as u64;
    let case = |key, measure: Box<dyn Fn() -> f64>| Case { key, measure };
    vec![
        case("raw_ring", Box::new(move || cases::raw_ring(n(4e6)))),
        case("spsc", Box::new(move || cases::spsc_queue(n(4e6)))),
        case(
            "crossbeam",
            Box::new(move || cases::crossbeam_bounded(n(2e6))),
        ),
        case("queue", Box::new(move || cases::mpmc_queue(n(2e6)))),
        case(
            "queue_batched",
            Box::new(move || cases::mpmc_queue_batched(n(4e6))),
        ),
        case(
            "sync_channel",
            Box::new(move || cases::std_sync_channel(n(2e6))),
        ),
        case(
            "socketpair",
            Box::new(move || cases::byte_stream(n(3e5), false)),
        ),
        case("pipe", Box::new(move || cases::byte_stream(n(3e5), true))),
        case(
            "round_trip",
            Box::new(move || cases::cache_line_round_trip(n(2e5))),
        ),
        case(
            "spsc_latency",
            Box::new(move || cases::spsc_latency(n(2e5))),
        ),
        case(
            "futex_rtt",
            Box::new(move || cases::futex_round_trip(n(2e4))),
        ),
        case(
            "queue_wake",
            Box::new(move || cases::queue_wake_round_trip(n(2e4))),
        ),
        case(
            "lock",
            Box::new(move || cases::lock_acquire_release(n(2e6))),
        ),
        case("value", Box::new(move || cases::value_increment(n(5e6)))),
        case("dict_get", Box::new(move || cases::shared_dict(n(2e5)).0)),
        case(
            "dict_insert",
            Box::new(move || cases::shared_dict(n(2e5)).1),
        ),
        case(
            "mutex_hashmap_get",
            Box::new(move || cases::mutex_hashmap_get(n(2e6))),
        ),
        case(
            "dict_get_2proc",
            Box::new(move || cases::shared_dict_get_beside_reader(n(1e6))),
        ),
        case(
            "rwlock_hashmap_get_2thr",
            Box::new(move || cases::rwlock_hashmap_get_beside_reader(n(1e6))),
        ),
        case("spawn", Box::new(move || cases::spawn_join(n(40.0)))),
        case("pool_map", Box::new(move || cases::pool_map(n(100.0)))),
    ]
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs the Python reference once; `None` when python3 is missing or fails.
fn python(scale: f64) -> Result<HashMap<String, f64>, String> {
    let path = std::env::temp_dir().join(format!("multiproc-reference-{}.py", std::process::id()));
    std::fs::write(&path, PYTHON_REFERENCE).map_err(|e| format!("cannot write the script: {e}"))?;
    let out = Command::new("python3")
        .arg(&path)
        .arg(scale.to_string())
        .output();
    let _ = std::fs::remove_file(&path);
    let out = out.map_err(|e| format!("python3 is not available ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "python3 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("unreadable python output: {e}"))
}

pub fn run(quick: bool, json: bool, scale: Option<f64>) -> ExitCode {
    let (rounds, k) = if quick { (3, 0.5) } else { (7, 2.0) };
    let k = scale.unwrap_or(k);
    let cases = cases(k);
    let bar = ProgressBar::new((rounds * (cases.len() + 1) + 2) as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();

    bar.set_message("placement probe");
    let probe_rounds = (100_000.0 * k.min(1.0)).max(100.0) as u64;
    let before = cases::cache_line_round_trip(probe_rounds);
    bar.inc(1);

    let mut ours: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut py: HashMap<String, Vec<f64>> = HashMap::new();
    let mut python_error = None;
    for round in 0..rounds {
        for case in &cases {
            bar.set_message(format!("round {}/{rounds}: {}", round + 1, case.key));
            ours.entry(case.key).or_default().push((case.measure)());
            bar.inc(1);
        }
        bar.set_message(format!(
            "round {}/{rounds}: Python multiprocessing",
            round + 1
        ));
        if python_error.is_none() {
            match python(k) {
                Ok(figures) => {
                    for (key, value) in figures {
                        py.entry(key).or_default().push(value);
                    }
                }
                Err(e) => python_error = Some(e),
            }
        }
        bar.inc(1);
    }

    bar.set_message("placement probe");
    let after = cases::cache_line_round_trip(probe_rounds);
    bar.inc(1);
    bar.finish_and_clear();

    let mut m: HashMap<&str, f64> = ours.iter_mut().map(|(k, v)| (*k, median(v))).collect();
    let p: HashMap<String, f64> = py.iter_mut().map(|(k, v)| (k.clone(), median(v))).collect();
    m.insert("half_round_trip", m["round_trip"] / 2.0);

    let mut rows = Vec::new();
    let mut row =
        |case: &str, unit: &str, ours: f64, reference: &str, value: Option<f64>, better: Better| {
            if let Some(value) = value {
                let ratio = match better {
                    Better::Higher => ours / value,
                    Better::Lower => value / ours,
                };
                rows.push(Row {
                    case: case.into(),
                    unit: unit.into(),
                    ours,
                    reference: reference.into(),
                    reference_value: value,
                    ratio,
                });
            }
        };
    use Better::{Higher, Lower};
    let g = |key: &str| m.get(key).copied();
    let py_ = |key: &str| p.get(key).copied();
    let spsc = m["spsc"];
    let queue = m["queue"];
    row(
        "SpscQueue<u64>, 2 processes",
        "msg/s",
        spsc,
        "minimal SPSC ring of u64 (ceiling)",
        g("raw_ring"),
        Higher,
    );
    row(
        "SpscQueue<u64>, 2 processes",
        "msg/s",
        spsc,
        "crossbeam bounded, 2 threads",
        g("crossbeam"),
        Higher,
    );
    row(
        "Queue<(u64, u32)>, 2 processes",
        "msg/s",
        queue,
        "crossbeam bounded, 2 threads",
        g("crossbeam"),
        Higher,
    );
    row(
        "Queue<(u64, u32)>, 2 processes",
        "msg/s",
        queue,
        "std sync_channel, 2 threads",
        g("sync_channel"),
        Higher,
    );
    row(
        "Queue<(u64, u32)>, 2 processes",
        "msg/s",
        queue,
        "unix socketpair, 8 B writes",
        g("socketpair"),
        Higher,
    );
    row(
        "Queue<(u64, u32)>, 2 processes",
        "msg/s",
        queue,
        "pipe, 8 B writes",
        g("pipe"),
        Higher,
    );
    row(
        "Queue<(u64, u32)>, 2 processes",
        "msg/s",
        queue,
        "Python mp.Queue",
        py_("queue_msgs_per_s"),
        Higher,
    );
    row(
        "Queue<(u64, u32)>, 2 processes",
        "msg/s",
        queue,
        "Python mp.Pipe",
        py_("pipe_msgs_per_s"),
        Higher,
    );
    let latency = m["spsc_latency"];
    let batched = m["queue_batched"];
    row(
        "Queue<(u64, u32)>, batches of 64, 2 processes",
        "msg/s",
        batched,
        "crossbeam bounded, 2 threads",
        g("crossbeam"),
        Higher,
    );
    row(
        "Queue<(u64, u32)>, batches of 64, 2 processes",
        "msg/s",
        batched,
        "Python mp.Queue",
        py_("queue_msgs_per_s"),
        Higher,
    );
    row(
        "one-way latency, SpscQueue (spinning)",
        "ns",
        latency,
        "half a cache-line round trip (floor)",
        g("half_round_trip"),
        Lower,
    );
    row(
        "wake a consumer asleep in Queue::get",
        "ns",
        m["queue_wake"],
        "wake a process asleep on a raw futex",
        g("futex_rtt"),
        Lower,
    );
    row(
        "Lock acquire + release",
        "ns",
        m["lock"],
        "Python mp.Lock",
        py_("lock_ns"),
        Lower,
    );
    row(
        "Value<u64> increment",
        "ns",
        m["value"],
        "Python mp.Value += 1 under get_lock()",
        py_("value_ns"),
        Lower,
    );
    let per_op = |key: &str| py_(key).map(|per_second| 1e9 / per_second);
    let (dict_get, dict_insert) = (m["dict_get"], m["dict_insert"]);
    row(
        "SharedDict<u64, u64> get",
        "ns",
        dict_get,
        "Python Manager().dict() get",
        per_op("dict_get_per_s"),
        Lower,
    );
    row(
        "SharedDict<u64, u64> insert",
        "ns",
        dict_insert,
        "Python Manager().dict() set",
        per_op("dict_insert_per_s"),
        Lower,
    );
    row(
        "SharedDict<u64, u64> get",
        "ns",
        dict_get,
        "std Mutex<HashMap>, in-process",
        g("mutex_hashmap_get"),
        Lower,
    );
    row(
        "SharedDict<u64, u64> get, 2nd process reading",
        "ns",
        m["dict_get_2proc"],
        "std RwLock<HashMap> read, 2nd thread reading",
        g("rwlock_hashmap_get_2thr"),
        Lower,
    );
    row(
        "spawn + join a process",
        "ms",
        m["spawn"],
        "Python Process, spawn method",
        py_("spawn_ms"),
        Lower,
    );
    row(
        "Pool::map 1,000 squares, 2 workers",
        "ms",
        m["pool_map"],
        "Python Pool.map",
        py_("pool_map_ms"),
        Lower,
    );

    let report = Report {
        probe_ns: Probe { before, after },
        results: rows,
    };
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("report serialises")
        );
    } else {
        print_table(
            &report,
            started.elapsed().as_secs_f64(),
            python_error.as_deref(),
        );
    }
    ExitCode::SUCCESS
}

fn placement(ns: f64) -> &'static str {
    if ns < 200.0 { "near" } else { "far" }
}

fn human(value: f64, unit: &str) -> String {
    match unit {
        "msg/s" if value >= 1e6 => format!("{:.2} M/s", value / 1e6),
        "msg/s" => format!("{:.0} k/s", value / 1e3),
        "ns" => format!("{value:.0} ns"),
        "ms" => format!("{value:.3} ms"),
        _ => format!("{value:.3} {unit}"),
    }
}

fn print_table(report: &Report, seconds: f64, python_error: Option<&str>) {
    let Probe { before, after } = report.probe_ns;
    println!(
        "placement probe (cache-line round trip between two processes): {before:.0} ns before, {after:.0} ns after ({} / {})",
        placement(before),
        placement(after)
    );
    if let Some(e) = python_error {
        println!("Python references skipped: {e}");
    }
    let header = ["case", "multiproc", "reference", "reference value", "ratio"];
    let cells: Vec<[String; 5]> = report
        .results
        .iter()
        .map(|r| {
            [
                r.case.clone(),
                human(r.ours, &r.unit),
                r.reference.clone(),
                human(r.reference_value, &r.unit),
                format!("{:.2}x", r.ratio),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |row: [&str; 5]| {
        let padded: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(header);
    println!("|{}|", widths.map(|w| "-".repeat(w + 2)).join("|"));
    for row in &cells {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    println!(
        "ratio > 1: multiproc is better (faster, or more messages per second). {seconds:.0} s in all."
    );
}
