//! `JoinableQueue` across processes: `join` returns only after every task's `task_done`,
//! a joiner in another process is woken by the last `task_done`, too many `task_done`s are
//! an error, `join_timeout` never returns early, and a dead consumer's task is left to
//! `join_timeout` and can be finished on its behalf.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::{QUEUE_ENV, WAIT, WATCHDOG, from_env, share, spin_until};
use shm_queue::{
    GetError, JoinError, JoinTimeoutError, JoinableQueue, Queue, TaskDoneError, TryGetError,
};
use test_support::{
    ShmLeakCheck, Watchdog, child_builder, iterations, signal_parent, test_name, unique_name,
    wait_parent_line,
};

const NAME_ENV: &str = "SHM_QUEUE_TEST_NAME";

#[test]
fn join_waits_for_every_task_done() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let name = unique_name("joinable-join");
    let leaks = ShmLeakCheck::new(&name);
    let count = iterations(2_000) as u64;
    {
        // Named objects are made after the children are spawned: a child re-runs the test
        // from the top and exits without running destructors.
        let results = Queue::<u64>::builder()
            .capacity(count as usize)
            .create_anonymous()
            .unwrap();
        let workers: Vec<_> = (0..2)
            .map(|i| {
                child_builder(&test_name!(), &format!("worker-{i}"))
                    .env(NAME_ENV, &name)
                    .env(QUEUE_ENV, share(&results))
                    .spawn(|| {
                        assert_eq!(wait_parent_line(), "go");
                        let tasks =
                            JoinableQueue::<u64>::open(&std::env::var(NAME_ENV).unwrap()).unwrap();
                        let results: Queue<u64> = from_env(QUEUE_ENV);
                        while let Ok(task) = tasks.get() {
                            // The result is out before the task is marked done.
                            results.put(task).unwrap();
                            tasks.task_done().unwrap();
                        }
                    })
            })
            .collect::<Vec<_>>();
        let tasks = JoinableQueue::<u64>::builder()
            .capacity(16)
            .create(&name)
            .unwrap();
        let mut workers = workers;
        for worker in &mut workers {
            worker.send_line("go").unwrap();
        }
        for task in 0..count {
            tasks.put(task).unwrap();
        }
        assert_eq!(tasks.join(), Ok(()));
        // Every result is there already: `join` did not return early.
        assert_eq!(tasks.unfinished_tasks(), 0);
        let mut got: Vec<u64> = (0..count).map(|_| results.try_get().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..count).collect::<Vec<_>>());
        assert_eq!(results.try_get(), Err(TryGetError::Empty));
        tasks.close();
        for mut worker in workers {
            worker.wait_success(WAIT);
        }
        assert_eq!(tasks.task_done(), Err(TaskDoneError::TooManyCalls));
    }
    leaks.finish();
}

#[test]
fn last_task_done_wakes_a_joiner_in_another_process() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = JoinableQueue::<u32>::builder()
        .capacity(4)
        .create_anonymous()
        .unwrap();
    let mut joiner = child_builder(&test_name!(), "joiner")
        .env(QUEUE_ENV, share(&q))
        .spawn(|| {
            let q: JoinableQueue<u32> = from_env(QUEUE_ENV);
            assert_eq!(wait_parent_line(), "join");
            assert_eq!(q.join(), Ok(()));
            assert_eq!(q.unfinished_tasks(), 0);
        });
    q.put(1).unwrap();
    q.put(2).unwrap();
    joiner.send_line("join").unwrap();
    // The joiner is asleep on the futex (two tasks are unfinished).
    spin_until(|| q.joiners() == 1);
    assert_eq!(q.get(), Ok(1));
    q.task_done().unwrap();
    assert_eq!(q.get(), Ok(2));
    // Not yet: one task is still unfinished, so the joiner must still be waiting.
    assert_eq!(q.unfinished_tasks(), 1);
    assert!(joiner.wait_timeout(Duration::ZERO).is_err());
    q.task_done().unwrap();
    joiner.wait_success(WAIT);
    assert_eq!(q.joiners(), 0);
}

#[test]
fn too_many_task_done_calls_are_an_error_in_every_process() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = JoinableQueue::<u32>::builder()
        .capacity(2)
        .create_anonymous()
        .unwrap();
    let mut child = child_builder(&test_name!(), "consumer")
        .env(QUEUE_ENV, share(&q))
        .spawn(|| {
            let q: JoinableQueue<u32> = from_env(QUEUE_ENV);
            assert_eq!(q.get(), Ok(7));
            assert_eq!(q.task_done(), Ok(()));
            assert_eq!(q.task_done(), Err(TaskDoneError::TooManyCalls));
            signal_parent("done");
        });
    q.put(7).unwrap();
    child.wait_line("done", WAIT).unwrap();
    child.wait_success(WAIT);
    // The failed call did not wrap the count around.
    assert_eq!(q.unfinished_tasks(), 0);
    assert_eq!(q.task_done(), Err(TaskDoneError::TooManyCalls));
    // The consumer process exited after its `task_done`: nothing to write off.
    assert_eq!(q.join(), Ok(()));
    assert_eq!(q.abandoned_tasks(), 0);
    // A failed put does not count a task.
    q.close();
    assert!(q.put(1).is_err());
    assert_eq!(q.unfinished_tasks(), 0);
}

#[test]
fn join_timeout_never_returns_early() {
    let q = JoinableQueue::<u32>::builder()
        .capacity(2)
        .create_anonymous()
        .unwrap();
    q.put(1).unwrap();
    for ms in [0, 1, 5, 20] {
        let timeout = Duration::from_millis(ms);
        let start = Instant::now();
        assert_eq!(
            q.join_timeout(timeout),
            Err(JoinTimeoutError::Timeout { unfinished: 1 })
        );
        assert!(start.elapsed() >= timeout, "returned early for {timeout:?}");
    }
    q.get().unwrap();
    q.task_done().unwrap();
    assert_eq!(q.join_timeout(Duration::from_secs(3600)), Ok(()));
}

#[test]
fn join_writes_off_the_tasks_of_a_dead_consumer() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = JoinableQueue::<u32>::builder()
        .capacity(4)
        .create_anonymous()
        .unwrap();
    let mut victim = child_builder(&test_name!(), "victim")
        .env(QUEUE_ENV, share(&q))
        .spawn(|| {
            let q: JoinableQueue<u32> = from_env(QUEUE_ENV);
            assert_eq!(q.get(), Ok(1));
            assert_eq!(q.get(), Ok(2));
            q.task_done().unwrap();
            signal_parent("got");
            let _ = wait_parent_line();
            unreachable!("killed before the second task_done");
        });
    q.put(1).unwrap();
    q.put(2).unwrap();
    victim.wait_line("got", WAIT).unwrap();
    q.put(3).unwrap();
    // The victim holds one task; this process gets the third.
    assert_eq!(q.get(), Ok(3));
    assert_eq!(q.unfinished_tasks(), 2);
    // While the victim lives, its task is just unfinished.
    assert_eq!(
        q.join_timeout(Duration::from_millis(30)),
        Err(JoinTimeoutError::Timeout { unfinished: 2 })
    );
    victim.kill();
    assert_eq!(victim.wait_timeout(WAIT).unwrap().signal(), Some(9));
    // Still one task of a live process (ours): not written off.
    assert_eq!(
        q.join_timeout(Duration::from_millis(30)),
        Err(JoinTimeoutError::Timeout { unfinished: 1 })
    );
    assert_eq!(q.abandoned_tasks(), 1);
    q.task_done().unwrap();
    // The dead victim's task was written off by the join above, not this one.
    assert_eq!(q.join(), Ok(()));
    assert_eq!(q.unfinished_tasks(), 0);
    assert_eq!(q.task_done(), Err(TaskDoneError::TooManyCalls));
}

#[test]
fn join_reports_abandoned_tasks_instead_of_hanging() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = JoinableQueue::<u32>::builder()
        .capacity(4)
        .create_anonymous()
        .unwrap();
    let mut victim = child_builder(&test_name!(), "victim")
        .env(QUEUE_ENV, share(&q))
        .spawn(|| {
            let q: JoinableQueue<u32> = from_env(QUEUE_ENV);
            assert_eq!(q.get(), Ok(1));
            signal_parent("got");
            let _ = wait_parent_line();
            unreachable!("killed before task_done");
        });
    q.put(1).unwrap();
    victim.wait_line("got", WAIT).unwrap();
    let joiner = {
        let q = q.clone();
        std::thread::spawn(move || q.join())
    };
    // Python's join would wait forever from here.
    victim.kill();
    assert_eq!(victim.wait_timeout(WAIT).unwrap().signal(), Some(9));
    assert_eq!(
        joiner.join().unwrap(),
        Err(JoinError::Abandoned { tasks: 1 })
    );
    assert_eq!((q.unfinished_tasks(), q.abandoned_tasks()), (0, 1));
    // The queue goes on.
    q.put(2).unwrap();
    assert_eq!(q.get(), Ok(2));
    q.task_done().unwrap();
    assert_eq!(q.join(), Ok(()));
    q.close();
    assert_eq!(q.get(), Err(GetError::Closed));
    assert_eq!(q.try_get(), Err(TryGetError::Closed));
}
