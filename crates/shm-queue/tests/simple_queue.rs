//! `SimpleQueue` across processes: a named job queue and an anonymous result queue passed
//! through serde; `close` ends a getter in another process; kinds do not mix.

mod common;

use common::{QUEUE_ENV, WAIT, WATCHDOG, from_env, share};
use shm_queue::{GetError, PutError, Queue, SimpleQueue, TryGetError};
use test_support::{
    ShmLeakCheck, Watchdog, child_builder, iterations, signal_parent, test_name, unique_name,
    wait_parent_line,
};

const NAME_ENV: &str = "SHM_QUEUE_TEST_NAME";

#[test]
fn jobs_by_name_results_through_serde() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let name = unique_name("simple-queue");
    let leaks = ShmLeakCheck::new(&name);
    let count = iterations(5_000) as u64;
    {
        // Small capacities, so that both sides wait on the bound many times.
        // The named queue is made after the child is spawned: a child re-runs the test
        // from the top and exits without running destructors.
        let results = SimpleQueue::<(u64, u64)>::builder()
            .capacity(4)
            .create_anonymous()
            .unwrap();
        let mut worker = child_builder(&test_name!(), "worker")
            .env(NAME_ENV, &name)
            .env(QUEUE_ENV, share(&results))
            .spawn(|| {
                assert_eq!(wait_parent_line(), "go");
                let jobs = SimpleQueue::<u64>::open(&std::env::var(NAME_ENV).unwrap()).unwrap();
                let results: SimpleQueue<(u64, u64)> = from_env(QUEUE_ENV);
                loop {
                    match jobs.get() {
                        Ok(job) => results.put((job, job * 2)).unwrap(),
                        Err(GetError::Closed) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                assert!(jobs.is_empty());
            });
        let jobs = SimpleQueue::<u64>::builder()
            .capacity(8)
            .create(&name)
            .unwrap();
        worker.send_line("go").unwrap();
        let feeder = {
            let jobs = jobs.clone();
            std::thread::spawn(move || {
                for job in 0..count {
                    jobs.put(job).unwrap();
                }
                jobs.close();
            })
        };
        // One worker: results come in job order, each exactly once.
        for job in 0..count {
            assert_eq!(results.get(), Ok((job, job * 2)));
        }
        feeder.join().unwrap();
        worker.wait_success(WAIT);
        assert!(results.is_empty());
        assert!(matches!(jobs.put(1), Err(PutError::Closed(1))));
    }
    leaks.finish();
}

#[test]
fn close_ends_a_getter_in_another_process() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = SimpleQueue::<String>::builder()
        .capacity(2)
        .create_anonymous()
        .unwrap();
    let mut getter = child_builder(&test_name!(), "getter")
        .env(QUEUE_ENV, share(&q))
        .spawn(|| {
            let q: SimpleQueue<String> = from_env(QUEUE_ENV);
            assert_eq!(q.get().as_deref(), Ok("first"));
            signal_parent("got");
            // Blocks until the parent closes (or sees the close at once): both end in
            // `Closed`, after draining what was put before.
            assert_eq!(q.get().as_deref(), Ok("second"));
            assert_eq!(q.get(), Err(GetError::Closed));
        });
    q.put("first".into()).unwrap();
    getter.wait_line("got", WAIT).unwrap();
    q.put("second".into()).unwrap();
    q.close();
    getter.wait_success(WAIT);
    assert_eq!(q.try_get(), Err(TryGetError::Closed));
}

#[test]
fn kinds_do_not_mix() {
    let name = unique_name("simple-kind");
    let leaks = ShmLeakCheck::new(&name);
    {
        let simple = SimpleQueue::<u32>::builder()
            .capacity(2)
            .create(&name)
            .unwrap();
        assert!(Queue::<u32>::open(&name).is_err());
        assert!(SimpleQueue::<u64>::open(&name).is_err());
        let plain = Queue::<u32>::builder()
            .capacity(2)
            .create_anonymous()
            .unwrap();
        let as_simple: Result<SimpleQueue<u32>, _> = serde_json::from_str(&share(&plain));
        assert!(as_simple.is_err());
        let back: SimpleQueue<u32> = serde_json::from_str(&share(&simple)).unwrap();
        back.put(3).unwrap();
        assert_eq!(simple.get(), Ok(3));
    }
    leaks.finish();
}
