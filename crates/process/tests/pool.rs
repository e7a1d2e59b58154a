//! Pool across real processes: the tutorial programs, panics and killed workers (which
//! must never hang a call), lazy imap, maxtasksperchild, close/terminate, no orphans.

shm_process::init_before_main!();

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shm_process::{Pool, PoolError, Process, current_process};
use shm_queue::Queue;
use test_support::Watchdog;

const STEP: Duration = Duration::from_secs(60);

fn square(x: u64) -> u64 {
    x * x
}

/// The tutorial: `Pool::map` of squares of [1, 2, 3].
#[test]
fn tutorial_pool_map_of_squares() {
    let _wd = Watchdog::new(STEP);
    let pool = Pool::new(3).unwrap();
    assert_eq!(pool.map(square, [1, 2, 3]).unwrap(), [1, 4, 9]);
}

fn fruit_producer(queue: Queue<String>) {
    for fruit in ["apple", "banana", "cherry", "date"] {
        queue.put(fruit.to_owned()).unwrap();
    }
}

/// The tutorial: fruits through a Queue from one process to another.
#[test]
fn tutorial_fruits_through_a_queue() {
    let _wd = Watchdog::new(STEP);
    let queue = Queue::<String>::builder()
        .capacity(8)
        .max_message_size(64)
        .create_anonymous()
        .unwrap();
    let mut producer = Process::spawn(fruit_producer, queue.clone()).unwrap();
    let fruits: Vec<String> = (0..4).map(|_| queue.get_timeout(STEP).unwrap()).collect();
    producer.join().unwrap();
    assert_eq!(fruits, ["apple", "banana", "cherry", "date"]);
}

#[derive(Serialize, Deserialize)]
struct Queues {
    tasks: Queue<Option<u32>>,
    results: Queue<(String, u32)>,
}

fn tutorial_worker(queues: Queues) {
    while let Some(task) = queues.tasks.get().unwrap() {
        queues
            .results
            .put((current_process().name, task * task))
            .unwrap();
    }
}

/// The tutorial: eight tasks over a tasks queue and a results queue, served by three
/// worker processes that report their `current_process().name`.
#[test]
fn tutorial_eight_tasks_three_workers() {
    let _wd = Watchdog::new(STEP);
    let tasks = Queue::<Option<u32>>::builder()
        .capacity(16)
        .max_message_size(16)
        .create_anonymous()
        .unwrap();
    let results = Queue::<(String, u32)>::builder()
        .capacity(16)
        .max_message_size(64)
        .create_anonymous()
        .unwrap();
    let mut workers: Vec<_> = (0..3)
        .map(|_| {
            Process::spawn(
                tutorial_worker,
                Queues {
                    tasks: tasks.clone(),
                    results: results.clone(),
                },
            )
            .unwrap()
        })
        .collect();
    for task in 1..=8 {
        tasks.put(Some(task)).unwrap();
    }
    for _ in &workers {
        tasks.put(None).unwrap();
    }
    let mut got: Vec<(String, u32)> = (0..8).map(|_| results.get_timeout(STEP).unwrap()).collect();
    let names: Vec<String> = workers.iter().map(|w| w.name().to_owned()).collect();
    for worker in &mut workers {
        worker.join().unwrap();
    }
    assert!(
        got.iter().all(|(name, _)| names.contains(name)),
        "{got:?} vs {names:?}"
    );
    got.sort_by_key(|(_, value)| *value);
    let values: Vec<u32> = got.into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, [1, 4, 9, 16, 25, 36, 49, 64]);
}

fn kill_myself(_: ()) -> u32 {
    rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL)
        .unwrap();
    unreachable!("SIGKILL cannot be caught")
}

/// Whether the process is gone from /proc (neither running nor a zombie).
fn gone(id: shm_segment::ProcessId) -> bool {
    shm_segment::ProcessId::of(id.pid).is_none_or(|now| now.start_time != id.start_time)
}

fn worker_pid(_: u32) -> u32 {
    std::process::id()
}

/// A worker's identity: its pid with its start time, so a recycled pid never passes for it.
fn worker_id(_: u32) -> shm_segment::ProcessId {
    shm_segment::ProcessId::current()
}

/// RELIABILITY row 17: a worker SIGKILLed mid-task fails that task with `WorkerDied`; the
/// pool replaces it and goes on; the dead worker is reaped, not a zombie.
#[test]
fn a_worker_killed_mid_task_fails_only_that_task() {
    let _wd = Watchdog::new(STEP);
    let pool = Pool::new(2).unwrap();
    let before: Vec<shm_segment::ProcessId> = pool.map_chunked(worker_id, 0..40, 1).unwrap();
    match pool.apply(kill_myself, ()) {
        Err(PoolError::WorkerDied { pid, how }) => {
            assert!(how.contains("signal 9"), "{how}");
            let dead = before
                .iter()
                .find(|w| w.pid == pid)
                .expect("one of the pool's workers");
            assert!(gone(*dead), "the dead worker was reaped");
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    // Several deaths in a row, with other work around them.
    let pending: Vec<_> = (0..3)
        .map(|_| pool.apply_async(kill_myself, ()).unwrap())
        .collect();
    let squares = pool.map(square, 0..100).unwrap();
    assert_eq!(squares, (0..100).map(square).collect::<Vec<_>>());
    for p in pending {
        assert!(matches!(p.get(), Err(PoolError::WorkerDied { .. })));
    }
    let after: Vec<shm_segment::ProcessId> = pool.map_chunked(worker_id, 0..40, 1).unwrap();
    assert!(
        after.iter().any(|pid| !before.contains(pid)),
        "replacements were started"
    );
}

/// Shared with every worker's initializer: the first worker to start parks at its first
/// result's put, after claiming the slot and before publishing it.
#[derive(Serialize, Deserialize)]
struct ParkTheFirstWorker {
    started: shm_lock::Value<u32>,
    parked_pid: shm_lock::Value<u32>,
}

fn park_the_first_worker(park: ParkTheFirstWorker) {
    if park.started.fetch_add(1) == 0 {
        park.parked_pid.store(std::process::id());
        // SAFETY: the worker is single-threaded when its initializer runs.
        unsafe { std::env::set_var(shm_segment::fault::PARK_ENV, "shm_queue.put.claimed") };
    }
}

/// Counts one run of a task in its own counter: the run number.
fn count_run(runs: shm_lock::Value<u32>) -> u32 {
    runs.fetch_add(1) + 1
}

/// A worker that ends (here after its one task) while its result sits in the queue behind
/// a slot another, live worker claimed and has not published: its task is neither run
/// again nor failed, whatever rounds the handler makes before that slot is published. The
/// parked worker, once killed, fails only its own task.
#[test]
fn a_result_behind_a_slot_still_being_written_is_not_lost_or_run_twice() {
    let _wd = Watchdog::new(STEP);
    let started = shm_lock::Value::new(0_u32).unwrap();
    let parked_pid = shm_lock::Value::new(0_u32).unwrap();
    let pool = Pool::builder()
        .processes(2)
        .maxtasksperchild(1)
        .initializer(
            park_the_first_worker,
            ParkTheFirstWorker {
                started: started.clone(),
                parked_pid: parked_pid.clone(),
            },
        )
        .build()
        .unwrap();
    let runs: Vec<shm_lock::Value<u32>> =
        (0..4).map(|_| shm_lock::Value::new(0).unwrap()).collect();
    let pending: Vec<_> = runs
        .iter()
        .map(|r| pool.apply_async(count_run, r.clone()).unwrap())
        .collect();
    // Both first workers ran a task: one is parked with its result's slot claimed, the
    // other published its result behind that slot and ended.
    let deadline = std::time::Instant::now() + STEP;
    while parked_pid.load() == 0 || runs.iter().map(|r| r.load()).sum::<u32>() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the workers never ran"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Rounds of the handler (20 ms each) in which the ended worker is found dead.
    std::thread::sleep(Duration::from_millis(300));
    let parked = rustix::process::Pid::from_raw(parked_pid.load() as i32).unwrap();
    rustix::process::kill_process(parked, rustix::process::Signal::KILL).unwrap();
    let mut died = 0;
    for (task, p) in pending.into_iter().enumerate() {
        match p.get() {
            Ok(run) => assert_eq!(run, 1, "task {task} ran again"),
            Err(PoolError::WorkerDied { pid, .. }) => {
                assert_eq!(
                    pid,
                    parked_pid.load(),
                    "task {task} failed in another worker"
                );
                died += 1;
            }
            Err(e) => panic!("task {task} failed: {e}"),
        }
    }
    assert_eq!(died, 1, "the parked worker's task, and only it, failed");
    let counts: Vec<u32> = runs.iter().map(|r| r.load()).collect();
    assert_eq!(counts, [1; 4], "every task ran exactly once");
}

fn panics_on(x: u32) -> u32 {
    assert!(x % 5 != 4, "bad item {x}");
    x
}

#[test]
fn a_panicking_task_fails_with_its_message_and_the_pool_goes_on() {
    let _wd = Watchdog::new(STEP);
    let pool = Pool::new(2).unwrap();
    assert_eq!(
        pool.apply(panics_on, 4),
        Err(PoolError::Panicked {
            message: "bad item 4".into()
        })
    );
    let results: Vec<Result<u32, PoolError>> = pool.imap(panics_on, 0..10).unwrap().collect();
    assert_eq!(results.len(), 10);
    assert!(matches!(&results[4], Err(PoolError::Panicked { .. })));
    assert_eq!(results[5], Ok(5));
    assert_eq!(pool.starmap(pair_sum, [(1, 2), (3, 4)]).unwrap(), [3, 7]);
}

fn pair_sum(a: u32, b: u32) -> u32 {
    a + b
}

/// imap reads its input lazily: taking a few results from an endless input finishes, and
/// reads only a bounded window ahead.
#[test]
fn imap_reads_its_input_lazily() {
    let _wd = Watchdog::new(STEP);
    let pool = Pool::new(2).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let endless = (0u64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let first: Vec<u64> = pool
        .imap(square, endless)
        .unwrap()
        .take(10)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, (0..10).map(square).collect::<Vec<_>>());
    assert!(
        pulled.load(Ordering::Relaxed) <= 10 + 2 * pool.processes(),
        "read {} items",
        pulled.load(Ordering::Relaxed)
    );

    let mut unordered: Vec<u64> = pool
        .imap_unordered(square, 0..50)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    unordered.sort_unstable();
    assert_eq!(unordered, (0..50).map(square).collect::<Vec<_>>());
}

#[test]
fn maxtasksperchild_replaces_workers() {
    let _wd = Watchdog::new(STEP);
    let pool = Pool::builder()
        .processes(1)
        .maxtasksperchild(2)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..6).map(|i| pool.apply(worker_pid, i).unwrap()).collect();
    let mut distinct = pids.clone();
    distinct.dedup();
    assert!(distinct.len() >= 3, "one worker per two tasks: {pids:?}");
}

fn remember(tag: String) {
    // SAFETY: the worker is single-threaded when its initializer runs.
    unsafe { std::env::set_var("POOL_INIT_TAG", tag) };
}

fn recall(_: u8) -> String {
    std::env::var("POOL_INIT_TAG").unwrap_or_default()
}

#[test]
fn initializer_runs_in_every_worker() {
    let _wd = Watchdog::new(STEP);
    let pool = Pool::builder()
        .processes(2)
        .initializer(remember, "ready".to_owned())
        .build()
        .unwrap();
    let tags = pool.map_chunked(recall, 0..8, 1).unwrap();
    assert!(tags.iter().all(|t| t == "ready"), "{tags:?}");
}

fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn close_join_and_terminate() {
    let _wd = Watchdog::new(STEP);
    let pool = Pool::new(2).unwrap();
    let pending = pool.map_async(nap, [10, 20, 30]).unwrap();
    pool.close();
    assert_eq!(pool.apply(nap, 1), Err(PoolError::Closed));
    pool.join().unwrap();
    assert_eq!(
        pending.get().unwrap(),
        [10, 20, 30],
        "close lets queued work finish"
    );

    let pool = Pool::new(1).unwrap();
    let long = pool.apply_async(nap, 3_600_000).unwrap();
    assert_eq!(
        long.get_timeout(Duration::from_millis(20)),
        Err(PoolError::Timeout)
    );
    pool.terminate();
    assert_eq!(long.get(), Err(PoolError::Terminated));
    pool.join().unwrap();
}

/// Dropping a pool leaves no worker behind.
#[test]
fn dropping_a_pool_leaves_no_orphans() {
    let _wd = Watchdog::new(STEP);
    let pool = Pool::new(3).unwrap();
    let mut pids = pool.map_chunked(worker_id, 0..30, 1).unwrap();
    pids.sort_unstable_by_key(|p| (p.pid, p.start_time));
    pids.dedup();
    let busy = pool.apply_async(nap, 3_600_000).unwrap();
    drop(busy);
    drop(pool);
    for pid in pids {
        assert!(gone(pid), "worker {} outlived its pool", pid.pid);
    }
}

fn failing_initializer(_: ()) {
    panic!("cannot set up");
}

/// A worker that can never start (its initializer always fails) must not leave calls
/// waiting: after a few deaths in a row the pool reports itself broken.
#[test]
fn a_failing_initializer_breaks_the_pool_instead_of_hanging() {
    let _wd = Watchdog::new(STEP);
    let pool = Pool::builder()
        .processes(2)
        .initializer(failing_initializer, ())
        .build()
        .unwrap();
    match pool.map(square, 0..10) {
        Err(PoolError::Broken { reason }) => assert!(reason.contains("initializer"), "{reason}"),
        other => panic!("expected Broken, got {other:?}"),
    }
    assert!(matches!(
        pool.apply(square, 1),
        Err(PoolError::Broken { .. })
    ));
}

/// `imap` interrupted by `terminate` ends with an error, never with a silently short
/// "successful" result.
#[test]
fn imap_after_terminate_reports_the_termination() {
    let _wd = Watchdog::new(STEP);
    let pool = Pool::new(2).unwrap();
    let mut results = pool
        .imap(nap, [0, 0, 3_600_000, 3_600_000, 3_600_000, 3_600_000])
        .unwrap();
    assert_eq!(results.next(), Some(Ok(0)));
    pool.terminate();
    let rest: Vec<Result<u64, PoolError>> = results.collect();
    assert!(
        rest.iter().any(|r| r == &Err(PoolError::Terminated)),
        "{rest:?}"
    );
    assert!(
        rest.iter()
            .all(|r| matches!(r, Ok(0) | Err(PoolError::Terminated))),
        "{rest:?}"
    );
}
