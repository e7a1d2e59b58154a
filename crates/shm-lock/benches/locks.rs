//! Criterion benches for shm-lock, with their references measured in the same run:
//!
//! * `lock/uncontended`: `Lock` acquire + release vs a raw robust process-shared pthread
//!   mutex through libc (target: within 1.2x);
//! * `lock/contended`: the same while a second *process* hammers the lock (target: at least
//!   equal);
//! * `event/round_trip`: set in one process to wake-up in another and back;
//! * `value/increment`: `*value.lock()? += 1` and `fetch_add`, and Python's
//!   `multiprocessing.Value` (`with v.get_lock(): v.value += 1`) when `python3` exists
//!   (target: at least 10x faster).
//!
//! The helper processes are this bench binary re-executed with `SHM_LOCK_BENCH_ROLE` set.

use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::Criterion;
use shm_lock::{Event, Lock, RawLock, Value};
use shm_segment::{ObjectKind, Segment, SegmentOptions};

const ROLE_ENV: &str = "SHM_LOCK_BENCH_ROLE";
const NAME_ENV: &str = "SHM_LOCK_BENCH_NAME";

/// A raw robust process-shared pthread mutex in a named segment: the reference.
struct RawMutex {
    seg: Segment,
}

impl RawMutex {
    fn init(seg: &Segment) {
        let m = seg.data().as_ptr().cast::<libc::pthread_mutex_t>();
        // SAFETY: fresh, writable, aligned segment memory; the attr is initialised first.
        unsafe {
            let mut attr = std::mem::zeroed::<libc::pthread_mutexattr_t>();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            libc::pthread_mutex_init(m, &attr);
            libc::pthread_mutexattr_destroy(&mut attr);
        }
    }

    fn create(name: &str) -> Self {
        let seg = SegmentOptions::new(ObjectKind::RAW)
            .len(64)
            .create_with(name, Self::init)
            .unwrap();
        RawMutex { seg }
    }

    fn open(name: &str) -> Self {
        RawMutex {
            seg: SegmentOptions::new(ObjectKind::RAW).open(name).unwrap(),
        }
    }

    fn lock_unlock(&self) {
        let m = self.seg.data().as_ptr().cast::<libc::pthread_mutex_t>();
        // SAFETY: initialised by `init`, mapped while `self.seg` lives.
        unsafe {
            let r = libc::pthread_mutex_lock(m);
            if r == libc::EOWNERDEAD {
                libc::pthread_mutex_consistent(m);
            }
            libc::pthread_mutex_unlock(m);
        }
    }
}

fn helper(role: &str, name: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(ROLE_ENV, role)
        .env(NAME_ENV, name)
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

fn run_helper(role: &str, name: &str) -> ! {
    match role {
        "hammer-lock" => {
            let lock = Lock::open(name).unwrap();
            loop {
                match lock.acquire() {
                    Ok(guard) => drop(guard),
                    Err(e) => panic!("{e}"),
                }
            }
        }
        "hammer-raw" => {
            let raw = RawMutex::open(name);
            loop {
                raw.lock_unlock();
            }
        }
        "pong" => {
            let ping = Event::open(&format!("{name}-ping")).unwrap();
            let pong = Event::open(&format!("{name}-pong")).unwrap();
            loop {
                ping.wait();
                ping.clear();
                pong.set();
            }
        }
        other => panic!("unknown role {other}"),
    }
}

fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn name(tag: &str) -> String {
    format!("bench-{tag}-{}", std::process::id())
}

fn lock_uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock/uncontended");
    let lock = Lock::new().unwrap();
    let raw = RawMutex::create(&name("raw-u"));
    group.bench_function("shm_lock::Lock", |b| {
        b.iter(|| drop(black_box(lock.acquire().unwrap())))
    });
    group.bench_function("raw robust pthread mutex", |b| b.iter(|| raw.lock_unlock()));
    let mut memory = Box::new(std::mem::MaybeUninit::<RawLock>::uninit());
    // SAFETY: our own writable, aligned memory.
    let embedded = unsafe {
        RawLock::init(memory.as_mut_ptr());
        RawLock::from_ptr(memory.as_ptr())
    };
    group.bench_function("shm_lock::RawLock (embedded)", |b| {
        b.iter(|| drop(black_box(embedded.acquire().unwrap())))
    });
    group.finish();
}

fn lock_contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock/contended (2 processes)");
    let lock_name = name("lock-c");
    let lock = Lock::create(&lock_name).unwrap();
    let child = helper("hammer-lock", &lock_name);
    group.bench_function("shm_lock::Lock", |b| {
        b.iter(|| drop(black_box(lock.acquire().unwrap())))
    });
    kill(child);
    if let Err(shm_lock::AcquireError::OwnerDied(guard)) = lock.acquire() {
        guard.mark_consistent();
    }
    let raw_name = name("raw-c");
    let raw = RawMutex::create(&raw_name);
    let child = helper("hammer-raw", &raw_name);
    group.bench_function("raw robust pthread mutex", |b| b.iter(|| raw.lock_unlock()));
    kill(child);
    group.finish();
}

fn event_round_trip(c: &mut Criterion) {
    let base = name("event");
    let ping = Event::create(&format!("{base}-ping")).unwrap();
    let pong = Event::create(&format!("{base}-pong")).unwrap();
    let child = helper("pong", &base);
    c.bench_function("event/round_trip (2 processes)", |b| {
        b.iter(|| {
            ping.set();
            pong.wait();
            pong.clear();
        })
    });
    kill(child);
}

fn value_increment(c: &mut Criterion) {
    let mut group = c.benchmark_group("value/increment");
    let value = Value::new(0u64).unwrap();
    group.bench_function("lock() += 1", |b| b.iter(|| *value.lock().unwrap() += 1));
    group.bench_function("fetch_add(1)", |b| b.iter(|| value.fetch_add(1)));
    group.finish();
}

/// Nanoseconds per operation of Python's multiprocessing, or `None` without python3.
fn python_ns(body: &str) -> Option<f64> {
    let script = format!(
        "import multiprocessing as mp, time\nn = 200000\nlock = mp.Lock()\nv = mp.Value('q', 0)\n\
         t = time.perf_counter()\nfor _ in range(n):\n{body}\nprint((time.perf_counter() - t) / n * 1e9)\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

fn ns_per_op(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

/// Python's numbers cannot go through criterion; print them with ours, measured
/// back to back in this run, as ratios.
fn python_comparison() {
    let lock = Lock::new().unwrap();
    let value = Value::new(0u64).unwrap();
    let n = 200_000;
    let ours_lock = ns_per_op(n, || drop(lock.acquire().unwrap()));
    let ours_value = ns_per_op(n, || *value.lock().unwrap() += 1);
    let ours_fetch = ns_per_op(n, || {
        value.fetch_add(1);
    });
    let py_lock = python_ns("    lock.acquire(); lock.release()");
    let py_value = python_ns("    with v.get_lock(): v.value += 1");
    match (py_lock, py_value) {
        (Some(py_lock), Some(py_value)) => {
            println!("python comparison (ns/op, same run):");
            println!(
                "  Lock acquire+release: shm-lock {ours_lock:.1}, python {py_lock:.1} ({:.1}x)",
                py_lock / ours_lock
            );
            println!(
                "  Value += 1 locked:    shm-lock {ours_value:.1}, python {py_value:.1} ({:.1}x)",
                py_value / ours_value
            );
            println!(
                "  Value fetch_add:      shm-lock {ours_fetch:.1}, python {py_value:.1} ({:.1}x)",
                py_value / ours_fetch
            );
        }
        _ => println!("python comparison skipped: python3 with multiprocessing not found"),
    }
}

fn main() {
    if let (Ok(role), Ok(name)) = (std::env::var(ROLE_ENV), std::env::var(NAME_ENV)) {
        run_helper(&role, &name);
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    lock_uncontended(&mut c);
    lock_contended(&mut c);
    event_round_trip(&mut c);
    value_increment(&mut c);
    python_comparison();
    c.final_summary();
}
