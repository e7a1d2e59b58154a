//! The measurements: the hardware floor and ceiling, multiproc's primitives, and the Rust
//! references, each across two real processes where the primitive is cross-process.
//!
//! Every cross-process case spawns its peer with `Process::spawn` (this binary again) and
//! hands it an anonymous control segment; the peer raises `READY` when it is in its loop,
//! so process start-up is never timed, and raises `DONE` when it has seen every message.

use std::hint::spin_loop;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use multiproc::segment::{ObjectKind, Segment, SegmentOptions};
use multiproc::{Lock, Pool, Process, Queue, SharedDict, SpscQueue, Value};

const READY: usize = 0;
const DONE: usize = 1;
/// The ping-pong word, on its own cache-line pair.
const PING: usize = 16;
/// The ring's producer index and consumer index, each on its own 128-byte line.
const HEAD: usize = 32;
const TAIL: usize = 48;
const RING: usize = 64;
const RING_SLOTS: u64 = 4096;

fn control() -> Segment {
    let len = (RING + RING_SLOTS as usize) * 8;
    SegmentOptions::new(ObjectKind::RAW)
        .len(len)
        .create_anonymous()
        .expect("control segment")
}

/// The control segment and a second handle to it, to hand to the peer process.
fn control_pair() -> (Segment, Segment) {
    let seg = control();
    let fd = seg.fd().try_clone_to_owned().expect("dup");
    let handle = SegmentOptions::any().open_fd(fd).expect("reopen");
    (seg, handle)
}

fn word(seg: &Segment, index: usize) -> &AtomicU64 {
    assert!((index + 1) * 8 <= seg.data_len());
    // SAFETY: in bounds (checked), 8-aligned (the data area is 128-aligned), and every word
    // of the control segment is only ever accessed atomically, by both processes.
    unsafe { AtomicU64::from_ptr(seg.data().as_ptr().cast::<u64>().add(index)) }
}

fn wait_for(word: &AtomicU64, value: u64) {
    while word.load(Ordering::Acquire) != value {
        spin_loop();
    }
}

/// Waits for a sleeping peer without burning the core it needs.
fn wait_for_yielding(word: &AtomicU64, value: u64) {
    while word.load(Ordering::Acquire) != value {
        std::thread::yield_now();
    }
}

fn per_op_ns(elapsed: Duration, ops: u64) -> f64 {
    elapsed.as_nanos() as f64 / ops as f64
}

fn per_second(elapsed: Duration, ops: u64) -> f64 {
    ops as f64 / elapsed.as_secs_f64()
}

// --- the floor: a cache line bounced between two processes -------------------------------

fn ping_pong_peer((seg, rounds): (Segment, u64)) {
    let ping = word(&seg, PING);
    word(&seg, READY).store(1, Ordering::Release);
    for i in 0..rounds {
        wait_for(ping, 2 * i + 1);
        ping.store(2 * i + 2, Ordering::Release);
    }
}

/// Round trip of one cache line between two processes, in ns.
pub fn cache_line_round_trip(rounds: u64) -> f64 {
    let (seg, handle) = control_pair();
    let warm = 1000;
    let mut peer = Process::spawn(ping_pong_peer, (handle, rounds + warm)).expect("spawn");
    wait_for_yielding(word(&seg, READY), 1);
    let ping = word(&seg, PING);
    let mut started = Instant::now();
    for i in 0..rounds + warm {
        if i == warm {
            started = Instant::now();
        }
        ping.store(2 * i + 1, Ordering::Release);
        wait_for(ping, 2 * i + 2);
    }
    let elapsed = started.elapsed();
    peer.join().expect("peer");
    per_op_ns(elapsed, rounds)
}

// --- the ceiling: a minimal SPSC ring of u64 -----------------------------------------------

fn ring_consumer((seg, count): (Segment, u64)) {
    let (head, tail) = (word(&seg, HEAD), word(&seg, TAIL));
    word(&seg, READY).store(1, Ordering::Release);
    let (mut read, mut sum, mut seen_head) = (0u64, 0u64, 0u64);
    while read < count {
        if read == seen_head {
            seen_head = head.load(Ordering::Acquire);
            if read == seen_head {
                spin_loop();
                continue;
            }
        }
        sum = sum
            .wrapping_add(word(&seg, RING + (read % RING_SLOTS) as usize).load(Ordering::Relaxed));
        read += 1;
        if read % 64 == 0 || read == count {
            tail.store(read, Ordering::Release);
        }
    }
    assert_eq!(
        sum,
        count * (count - 1) / 2,
        "the ring delivered every value once"
    );
    word(&seg, DONE).store(1, Ordering::Release);
}

/// Messages per second through a minimal SPSC ring of `u64` across two processes.
pub fn raw_ring(count: u64) -> f64 {
    let (seg, handle) = control_pair();
    let mut peer = Process::spawn(ring_consumer, (handle, count)).expect("spawn");
    wait_for_yielding(word(&seg, READY), 1);
    let (head, tail) = (word(&seg, HEAD), word(&seg, TAIL));
    let started = Instant::now();
    let mut seen_tail = 0u64;
    for i in 0..count {
        while i - seen_tail >= RING_SLOTS {
            seen_tail = tail.load(Ordering::Acquire);
            spin_loop();
        }
        word(&seg, RING + (i % RING_SLOTS) as usize).store(i, Ordering::Relaxed);
        if i % 64 == 63 || i + 1 == count {
            head.store(i + 1, Ordering::Release);
        }
    }
    wait_for(word(&seg, DONE), 1);
    let elapsed = started.elapsed();
    peer.join().expect("peer");
    per_second(elapsed, count)
}

// --- multiproc's queues -------------------------------------------------------------------

fn spsc_consumer((queue, seg, count): (SpscQueue<u64>, Segment, u64)) {
    let mut consumer = queue.consumer().expect("consumer half");
    word(&seg, READY).store(1, Ordering::Release);
    let mut sum = 0u64;
    for _ in 0..count {
        sum = sum.wrapping_add(consumer.get().expect("get"));
    }
    assert_eq!(sum, count * (count - 1) / 2);
    word(&seg, DONE).store(1, Ordering::Release);
}

/// Messages per second through `SpscQueue<u64>` across two processes.
pub fn spsc_queue(count: u64) -> f64 {
    let queue = SpscQueue::<u64>::builder()
        .capacity(4096)
        .max_message_size(16)
        .create_anonymous()
        .expect("queue");
    let (seg, handle) = control_pair();
    let mut peer = Process::spawn(spsc_consumer, (queue.clone(), handle, count)).expect("spawn");
    wait_for_yielding(word(&seg, READY), 1);
    let mut producer = queue.producer().expect("producer half");
    let started = Instant::now();
    for i in 0..count {
        producer.put(i).expect("put");
    }
    wait_for(word(&seg, DONE), 1);
    let elapsed = started.elapsed();
    peer.join().expect("peer");
    per_second(elapsed, count)
}

/// A small serde message, as a pipeline would carry.
type Message = (u64, u32);

fn queue_consumer((queue, seg, count): (Queue<Message>, Segment, u64)) {
    word(&seg, READY).store(1, Ordering::Release);
    let mut sum = 0u64;
    for _ in 0..count {
        sum = sum.wrapping_add(queue.get().expect("get").0);
    }
    assert_eq!(sum, count * (count - 1) / 2);
    word(&seg, DONE).store(1, Ordering::Release);
}

/// Messages per second through the MPMC `Queue` (small serde messages), one producer and
/// one consumer process.
pub fn mpmc_queue(count: u64) -> f64 {
    let queue = Queue::<Message>::builder()
        .capacity(4096)
        .max_message_size(32)
        .create_anonymous()
        .expect("queue");
    let (seg, handle) = control_pair();
    let mut peer = Process::spawn(queue_consumer, (queue.clone(), handle, count)).expect("spawn");
    wait_for_yielding(word(&seg, READY), 1);
    let started = Instant::now();
    for i in 0..count {
        queue.put((i, i as u32)).expect("put");
    }
    wait_for(word(&seg, DONE), 1);
    let elapsed = started.elapsed();
    peer.join().expect("peer");
    per_second(elapsed, count)
}

fn batch_consumer((queue, seg, count): (Queue<Message>, Segment, u64)) {
    word(&seg, READY).store(1, Ordering::Release);
    let (mut sum, mut got, mut buf) = (0u64, 0u64, Vec::with_capacity(BATCH));
    while got < count {
        buf.clear();
        got += queue.get_many(&mut buf, BATCH).expect("get_many") as u64;
        sum = buf.iter().fold(sum, |s, m| s.wrapping_add(m.0));
    }
    assert_eq!(sum, count * (count - 1) / 2);
    word(&seg, DONE).store(1, Ordering::Release);
}

const BATCH: usize = 64;

/// Messages per second through the MPMC `Queue` in batches of 64 (`put_many` /
/// `get_many`: one publication and at most one wake per batch), two processes.
pub fn mpmc_queue_batched(count: u64) -> f64 {
    let count = count / BATCH as u64 * BATCH as u64;
    let queue = Queue::<Message>::builder()
        .capacity(4096)
        .max_message_size(32)
        .create_anonymous()
        .expect("queue");
    let (seg, handle) = control_pair();
    let mut peer = Process::spawn(batch_consumer, (queue.clone(), handle, count)).expect("spawn");
    wait_for_yielding(word(&seg, READY), 1);
    let started = Instant::now();
    for start in (0..count).step_by(BATCH) {
        queue
            .put_many(
                (start..start + BATCH as u64)
                    .map(|i| (i, i as u32))
                    .collect(),
            )
            .expect("put_many");
    }
    wait_for(word(&seg, DONE), 1);
    let elapsed = started.elapsed();
    peer.join().expect("peer");
    per_second(elapsed, count)
}

fn echo_peer((ping, pong, rounds): (SpscQueue<u64>, SpscQueue<u64>, u64)) {
    let (mut rx, mut tx) = (
        ping.consumer().expect("ping"),
        pong.producer().expect("pong"),
    );
    for _ in 0..rounds {
        let v = rx.get().expect("get");
        tx.put(v).expect("put");
    }
}

/// One-way latency through `SpscQueue<u64>` (spinning), in ns: half a round trip.
pub fn spsc_latency(rounds: u64) -> f64 {
    let ping = SpscQueue::<u64>::builder()
        .capacity(64)
        .max_message_size(16)
        .create_anonymous()
        .expect("queue");
    let pong = SpscQueue::<u64>::builder()
        .capacity(64)
        .max_message_size(16)
        .create_anonymous()
        .expect("queue");
    let warm = 1000;
    let mut peer =
        Process::spawn(echo_peer, (ping.clone(), pong.clone(), rounds + warm)).expect("spawn");
    let (mut tx, mut rx) = (
        ping.producer().expect("ping"),
        pong.consumer().expect("pong"),
    );
    let mut started = Instant::now();
    for i in 0..rounds + warm {
        if i == warm {
            started = Instant::now();
        }
        tx.put(i).expect("put");
        rx.get().expect("get");
    }
    let elapsed = started.elapsed();
    peer.join().expect("peer");
    per_op_ns(elapsed, rounds) / 2.0
}

fn queue_echo_peer((ping, pong, rounds): (Queue<u64>, Queue<u64>, u64)) {
    for _ in 0..rounds {
        let v = ping.get().expect("get");
        pong.put(v).expect("put");
    }
}

/// Wake-up of a sleeping consumer: the peer sleeps in `get` on a `Queue` (spin limit 0);
/// once it is registered as asleep, the parent puts and times until the peer's answer
/// comes back on a second queue (which the parent polls). In ns per round trip.
pub fn queue_wake_round_trip(rounds: u64) -> f64 {
    let make = |spin| {
        Queue::<u64>::builder()
            .capacity(64)
            .max_message_size(16)
            .spin_limit(spin)
            .create_anonymous()
            .expect("queue")
    };
    let (ping, pong) = (make(0), make(u32::MAX));
    let mut peer =
        Process::spawn(queue_echo_peer, (ping.clone(), pong.clone(), rounds)).expect("spawn");
    let mut total = Duration::ZERO;
    for i in 0..rounds {
        while ping.waiting().getters == 0 {
            std::thread::yield_now();
        }
        let started = Instant::now();
        ping.put(i).expect("put");
        pong.get().expect("get");
        total += started.elapsed();
    }
    peer.join().expect("peer");
    per_op_ns(total, rounds)
}

const ASLEEP: usize = 2;

fn futex_peer((seg, rounds): (Segment, u64)) {
    // SAFETY: 4 bytes at an 8-aligned offset of the control segment, only used atomically.
    let w =
        unsafe { std::sync::atomic::AtomicU32::from_ptr(seg.data().as_ptr().add(PING * 8).cast()) };
    for i in 0..rounds as u32 {
        word(&seg, ASLEEP).store(1, Ordering::Release);
        multiproc::segment::futex::wait_until(w, |v| v == 2 * i + 1, None).expect("no deadline");
        word(&seg, ASLEEP).store(0, Ordering::Release);
        word(&seg, DONE).store(u64::from(i) + 1, Ordering::Release);
    }
}

/// The same wake-up with a raw futex: the peer announces it is going to sleep, sleeps on a
/// futex word, and answers with a store the parent polls. In ns per round trip.
pub fn futex_round_trip(rounds: u64) -> f64 {
    let (seg, handle) = control_pair();
    let mut peer = Process::spawn(futex_peer, (handle, rounds)).expect("spawn");
    // SAFETY: as in `futex_peer`.
    let w =
        unsafe { std::sync::atomic::AtomicU32::from_ptr(seg.data().as_ptr().add(PING * 8).cast()) };
    let mut total = Duration::ZERO;
    for i in 0..rounds as u32 {
        wait_for_yielding(word(&seg, ASLEEP), 1);
        let started = Instant::now();
        w.store(2 * i + 1, Ordering::Release);
        multiproc::segment::futex::wake(w, 1);
        wait_for(word(&seg, DONE), u64::from(i) + 1);
        total += started.elapsed();
    }
    peer.join().expect("peer");
    per_op_ns(total, rounds)
}

// --- locks, values, processes -------------------------------------------------------------

/// Uncontended `Lock` acquire + release, in ns.
pub fn lock_acquire_release(ops: u64) -> f64 {
    let lock = Lock::new().expect("lock");
    let started = Instant::now();
    for _ in 0..ops {
        drop(lock.acquire().expect("acquire"));
    }
    per_op_ns(started.elapsed(), ops)
}

/// `Value<u64>` increment: the lock-free `fetch_add`, in ns.
pub fn value_increment(ops: u64) -> f64 {
    let value = Value::new(0u64).expect("value");
    let started = Instant::now();
    for _ in 0..ops {
        value.fetch_add(1);
    }
    let elapsed = started.elapsed();
    assert_eq!(value.load(), ops);
    per_op_ns(elapsed, ops)
}

fn nothing(x: u64) -> u64 {
    x
}

/// Spawn a process that returns a value, and join it, in ms.
pub fn spawn_join(times: u64) -> f64 {
    let started = Instant::now();
    for i in 0..times {
        let mut p = Process::spawn(nothing, i).expect("spawn");
        assert_eq!(p.join().expect("join"), i);
    }
    started.elapsed().as_secs_f64() * 1e3 / times as f64
}

fn square(x: u64) -> u64 {
    x * x
}

/// `Pool::map` of squares over 1,000 items with 2 workers, in ms per map (pool start-up
/// excluded, as in the Python reference).
pub fn pool_map(times: u64) -> f64 {
    let pool = Pool::new(2).expect("pool");
    pool.map(square, 0..10).expect("warm up");
    let started = Instant::now();
    for _ in 0..times {
        let squares = pool.map(square, 0..1000).expect("map");
        assert_eq!(squares[999], 999 * 999);
    }
    started.elapsed().as_secs_f64() * 1e3 / times as f64
}

// --- Rust references ---------------------------------------------------------------------

/// Messages per second through crossbeam-channel `bounded(4096)` between two threads.
pub fn crossbeam_bounded(count: u64) -> f64 {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(4096);
    let consumer =
        std::thread::spawn(move || (0..count).map(|_| rx.recv().expect("recv")).sum::<u64>());
    let started = Instant::now();
    for i in 0..count {
        tx.send(i).expect("send");
    }
    let sum = consumer.join().expect("consumer");
    let elapsed = started.elapsed();
    assert_eq!(sum, count * (count - 1) / 2);
    per_second(elapsed, count)
}

/// Messages per second through std `sync_channel(4096)` between two threads.
pub fn std_sync_channel(count: u64) -> f64 {
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(4096);
    let consumer =
        std::thread::spawn(move || (0..count).map(|_| rx.recv().expect("recv")).sum::<u64>());
    let started = Instant::now();
    for i in 0..count {
        tx.send(i).expect("send");
    }
    let sum = consumer.join().expect("consumer");
    let elapsed = started.elapsed();
    assert_eq!(sum, count * (count - 1) / 2);
    per_second(elapsed, count)
}

/// Messages per second of 8-byte messages, one `write` each, through a unix socketpair (or
/// a pipe) read by another thread. Between threads rather than processes: the cost is the
/// system calls either way.
pub fn byte_stream(count: u64, pipe: bool) -> f64 {
    let (mut writer, mut reader): (Box<dyn Write + Send>, Box<dyn Read + Send>) = if pipe {
        let (r, w) = std::io::pipe().expect("pipe");
        (Box::new(w), Box::new(r))
    } else {
        let (a, b) = UnixStream::pair().expect("socketpair");
        (Box::new(a), Box::new(b))
    };
    let consumer = std::thread::spawn(move || {
        let mut buf = [0u8; 8];
        let mut sum = 0u64;
        for _ in 0..count {
            reader.read_exact(&mut buf).expect("read");
            sum = sum.wrapping_add(u64::from_le_bytes(buf));
        }
        sum
    });
    let started = Instant::now();
    for i in 0..count {
        writer.write_all(&i.to_le_bytes()).expect("write");
    }
    let sum = consumer.join().expect("consumer");
    let elapsed = started.elapsed();
    assert_eq!(sum, count * (count - 1) / 2);
    per_second(elapsed, count)
}

// --- shared containers --------------------------------------------------------------------

const DICT_KEYS: u64 = 1024;

/// `SharedDict<u64, u64>` get and insert over 1,024 keys, in ns per operation.
pub fn shared_dict(ops: u64) -> (f64, f64) {
    let manager = multiproc::Manager::new().expect("manager");
    let dict = manager.dict::<u64, u64>("bench").expect("dict");
    for k in 0..DICT_KEYS {
        dict.insert(&k, &k).expect("insert");
    }
    let started = Instant::now();
    for i in 0..ops {
        std::hint::black_box(dict.get(&(i % DICT_KEYS)).expect("get"));
    }
    let get = per_op_ns(started.elapsed(), ops);
    let started = Instant::now();
    for i in 0..ops {
        dict.insert(&(i % DICT_KEYS), &i).expect("insert");
    }
    (get, per_op_ns(started.elapsed(), ops))
}

fn dict_reader((dict, seg): (SharedDict<u64, u64>, Segment)) {
    word(&seg, READY).store(1, Ordering::Release);
    let mut i = 0u64;
    while word(&seg, DONE).load(Ordering::Acquire) == 0 {
        std::hint::black_box(dict.get(&(i % DICT_KEYS)).expect("get"));
        i = i.wrapping_add(7);
    }
}

/// `SharedDict<u64, u64>` get while a second process reads the same dict in a loop, in ns
/// per get of this process: readers take no lock, so this stays near the one-process
/// figure instead of paying the lock's cache-line transfers.
pub fn shared_dict_get_beside_reader(ops: u64) -> f64 {
    let (seg, handle) = control_pair();
    let manager = multiproc::Manager::new().expect("manager");
    let dict = manager.dict::<u64, u64>("bench").expect("dict");
    dict.extend((0..DICT_KEYS).map(|k| (k, k))).expect("extend");
    let mut peer = Process::spawn(dict_reader, (dict.clone(), handle)).expect("spawn");
    wait_for_yielding(word(&seg, READY), 1);
    let started = Instant::now();
    for i in 0..ops {
        std::hint::black_box(dict.get(&(i % DICT_KEYS)).expect("get"));
    }
    let elapsed = started.elapsed();
    word(&seg, DONE).store(1, Ordering::Release);
    peer.join().expect("peer");
    per_op_ns(elapsed, ops)
}

/// `std::sync::RwLock<HashMap<u64, u64>>` read while a second thread reads in a loop,
/// in-process, in ns per get of this thread.
pub fn rwlock_hashmap_get_beside_reader(ops: u64) -> f64 {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, RwLock};
    let map = Arc::new(RwLock::new(
        (0..DICT_KEYS)
            .map(|k| (k, k))
            .collect::<std::collections::HashMap<_, _>>(),
    ));
    let (ready, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let reader = {
        let (map, ready, stop) = (Arc::clone(&map), Arc::clone(&ready), Arc::clone(&stop));
        std::thread::spawn(move || {
            ready.store(true, Ordering::Release);
            let mut i = 0u64;
            while !stop.load(Ordering::Acquire) {
                std::hint::black_box(map.read().expect("read").get(&(i % DICT_KEYS)).copied());
                i = i.wrapping_add(7);
            }
        })
    };
    while !ready.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    let started = Instant::now();
    for i in 0..ops {
        std::hint::black_box(map.read().expect("read").get(&(i % DICT_KEYS)).copied());
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Release);
    reader.join().expect("reader");
    per_op_ns(elapsed, ops)
}

/// `std::sync::Mutex<HashMap<u64, u64>>` get over 1,024 keys, in-process, in ns.
pub fn mutex_hashmap_get(ops: u64) -> f64 {
    let map = std::sync::Mutex::new(
        (0..DICT_KEYS)
            .map(|k| (k, k))
            .collect::<std::collections::HashMap<_, _>>(),
    );
    let started = Instant::now();
    for i in 0..ops {
        std::hint::black_box(map.lock().expect("lock").get(&(i % DICT_KEYS)).copied());
    }
    per_op_ns(started.elapsed(), ops)
}
