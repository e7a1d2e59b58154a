//! Criterion benches for shm-manager's dict, with their references measured in the same
//! run:
//!
//! * `dict/get`, `dict/insert`, `dict/update_with` on small entries (`u64 -> u64`, 1024
//!   keys): [`SharedDict`] alone (`1proc`), [`SharedDict`] while a second *process* reads the
//!   same dict in a loop (`2proc`), and an in-process `std::sync::Mutex<HashMap>`
//!   (`mutex_hashmap`; target: `get` at least 0.3x its speed);
//! * Python's `multiprocessing.Manager().dict()` doing the same operations, timed by a
//!   small `python3` script when `python3` exists (target: at least 100x slower than
//!   ours), printed with the ratios before the criterion groups.
//!
//! The helper process is this bench binary re-executed with `SHM_MANAGER_BENCH_ROLE` set.

use std::collections::HashMap;
use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use shm_manager::{Manager, SharedDict};

const ROLE_ENV: &str = "SHM_MANAGER_BENCH_ROLE";
const NAME_ENV: &str = "SHM_MANAGER_BENCH_NAME";
const KEYS: u64 = 1024;

const PYTHON: &str = r#"
import sys, time
from multiprocessing import Manager
if __name__ == "__main__":
    n = int(sys.argv[1])
    with Manager() as m:
        d = m.dict({i: i for i in range(1024)})
        t = time.perf_counter()
        for i in range(n):
            d[i & 1023]
        get = (time.perf_counter() - t) / n
        t = time.perf_counter()
        for i in range(n):
            d[i & 1023] = i
        ins = (time.perf_counter() - t) / n
        t = time.perf_counter()
        for i in range(n):
            k = i & 1023
            d[k] = d[k] + 1  # what Python users write; not even atomic
        upd = (time.perf_counter() - t) / n
        print(get * 1e9, ins * 1e9, upd * 1e9)
"#;

fn python_ns_per_op() -> Option<[f64; 3]> {
    let out = Command::new("python3")
        .args(["-c", PYTHON, "20000"])
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() == 3).then(|| [v[0], v[1], v[2]])
}

fn ours_ns_per_op(d: &SharedDict<u64, u64>) -> [f64; 3] {
    let n = 200_000u64;
    let time = |f: &dyn Fn(u64)| {
        let t = Instant::now();
        for i in 0..n {
            f(i);
        }
        t.elapsed().as_nanos() as f64 / n as f64
    };
    [
        time(&|i| {
            black_box(d.get(&(i % KEYS)).unwrap());
        }),
        time(&|i| {
            black_box(d.insert(&(i % KEYS), &i).unwrap());
        }),
        time(&|i| {
            d.update_with(&(i % KEYS), |v| *v.get_or_insert(0) += 1)
                .unwrap()
        }),
    ]
}

/// The second process: reads the dict in a loop until killed.
fn reader_child(name: &str) {
    let m = Manager::open(name).unwrap();
    let d = m.dict::<u64, u64>("bench").unwrap();
    println!("ready");
    let mut i = 0u64;
    loop {
        black_box(d.get(&(i % KEYS)).unwrap());
        i = i.wrapping_add(7);
    }
}

fn spawn_reader(name: &str) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(ROLE_ENV, "reader")
        .env(NAME_ENV, name)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    child
}

fn bench_ops(
    c: &mut Criterion,
    d: &SharedDict<u64, u64>,
    reference: &Mutex<HashMap<u64, u64>>,
    label: &str,
    with_reference: bool,
) {
    let mut g = c.benchmark_group("dict");
    g.bench_function(format!("get/{label}"), |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(d.get(&(i % KEYS)).unwrap())
        })
    });
    g.bench_function(format!("insert/{label}"), |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = i.wrapping_add(1);
            d.insert(&(i % KEYS), &i).unwrap()
        })
    });
    g.bench_function(format!("update_with/{label}"), |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = i.wrapping_add(1);
            d.update_with(&(i % KEYS), |v| *v.get_or_insert(0) += 1)
                .unwrap()
        })
    });
    if with_reference {
        g.bench_function("get/mutex_hashmap", |b| {
            let mut i = 0u64;
            b.iter(|| {
                i = i.wrapping_add(1);
                black_box(reference.lock().unwrap().get(&(i % KEYS)).copied())
            })
        });
        g.bench_function("insert/mutex_hashmap", |b| {
            let mut i = 0u64;
            b.iter(|| {
                i = i.wrapping_add(1);
                reference.lock().unwrap().insert(i % KEYS, i)
            })
        });
        g.bench_function("update_with/mutex_hashmap", |b| {
            let mut i = 0u64;
            b.iter(|| {
                i = i.wrapping_add(1);
                *reference.lock().unwrap().entry(i % KEYS).or_insert(0) += 1;
            })
        });
    }
    g.finish();
}

fn main() {
    if std::env::var(ROLE_ENV).is_ok() {
        reader_child(&std::env::var(NAME_ENV).unwrap());
        return;
    }
    let name = format!("bench-manager-{}", std::process::id());
    let manager = Manager::builder().create(&name).unwrap();
    let d = manager.dict::<u64, u64>("bench").unwrap();
    d.extend((0..KEYS).map(|k| (k, k))).unwrap();
    let reference = Mutex::new((0..KEYS).map(|k| (k, k)).collect::<HashMap<_, _>>());

    let ours = ours_ns_per_op(&d);
    match python_ns_per_op() {
        Some(py) => {
            for (i, op) in ["get", "insert", "update_with"].iter().enumerate() {
                println!(
                    "python Manager().dict() {op}: {:.0} ns/op; SharedDict {:.0} ns/op: {:.0}x faster",
                    py[i],
                    ours[i],
                    py[i] / ours[i]
                );
            }
        }
        None => println!("python3 with multiprocessing not found: Python reference skipped"),
    }

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    bench_ops(&mut c, &d, &reference, "1proc", true);
    let mut reader = spawn_reader(&name);
    bench_ops(&mut c, &d, &reference, "2proc", false);
    let _ = reader.kill();
    let _ = reader.wait();
    c.final_summary();
}
