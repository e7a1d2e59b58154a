//! The hot put/get paths of `SpscQueue` and `Queue` across two real processes, with the
//! references of the queue issue measured in the same run, interleaved:
//!
//! - `floor/raw_pingpong_rt/{start,end}`: a raw cache-line ping-pong between two processes
//!   (the latency floor), at the start and at the end of the run (the placement of the two
//!   cores can change: about 80 ns near, about 400 ns far);
//! - `throughput/*`: single puts of `u64` through `SpscQueue` and `Queue`, between two
//!   rounds (`_b`: the second) of the references: a minimal SPSC ring of `u64` across two
//!   processes with cached indices (the ceiling), crossbeam-channel bounded and std
//!   `sync_channel` (two threads), a unix socketpair (two threads, one `write` per 8-byte
//!   message); Python's `multiprocessing.Queue` (when `python3` exists, outside criterion);
//!   then `SpscQueue` and `Queue` by message size (`Vec<u8>` of 8 B, 64 B, 1 KiB, 64 KiB);
//! - `diag/*`, `throughput/diag_*`, `latency_rt/diag_*`: the price of single hot-path
//!   steps (a `getpid` system call, a `SeqCst` fence, the minimal ring with the queues'
//!   wake check added, a ping-pong over two minimal rings);
//! - `latency_rt/*`: ping-pong round trips over two queues with spinning getters (one-way
//!   latency = round trip / 2);
//! - `wakeup_rt/*`: round trips with both getters parked in the futex (`spin_limit` 0),
//!   against a raw futex round trip between two processes.
//!
//! The parent runs on CPU 0, every child and helper thread on CPU 1. At the end a summary
//! prints each figure (median and best of criterion's samples) and the issue's targets as
//! same-run ratios of both: on a shared machine the best sample is the undisturbed cost.
//!
//! ```sh
//! cargo bench -p shm-queue --bench queue
//! ```

mod common;

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shm_process::Process;
use shm_queue::{Queue, SpscQueue};
use shm_segment::Segment;

use common::{lines, pin, record, share, word};

/// The message sizes measured with `Vec<u8>` payloads: (label, bytes, capacity).
const SIZES: [(&str, usize, usize); 4] = [
    ("8B", 8, 1024),
    ("64B", 64, 1024),
    ("1KiB", 1024, 1024),
    ("64KiB", 64 * 1024, 64),
];

/// Encoding overhead allowed on top of a payload (postcard's length varint).
const SLACK: usize = 16;

/// Child: attaches the consumer half of `q` and takes messages until the queue is closed
/// and drained, publishing the count in line 0 of `ctl`.
fn spsc_sink<T: Serialize + DeserializeOwned>((q, ctl): (SpscQueue<T>, Segment)) -> u64 {
    pin(1);
    let mut rx = q.consumer().expect("attach the consumer");
    let consumed = word(&ctl, 0);
    let mut n = 0u64;
    while let Ok(v) = rx.get() {
        std::hint::black_box(v);
        n += 1;
        // [count] Release: pairs with the parent's Acquire spin on the count.
        consumed.store(n, Ordering::Release);
    }
    n
}

/// Child: as [`spsc_sink`] for a [`Queue`].
fn queue_sink<T: Serialize + DeserializeOwned>((q, ctl): (Queue<T>, Segment)) -> u64 {
    pin(1);
    let consumed = word(&ctl, 0);
    let mut n = 0u64;
    while let Ok(v) = q.get() {
        std::hint::black_box(v);
        n += 1;
        // [count] Release: pairs with the parent's Acquire spin on the count.
        consumed.store(n, Ordering::Release);
    }
    n
}

/// One throughput bench: `put(i)` puts one message; the call's time runs from the first
/// put until the child counted every message.
fn throughput(c: &mut Criterion, name: &str, consumed: &AtomicU64, mut put: impl FnMut(u64)) {
    let id = format!("throughput/{name}");
    let mut sent = 0u64;
    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                put(i);
            }
            sent += iters;
            // [count] Acquire: pairs with the child's Release store of the count.
            while consumed.load(Ordering::Acquire) < sent {
                spin_loop();
            }
            record(&id, iters, start.elapsed())
        })
    });
    group.finish();
}

/// `SpscQueue<T>` throughput with a consumer in a child process.
fn spsc_throughput<T: Serialize + DeserializeOwned>(
    c: &mut Criterion,
    name: &str,
    q: SpscQueue<T>,
    make: impl Fn(u64) -> T,
) {
    let ctl = lines(1, 0);
    let mut child = Process::spawn(spsc_sink::<T>, (q.clone(), share(&ctl))).expect("spawn");
    let mut tx = q.producer().expect("attach the producer");
    throughput(c, name, word(&ctl, 0), |i| {
        if tx.put(make(i)).is_err() {
            panic!("put failed");
        }
    });
    q.close();
    child.join().expect("join the consumer");
}

/// `Queue<T>` throughput with a consumer in a child process.
fn queue_throughput<T: Serialize + DeserializeOwned>(
    c: &mut Criterion,
    name: &str,
    q: Queue<T>,
    make: impl Fn(u64) -> T,
) {
    let ctl = lines(1, 0);
    let mut child = Process::spawn(queue_sink::<T>, (q.clone(), share(&ctl))).expect("spawn");
    throughput(c, name, word(&ctl, 0), |i| {
        if q.put(make(i)).is_err() {
            panic!("put failed");
        }
    });
    q.close();
    child.join().expect("join the consumer");
}

fn u64_throughput(c: &mut Criterion) {
    let spsc = SpscQueue::<u64>::builder()
        .capacity(1024)
        .max_message_size(SLACK)
        .create_anonymous()
        .expect("spsc");
    spsc_throughput(c, "spsc_u64", spsc, |i| i);
    let queue = Queue::<u64>::builder()
        .capacity(1024)
        .max_message_size(SLACK)
        .create_anonymous()
        .expect("queue");
    queue_throughput(c, "queue_u64", queue, |i| i);
}

fn sized_throughput(c: &mut Criterion) {
    for (label, bytes, capacity) in SIZES {
        let payload = vec![0xA5u8; bytes];
        let spsc = SpscQueue::<Vec<u8>>::builder()
            .capacity(capacity)
            .max_message_size(bytes + SLACK)
            .buffer_size(capacity * (bytes + 2 * SLACK))
            .create_anonymous()
            .expect("spsc");
        spsc_throughput(c, &format!("spsc_vec_{label}"), spsc, |_| payload.clone());
        let queue = Queue::<Vec<u8>>::builder()
            .capacity(capacity)
            .max_message_size(bytes + SLACK)
            .create_anonymous()
            .expect("queue");
        queue_throughput(c, &format!("queue_vec_{label}"), queue, |_| payload.clone());
    }
}

/// Child: echoes every message of `a` into `b` (SPSC halves) with `spin` retries.
fn spsc_echo((a, b, spin): (SpscQueue<u64>, SpscQueue<u64>, u32)) {
    pin(1);
    let mut rx = a.consumer().expect("attach a's consumer");
    let mut tx = b.producer().expect("attach b's producer");
    rx.set_spin_limit(spin);
    tx.set_spin_limit(spin);
    while let Ok(v) = rx.get() {
        if tx.put(v).is_err() {
            return;
        }
    }
}

/// Child: echoes every message of `a` into `b` (MPMC queues) with `spin` retries.
fn queue_echo((mut a, mut b, spin): (Queue<u64>, Queue<u64>, u32)) {
    pin(1);
    a.set_spin_limit(spin);
    b.set_spin_limit(spin);
    while let Ok(v) = a.get() {
        if b.put(v).is_err() {
            return;
        }
    }
}

/// A round-trip bench: `round(i)` sends `i` and waits for the echo.
fn round_trip(c: &mut Criterion, group: &str, name: &str, mut round: impl FnMut(u64)) {
    let id = format!("{group}/{name}");
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                round(i);
            }
            record(&id, iters, start.elapsed())
        })
    });
    g.finish();
}

fn spsc_pair(spin: u32) -> (SpscQueue<u64>, SpscQueue<u64>) {
    let make = || {
        SpscQueue::<u64>::builder()
            .capacity(64)
            .max_message_size(SLACK)
            .spin_limit(spin)
            .create_anonymous()
            .expect("spsc")
    };
    (make(), make())
}

fn queue_pair(spin: u32) -> (Queue<u64>, Queue<u64>) {
    let make = || {
        Queue::<u64>::builder()
            .capacity(64)
            .max_message_size(SLACK)
            .spin_limit(spin)
            .create_anonymous()
            .expect("queue")
    };
    (make(), make())
}

/// Ping-pong over two `SpscQueue<u64>`s with `spin` retries on both sides.
fn spsc_round_trips(c: &mut Criterion, group: &str, name: &str, spin: u32) {
    let (a, b) = spsc_pair(spin);
    let mut child = Process::spawn(spsc_echo, (a.clone(), b.clone(), spin)).expect("spawn");
    let mut tx = a.producer().expect("attach a's producer");
    let mut rx = b.consumer().expect("attach b's consumer");
    round_trip(c, group, name, |i| {
        if tx.put(i).is_err() {
            panic!("put failed");
        }
        let back = rx.get().expect("echo");
        debug_assert_eq!(back, i);
    });
    a.close();
    child.join().expect("join the echo child");
}

/// Ping-pong over two `Queue<u64>`s with `spin` retries on both sides.
fn queue_round_trips(c: &mut Criterion, group: &str, name: &str, spin: u32) {
    let (a, b) = queue_pair(spin);
    let mut child = Process::spawn(queue_echo, (a.clone(), b.clone(), spin)).expect("spawn");
    round_trip(c, group, name, |i| {
        if a.put(i).is_err() {
            panic!("put failed");
        }
        let back = b.get().expect("echo");
        debug_assert_eq!(back, i);
    });
    a.close();
    child.join().expect("join the echo child");
}

fn main() {
    // A spawned child is this bench binary again: run its function and exit.
    shm_process::init();
    pin(0);
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .configure_from_args();

    common::raw_pingpong(&mut c, "start");

    // Throughput of u64 single puts, interleaved with the ceiling and the peers.
    common::min_ring(&mut c, "ref_min_ring_u64", false);
    common::thread_peers(&mut c, "");
    u64_throughput(&mut c);
    common::min_ring(&mut c, "ref_min_ring_u64_b", false);
    common::thread_peers(&mut c, "_b");
    common::min_ring(&mut c, "diag_min_ring_u64_with_notify", true);
    common::python_queue();
    sized_throughput(&mut c);
    common::diagnostics(&mut c);

    // Spinning one-way latency (round trip / 2) against the raw ping-pong.
    common::raw_pingpong(&mut c, "mid");
    common::ring_pingpong(&mut c);
    spsc_round_trips(&mut c, "latency_rt", "spsc_u64_spin", u32::MAX);
    queue_round_trips(&mut c, "latency_rt", "queue_u64_spin", u32::MAX);

    // Blocking wake-up round trips against the raw futex round trip.
    common::raw_futex(&mut c);
    spsc_round_trips(&mut c, "wakeup_rt", "spsc_u64_park", 0);
    queue_round_trips(&mut c, "wakeup_rt", "queue_u64_park", 0);

    common::raw_pingpong(&mut c, "end");

    c.final_summary();
    if common::measuring() {
        common::summary();
    }
}
