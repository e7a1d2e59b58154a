//! Shared pieces of the shm-queue benches: CPU pinning, raw shared cache lines, the
//! reference measurements (the hardware floor and ceiling, and the peers), and a same-run
//! summary of ratios against the targets of the queue issue.
//!
//! Every cross-process reference runs its other side in a child spawned with
//! [`shm_process::Process::spawn`]; the parent is pinned to CPU 0 and every child (and
//! every helper thread) to CPU 1, so the placement is the same for all measurements.

use std::collections::BTreeMap;
use std::hint::spin_loop;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use shm_process::Process;
use shm_segment::futex;
use shm_segment::{ObjectKind, Segment, SegmentOptions};

/// Bytes between two shared words that must not share a cache line (adjacent-line
/// prefetch pairs 64-byte lines, so 128).
pub const LINE: usize = 128;

/// Slots of the minimal reference ring.
const RING_SLOTS: usize = 1024;
/// Line index where the minimal ring's slots start.
const RING_FIRST_LINE: usize = 4;

/// Pins the calling thread to `cpu`; ignored where that CPU does not exist.
pub fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// A new anonymous raw segment of `lines` cache lines plus `extra` bytes, zeroed.
pub fn lines(lines: usize, extra: usize) -> Segment {
    SegmentOptions::new(ObjectKind::RAW)
        .len(lines * LINE + extra)
        .create_anonymous()
        .expect("create a raw segment")
}

/// A second handle on `seg` (its own mapping of the same memory), to give to a child.
pub fn share(seg: &Segment) -> Segment {
    let fd = seg.fd().try_clone_to_owned().expect("dup the segment fd");
    SegmentOptions::new(ObjectKind::RAW)
        .open_fd(fd)
        .expect("reopen the segment")
}

/// The 64-bit word at the start of cache line `line` of `seg`.
///
/// # Panics
///
/// If the line lies outside the segment's data area.
pub fn word(seg: &Segment, line: usize) -> &AtomicU64 {
    assert!(
        (line + 1) * LINE <= seg.data_len(),
        "line {line} out of range"
    );
    // SAFETY: the data area is mapped for `data_len` bytes (checked above), 128-byte
    // aligned, zero-initialised (a valid `AtomicU64`), and only ever accessed through
    // atomics by every process; the reference lives no longer than `seg`'s mapping.
    unsafe { &*seg.data().as_ptr().add(line * LINE).cast::<AtomicU64>() }
}

/// The 32-bit futex word at the start of cache line `line` of `seg`.
///
/// # Panics
///
/// If the line lies outside the segment's data area.
pub fn word32(seg: &Segment, line: usize) -> &AtomicU32 {
    assert!(
        (line + 1) * LINE <= seg.data_len(),
        "line {line} out of range"
    );
    // SAFETY: as in `word`: mapped, aligned, zeroed, atomics only, bounded by `seg`.
    unsafe { &*seg.data().as_ptr().add(line * LINE).cast::<AtomicU32>() }
}

/// Slot `i` (mod the ring size) of the minimal reference ring in `seg`.
fn ring_slot(seg: &Segment, i: u64) -> &AtomicU64 {
    let index = (i % RING_SLOTS as u64) as usize;
    let offset = RING_FIRST_LINE * LINE + index * 8;
    assert!(offset + 8 <= seg.data_len());
    // SAFETY: in bounds (checked), 8-aligned (the data area is 128-aligned), zeroed, and
    // accessed through atomics only by both processes.
    unsafe { &*seg.data().as_ptr().add(offset).cast::<AtomicU64>() }
}

/// Whether this run measures (`cargo bench`) rather than smoke-tests (`cargo test`).
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

// ---------------------------------------------------------------------------------------
// Same-run recording and the summary.

type Calls = BTreeMap<String, Vec<(u64, Duration)>>;

fn calls() -> &'static Mutex<Calls> {
    static CALLS: Mutex<Calls> = Mutex::new(BTreeMap::new());
    &CALLS
}

/// Records one timed call of `iters` iterations of benchmark `id` and returns `elapsed`
/// (for `iter_custom`).
pub fn record(id: &str, iters: u64, elapsed: Duration) -> Duration {
    calls()
        .lock()
        .expect("recorder")
        .entry(id.to_owned())
        .or_default()
        .push((iters, elapsed));
    elapsed
}

/// Nanoseconds per iteration of `id` as (median, best): over the calls with at least a
/// quarter of the most iterations seen (criterion's samples, not the first warm-up calls).
/// On a shared machine a sample can lose a time slice to another process; the best
/// sample is what the path costs when it is not disturbed.
pub fn ns_per_iter(id: &str) -> Option<(f64, f64)> {
    let calls = calls().lock().expect("recorder");
    let list = calls.get(id)?;
    let most = list.iter().map(|c| c.0).max()?;
    let mut per: Vec<f64> = list
        .iter()
        .filter(|c| c.0 * 4 >= most && c.0 > 0)
        .map(|c| c.1.as_nanos() as f64 / c.0 as f64)
        .collect();
    per.sort_by(f64::total_cmp);
    Some((*per.get(per.len() / 2)?, *per.first()?))
}

/// Prints every recorded figure and the targets of the issue as same-run ratios, of the
/// medians and of the best samples.
pub fn summary() {
    let ids: Vec<String> = calls().lock().expect("recorder").keys().cloned().collect();
    if ids.is_empty() {
        return;
    }
    println!(
        "\n=== shm-queue same-run summary (ns per iteration: median and best sample; M/s = 1000 / median) ==="
    );
    for id in &ids {
        if let Some((median, best)) = ns_per_iter(id) {
            println!(
                "{id:<52} {median:>12.1} ns  {best:>12.1} ns  {:>9.3} M/s",
                1000.0 / median
            );
        }
    }
    for pick in [0, 1] {
        let get = |id: &str| ns_per_iter(id).map(|(m, b)| if pick == 0 { m } else { b });
        let label = if pick == 0 { "medians" } else { "best samples" };
        targets(label, &get);
    }
}

/// Prints the targets with the figures that `get` picks.
fn targets(label: &str, get: &dyn Fn(&str) -> Option<f64>) {
    let place = |ns: f64| if ns < 200.0 { "near" } else { "far" };
    println!("\n=== targets, ratios of {label} of this run ===");
    for when in ["start", "mid", "end"] {
        if let Some(ns) = get(&format!("floor/raw_pingpong_rt/{when}")) {
            println!(
                "placement: raw ping-pong round trip at the {when}: {ns:.0} ns ({})",
                place(ns)
            );
        }
    }
    let mean = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some((a + b) / 2.0),
        (a, b) => a.or(b),
    };
    // The latency benches run right after the "mid" ping-pong; it is their reference.
    let raw_rt = get("floor/raw_pingpong_rt/mid").or(mean(
        get("floor/raw_pingpong_rt/start"),
        get("floor/raw_pingpong_rt/end"),
    ));
    let ring = mean(
        get("throughput/ref_min_ring_u64"),
        get("throughput/ref_min_ring_u64_b"),
    );
    let ratio =
        |label: &str, ours: Option<f64>, reference: Option<f64>, bound: f64, speed: bool| {
            let (Some(ours), Some(reference)) = (ours, reference) else {
                println!("{label:<62} n/a (a figure is missing)");
                return;
            };
            if speed {
                // Throughput ratio: reference time / our time.
                let r = reference / ours;
                let met = if r >= bound { "MET" } else { "NOT MET" };
                println!("{label:<62} {r:>8.3}x  (target >= {bound}x)  {met}");
            } else {
                let r = ours / reference;
                let met = if r <= bound { "MET" } else { "NOT MET" };
                println!("{label:<62} {r:>8.3}x  (target <= {bound}x)  {met}");
            }
        };
    let spsc = get("throughput/spsc_u64");
    let queue = get("throughput/queue_u64");
    let cb = mean(
        get("throughput/crossbeam_bounded_u64_threads"),
        get("throughput/crossbeam_bounded_u64_threads_b"),
    );
    ratio(
        "SpscQueue<u64> throughput / minimal ring",
        spsc,
        ring,
        0.5,
        true,
    );
    ratio(
        "SpscQueue<u64> throughput / crossbeam bounded",
        spsc,
        cb,
        5.0,
        true,
    );
    ratio(
        "Queue<u64> throughput / crossbeam bounded",
        queue,
        cb,
        1.0,
        true,
    );
    ratio(
        "Queue<u64> throughput / Python multiprocessing.Queue",
        queue,
        get("throughput/ref_python_mp_queue_int"),
        100.0,
        true,
    );
    ratio(
        "SpscQueue<u64> spinning one-way latency / (raw round trip / 2)",
        get("latency_rt/spsc_u64_spin"),
        raw_rt,
        2.0,
        false,
    );
    ratio(
        "Queue<u64> spinning one-way latency / (raw round trip / 2)",
        get("latency_rt/queue_u64_spin"),
        raw_rt,
        2.0,
        false,
    );
    let futex_rt = get("wakeup_rt/ref_raw_futex");
    ratio(
        "SpscQueue<u64> blocking wake-up round trip / raw futex",
        get("wakeup_rt/spsc_u64_park"),
        futex_rt,
        1.2,
        false,
    );
    ratio(
        "Queue<u64> blocking wake-up round trip / raw futex",
        get("wakeup_rt/queue_u64_park"),
        futex_rt,
        1.2,
        false,
    );
}

// ---------------------------------------------------------------------------------------
// The floor: a raw cache-line ping-pong between two processes.

/// Child side of the raw ping-pong: answers every odd value with the next even one.
fn pingpong_child(seg: Segment) {
    pin(1);
    let w = word(&seg, 0);
    let stop = word(&seg, 1);
    loop {
        let v = w.load(Ordering::Acquire);
        if v & 1 == 1 {
            // [pp] Release: pairs with the parent's Acquire spin on the word.
            w.store(v + 1, Ordering::Release);
        } else if stop.load(Ordering::Relaxed) != 0 {
            return;
        } else {
            spin_loop();
        }
    }
}

/// The raw cache-line ping-pong round trip between two processes (the latency floor),
/// recorded as `floor/raw_pingpong_rt/<when>`.
pub fn raw_pingpong(c: &mut Criterion, when: &str) {
    let seg = lines(2, 0);
    let mut child = Process::spawn(pingpong_child, share(&seg)).expect("spawn");
    let w = word(&seg, 0);
    let mut v = 0u64;
    let mut group = c.benchmark_group("floor");
    group.throughput(Throughput::Elements(1));
    let id = format!("floor/raw_pingpong_rt/{when}");
    group.bench_function(format!("raw_pingpong_rt/{when}"), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                // [pp] Release: pairs with the child's Acquire load.
                w.store(v + 1, Ordering::Release);
                while w.load(Ordering::Acquire) != v + 2 {
                    spin_loop();
                }
                v += 2;
            }
            record(&id, iters, start.elapsed())
        })
    });
    group.finish();
    word(&seg, 1).store(1, Ordering::Relaxed);
    child.join().expect("join the ping-pong child");
}

// ---------------------------------------------------------------------------------------
// The ceiling: a minimal SPSC ring of u64 across two processes, cached indices, one
// index publication per item (like single puts).

/// Consumer side of the minimal ring: drains until stopped, returns the sum. With
/// `notify`, each index store is followed by what the queues' `Event::notify` does (a
/// `SeqCst` fence and a load of a waiter count), to price that step.
fn ring_child((seg, notify): (Segment, bool)) -> u64 {
    pin(1);
    let waiters = word(&seg, 3);
    let tail_w = word(&seg, 0);
    let head_w = word(&seg, 1);
    let stop = word(&seg, 2);
    let mut head = head_w.load(Ordering::Relaxed);
    let mut cached_tail = head;
    let mut sum = 0u64;
    loop {
        if head == cached_tail {
            // [ring-tail] Acquire: pairs with the producer's Release store of the tail.
            cached_tail = tail_w.load(Ordering::Acquire);
            if head == cached_tail {
                if stop.load(Ordering::Relaxed) != 0 {
                    return sum;
                }
                spin_loop();
                continue;
            }
        }
        sum = sum.wrapping_add(ring_slot(&seg, head).load(Ordering::Relaxed));
        head += 1;
        // [ring-head] Release: pairs with the producer's Acquire load of the head.
        head_w.store(head, Ordering::Release);
        if notify {
            fake_notify(waiters);
        }
    }
}

/// What `Event::notify` of the queues does after each publication: a `SeqCst` fence and a
/// load of the waiter count (which is 0 here, so no wake follows).
fn fake_notify(waiters: &AtomicU64) {
    std::sync::atomic::fence(Ordering::SeqCst);
    if waiters.load(Ordering::Relaxed) != 0 {
        spin_loop();
    }
}

/// Throughput of the minimal ring: `throughput/<name>`; with `notify`, both sides also do
/// what the queues' wake check does (see [`fake_notify`]).
pub fn min_ring(c: &mut Criterion, name: &str, notify: bool) {
    let seg = lines(RING_FIRST_LINE, RING_SLOTS * 8);
    let mut child = Process::spawn(ring_child, (share(&seg), notify)).expect("spawn");
    let waiters = word(&seg, 3);
    let tail_w = word(&seg, 0);
    let head_w = word(&seg, 1);
    let (mut tail, mut cached_head) = (0u64, 0u64);
    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Elements(1));
    let id = format!("throughput/{name}");
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                while tail - cached_head == RING_SLOTS as u64 {
                    // [ring-head] Acquire: pairs with the consumer's Release store.
                    cached_head = head_w.load(Ordering::Acquire);
                    if tail - cached_head == RING_SLOTS as u64 {
                        spin_loop();
                    }
                }
                ring_slot(&seg, tail).store(i, Ordering::Relaxed);
                tail += 1;
                // [ring-tail] Release: pairs with the consumer's Acquire load.
                tail_w.store(tail, Ordering::Release);
                if notify {
                    fake_notify(waiters);
                }
            }
            // [ring-head] Acquire, as above: the consumer has taken everything.
            while head_w.load(Ordering::Acquire) != tail {
                spin_loop();
            }
            record(&id, iters, start.elapsed())
        })
    });
    group.finish();
    word(&seg, 2).store(1, Ordering::Relaxed);
    child.join().expect("join the ring child");
}

/// One side of a minimal ring in a segment laid out as for [`min_ring`]: its own index,
/// a cached copy of the other side's, and the segment.
struct RingEnd<'a> {
    seg: &'a Segment,
    mine: u64,
    cached: u64,
}

impl RingEnd<'_> {
    /// Producer: publishes `v` (the ring never fills in a ping-pong).
    fn push(&mut self, v: u64) {
        while self.mine - self.cached == RING_SLOTS as u64 {
            // [ring-head] Acquire: pairs with the consumer's Release store.
            self.cached = word(self.seg, 1).load(Ordering::Acquire);
        }
        ring_slot(self.seg, self.mine).store(v, Ordering::Relaxed);
        self.mine += 1;
        // [ring-tail] Release: pairs with the consumer's Acquire load.
        word(self.seg, 0).store(self.mine, Ordering::Release);
    }

    /// Consumer: the next value, spinning; `None` once line 2 (stop) is set.
    fn pop(&mut self) -> Option<u64> {
        while self.mine == self.cached {
            // [ring-tail] Acquire: pairs with the producer's Release store.
            self.cached = word(self.seg, 0).load(Ordering::Acquire);
            if self.mine == self.cached {
                if word(self.seg, 2).load(Ordering::Relaxed) != 0 {
                    return None;
                }
                spin_loop();
            }
        }
        let v = ring_slot(self.seg, self.mine).load(Ordering::Relaxed);
        self.mine += 1;
        // [ring-head] Release: pairs with the producer's Acquire load.
        word(self.seg, 1).store(self.mine, Ordering::Release);
        Some(v)
    }
}

/// Child of the ring ping-pong: echoes ring `a` into ring `b`.
fn ring_echo_child((a, b): (Segment, Segment)) {
    pin(1);
    let mut rx = RingEnd {
        seg: &a,
        mine: 0,
        cached: 0,
    };
    let mut tx = RingEnd {
        seg: &b,
        mine: 0,
        cached: 0,
    };
    while let Some(v) = rx.pop() {
        tx.push(v);
    }
}

/// A ping-pong over two minimal rings (index line and data line apart, as in the
/// queues): `latency_rt/diag_min_ring_pingpong`, the floor of an index-based ring.
pub fn ring_pingpong(c: &mut Criterion) {
    let a = lines(RING_FIRST_LINE, RING_SLOTS * 8);
    let b = lines(RING_FIRST_LINE, RING_SLOTS * 8);
    let mut child = Process::spawn(ring_echo_child, (share(&a), share(&b))).expect("spawn");
    let mut tx = RingEnd {
        seg: &a,
        mine: 0,
        cached: 0,
    };
    let mut rx = RingEnd {
        seg: &b,
        mine: 0,
        cached: 0,
    };
    let mut group = c.benchmark_group("latency_rt");
    group.throughput(Throughput::Elements(1));
    group.bench_function("diag_min_ring_pingpong", |bench| {
        bench.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                tx.push(i);
                let back = rx.pop();
                debug_assert_eq!(back, Some(i));
            }
            record("latency_rt/diag_min_ring_pingpong", iters, start.elapsed())
        })
    });
    group.finish();
    word(&a, 2).store(1, Ordering::Relaxed);
    child.join().expect("join the ring echo child");
}

// ---------------------------------------------------------------------------------------
// A raw futex round trip between two processes.

/// Child side: sleeps on word A, answers each new value on word B and wakes the parent.
fn futex_child(seg: Segment) {
    pin(1);
    let a = word32(&seg, 0);
    let b = word32(&seg, 1);
    let stop = word(&seg, 2);
    let mut seen = 0u32;
    loop {
        // [fx-a] Acquire: pairs with the parent's Release store of A.
        let v = a.load(Ordering::Acquire);
        if v != seen {
            seen = v;
            // [fx-b] Release: pairs with the parent's Acquire load of B.
            b.store(v, Ordering::Release);
            futex::wake(b, 1);
            continue;
        }
        if stop.load(Ordering::Relaxed) != 0 {
            return;
        }
        futex::wait(a, v, None);
    }
}

/// The raw futex round trip (store + FUTEX_WAKE, the other side sleeping in FUTEX_WAIT, and
/// back): `wakeup_rt/ref_raw_futex`.
pub fn raw_futex(c: &mut Criterion) {
    let seg = lines(3, 0);
    let mut child = Process::spawn(futex_child, share(&seg)).expect("spawn");
    let a = word32(&seg, 0);
    let b_word = word32(&seg, 1);
    let mut n = 0u32;
    let mut group = c.benchmark_group("wakeup_rt");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ref_raw_futex", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                n = n.wrapping_add(1);
                // [fx-a] Release: pairs with the child's Acquire load of A.
                a.store(n, Ordering::Release);
                futex::wake(a, 1);
                loop {
                    // [fx-b] Acquire: pairs with the child's Release store of B.
                    let v = b_word.load(Ordering::Acquire);
                    if v == n {
                        break;
                    }
                    futex::wait(b_word, v, None);
                }
            }
            record("wakeup_rt/ref_raw_futex", iters, start.elapsed())
        })
    });
    group.finish();
    word(&seg, 2).store(1, Ordering::Relaxed);
    a.fetch_add(1, Ordering::Release);
    futex::wake(a, 1);
    child.join().expect("join the futex child");
}

// ---------------------------------------------------------------------------------------
// In-process peers (two threads): crossbeam-channel bounded, std sync_channel, and a unix
// socketpair (threads too: the kernel path is the same as between processes).

/// Runs a throughput bench whose consumer is a thread pinned to CPU 1: `send(i)` sends
/// one message, `consumed` counts what the consumer took.
fn thread_throughput(
    c: &mut Criterion,
    name: &str,
    consumed: &AtomicU64,
    mut send: impl FnMut(u64),
) {
    let id = format!("throughput/{name}");
    let mut sent = 0u64;
    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                send(i);
            }
            sent += iters;
            while consumed.load(Ordering::Acquire) < sent {
                spin_loop();
            }
            record(&id, iters, start.elapsed())
        })
    });
    group.finish();
}

/// crossbeam-channel `bounded(1024)` and std `sync_channel(1024)` of u64 between two
/// threads, and a unix socketpair (8-byte messages, one `write` each) between two
/// threads.
/// `suffix` tells the repeated measurements of one run apart.
pub fn thread_peers(c: &mut Criterion, suffix: &str) {
    {
        let consumed = Arc::new(AtomicU64::new(0));
        let (tx, rx) = crossbeam_channel::bounded::<u64>(1024);
        let counter = Arc::clone(&consumed);
        let consumer = std::thread::spawn(move || {
            pin(1);
            while rx.recv().is_ok() {
                counter.fetch_add(1, Ordering::Release);
            }
        });
        thread_throughput(
            c,
            &format!("crossbeam_bounded_u64_threads{suffix}"),
            &consumed,
            |i| tx.send(i).expect("send"),
        );
        drop(tx);
        consumer.join().expect("crossbeam consumer");
    }
    {
        let consumed = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(1024);
        let counter = Arc::clone(&consumed);
        let consumer = std::thread::spawn(move || {
            pin(1);
            while rx.recv().is_ok() {
                counter.fetch_add(1, Ordering::Release);
            }
        });
        thread_throughput(
            c,
            &format!("std_sync_channel_u64_threads{suffix}"),
            &consumed,
            |i| tx.send(i).expect("send"),
        );
        drop(tx);
        consumer.join().expect("sync_channel consumer");
    }
    {
        let consumed = Arc::new(AtomicU64::new(0));
        let (mut tx, mut rx) = UnixStream::pair().expect("socketpair");
        let counter = Arc::clone(&consumed);
        let consumer = std::thread::spawn(move || {
            pin(1);
            let mut buf = vec![0u8; 1 << 16];
            let mut bytes = 0u64;
            loop {
                match rx.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        bytes += n as u64;
                        counter.store(bytes / 8, Ordering::Release);
                    }
                }
            }
        });
        thread_throughput(
            c,
            &format!("unix_socketpair_8B_threads{suffix}"),
            &consumed,
            |i| tx.write_all(&i.to_le_bytes()).expect("write"),
        );
        drop(tx);
        consumer.join().expect("socketpair consumer");
    }
}

// ---------------------------------------------------------------------------------------
// Diagnostics: the price of single steps of the queues' hot paths on this machine.

/// `diag/getpid_syscall` (what `ProcessId::current()` costs per call) and
/// `diag/seqcst_fence` (what `Event::notify` costs before its load).
pub fn diagnostics(c: &mut Criterion) {
    let mut group = c.benchmark_group("diag");
    group.bench_function("getpid_syscall", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(rustix::process::getpid());
            }
            record("diag/getpid_syscall", iters, start.elapsed())
        })
    });
    group.bench_function("seqcst_fence", |b| {
        let word = AtomicU64::new(0);
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                word.store(i, Ordering::Release);
                std::sync::atomic::fence(Ordering::SeqCst);
            }
            record("diag/seqcst_fence", iters, start.elapsed())
        })
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------
// Python's multiprocessing.Queue.

const PYTHON_SCRIPT: &str = r#"
import multiprocessing as mp, sys, time

WARM = 2000

def consume(q, n, warm, done):
    for _ in range(WARM):
        q.get()
    warm.set()
    for _ in range(n):
        q.get()
    done.set()

if __name__ == "__main__":
    n = int(sys.argv[1])
    q = mp.Queue()
    warm, done = mp.Event(), mp.Event()
    p = mp.Process(target=consume, args=(q, n, warm, done))
    p.start()
    for i in range(WARM):
        q.put(i)
    warm.wait()
    t0 = time.perf_counter()
    for i in range(n):
        q.put(i)
    done.wait()
    t1 = time.perf_counter()
    p.join()
    print(int((t1 - t0) * 1e9))
"#;

/// Python's `multiprocessing.Queue` (default start method, a consumer process, small
/// ints) when `python3` exists: `throughput/ref_python_mp_queue_int`. The script runs three
/// times with a fixed number of messages and reports the time from the first put until the
/// consumer had all of them; process start-up and a warm-up of 2000 messages (the feeder
/// thread's start) come before and are not counted. It runs outside criterion, whose
/// warm-up would count the interpreter's start-up per call; skipped unless measuring, or
/// when `SHM_QUEUE_BENCH_NO_PYTHON` is set.
pub fn python_queue() {
    const MESSAGES: u64 = 100_000;
    if !measuring() || std::env::var_os("SHM_QUEUE_BENCH_NO_PYTHON").is_some() {
        return;
    }
    let python_ok = std::process::Command::new("python3")
        .args(["-c", "import multiprocessing"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !python_ok {
        println!("SKIPPED throughput/ref_python_mp_queue_int: no python3 with multiprocessing");
        return;
    }
    let path = std::env::temp_dir().join(format!("shm-queue-bench-mpq-{}.py", std::process::id()));
    std::fs::write(&path, PYTHON_SCRIPT).expect("write the python script");
    for _ in 0..3 {
        let out = std::process::Command::new("python3")
            .arg(&path)
            .arg(MESSAGES.to_string())
            .output()
            .expect("run python3");
        let ns = String::from_utf8_lossy(&out.stdout).trim().parse::<u64>();
        match (out.status.success(), ns) {
            (true, Ok(ns)) => {
                record(
                    "throughput/ref_python_mp_queue_int",
                    MESSAGES,
                    Duration::from_nanos(ns),
                );
                println!(
                    "throughput/ref_python_mp_queue_int: {MESSAGES} messages in {:.3} s, {:.0} ns/msg",
                    ns as f64 / 1e9,
                    ns as f64 / MESSAGES as f64
                );
            }
            _ => {
                println!("SKIPPED throughput/ref_python_mp_queue_int: python3 failed: {out:?}");
                break;
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}
