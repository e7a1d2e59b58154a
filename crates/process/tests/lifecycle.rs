//! Python's Process lifecycle across real processes: results, exit codes for every way a
//! child can end, time-outs, names, parents, daemons, and handles passed as arguments.

shm_process::init_before_main!();

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shm_process::{
    JoinTimeoutError, Process, ProcessError, active_children, current_process, parent_process,
};
use shm_segment::{ObjectKind, Segment, SegmentOptions};
use test_support::{Watchdog, child_builder, signal_parent_with, test_name, wait_parent_line};

const STEP: Duration = Duration::from_secs(30);

fn print_square(num: i64) -> String {
    format!("Square: {}", num * num)
}

fn print_cube(num: i64) -> String {
    format!("Cube: {}", num * num * num)
}

/// The tutorial's first program: square and cube of 5 in two processes, then "Done!".
#[test]
fn tutorial_square_and_cube_of_five() {
    let _wd = Watchdog::new(STEP);
    let mut p1 = Process::new(print_square, 5);
    let mut p2 = Process::new(print_cube, 5);
    p1.start().unwrap();
    p2.start().unwrap();
    let lines = [p1.join().unwrap(), p2.join().unwrap(), "Done!".to_owned()];
    assert_eq!(lines, ["Square: 25", "Cube: 125", "Done!"]);
    assert_eq!((p1.exitcode(), p2.exitcode()), (Some(0), Some(0)));
}

fn panics(message: String) -> u8 {
    panic!("{message}")
}

fn fails(code: u32) -> Result<u32, String> {
    Err(format!("failure #{code}"))
}

fn exits(code: i32) -> u8 {
    std::process::exit(code)
}

fn sleeps(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn exit_codes_for_success_panic_error_exit_and_signals() {
    let _wd = Watchdog::new(STEP);
    let mut identities = Vec::new();
    // Taken right after spawn: a child that already exited is a zombie until joined.
    let mut track = |pid: Option<u32>| {
        identities.push(shm_segment::ProcessId::of(pid.unwrap()).expect("in /proc until joined"));
    };
    let mut ok = Process::spawn(sleeps, 0).unwrap();
    track(ok.pid());
    assert_eq!(ok.join(), Ok(0));
    assert_eq!(ok.exitcode(), Some(0));

    let mut panicked = Process::spawn(panics, "it broke".to_owned()).unwrap();
    track(panicked.pid());
    match panicked.join() {
        Err(ProcessError::Panicked { message, name }) => {
            assert_eq!(message, "it broke");
            assert_eq!(name, panicked.name());
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(panicked.exitcode(), Some(1));

    let mut failed = Process::spawn(fails, 7).unwrap();
    track(failed.pid());
    assert_eq!(
        failed.join(),
        Ok(Err("failure #7".to_owned())),
        "the Err value itself comes back"
    );
    assert_eq!(
        failed.exitcode(),
        Some(1),
        "and the exit code says it failed"
    );

    let mut exited = Process::spawn(exits, 3).unwrap();
    track(exited.pid());
    assert!(matches!(
        exited.join(),
        Err(ProcessError::Exited { code: 3, .. })
    ));
    assert_eq!(exited.exitcode(), Some(3));

    let mut termed = Process::spawn(sleeps, 60_000).unwrap();
    track(termed.pid());
    assert!(termed.is_alive());
    assert_eq!(termed.exitcode(), None);
    termed.terminate().unwrap();
    assert!(matches!(
        termed.join(),
        Err(ProcessError::Killed { signal: 15, .. })
    ));
    assert_eq!(termed.exitcode(), Some(-15));

    let mut killed = Process::spawn(sleeps, 60_000).unwrap();
    track(killed.pid());
    killed.kill().unwrap();
    assert!(matches!(
        killed.join(),
        Err(ProcessError::Killed { signal: 9, .. })
    ));
    assert_eq!(killed.exitcode(), Some(-9));
    killed.kill().unwrap(); // signalling an ended process is a no-op
    assert!(!killed.is_alive());

    // No orphans and no zombies: every joined child is gone from /proc (a recycled pid,
    // told apart by its start time, does not count).
    for id in identities {
        let still_there =
            shm_segment::ProcessId::of(id.pid).is_some_and(|now| now.start_time == id.start_time);
        assert!(!still_there, "process {} is still in /proc", id.pid);
    }
}

#[test]
fn join_timeout_returns_at_the_deadline_and_can_be_retried() {
    let _wd = Watchdog::new(STEP);
    let mut p = Process::spawn(sleeps, 60_000).unwrap();
    let started = Instant::now();
    assert_eq!(
        p.join_timeout(Duration::from_millis(50)),
        Err(JoinTimeoutError::Timeout)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "never early"
    );
    assert!(p.is_alive(), "a timed-out join leaves the process running");
    p.kill().unwrap();
    assert!(matches!(
        p.join_timeout(STEP),
        Err(JoinTimeoutError::Process(ProcessError::Killed { .. }))
    ));
    assert_eq!(p.join(), Err(ProcessError::AlreadyJoined));

    let mut never = Process::new(sleeps, 1);
    assert_eq!(never.join(), Err(ProcessError::NotStarted));
    never.start().unwrap();
    assert!(matches!(
        never.start(),
        Err(shm_process::StartError::AlreadyStarted)
    ));
    assert_eq!(never.join(), Ok(1));
}

fn who_am_i(_: ()) -> (String, u32, Option<(String, u32)>) {
    let me = current_process();
    (me.name, me.pid, parent_process().map(|p| (p.name, p.pid)))
}

fn grandchild_name(_: ()) -> String {
    let mut p = Process::spawn(who_am_i, ()).unwrap();
    p.join().unwrap().0
}

#[test]
fn names_pids_and_parents() {
    let _wd = Watchdog::new(STEP);
    let mut a = Process::spawn(who_am_i, ()).unwrap();
    let mut b = Process::new(who_am_i, ()).with_name("custom");
    b.start().unwrap();
    let (name_a, pid_a, parent_a) = a.join().unwrap();
    let (name_b, _, _) = b.join().unwrap();
    assert_eq!(name_a, a.name());
    assert!(name_a.starts_with("Process-"), "{name_a}");
    assert_eq!(Some(pid_a), a.pid());
    assert_eq!(
        parent_a,
        Some(("MainProcess".to_owned(), std::process::id()))
    );
    assert_eq!(name_b, "custom");
    assert_eq!(current_process().name, "MainProcess");
    assert!(parent_process().is_none());

    let mut c = Process::spawn(grandchild_name, ()).unwrap();
    let grandchild = c.join().unwrap();
    let own = c.name().strip_prefix("Process-").unwrap().to_owned();
    assert_eq!(
        grandchild,
        format!("Process-{own}:1"),
        "Python-style nested names"
    );
}

fn bump(seg: Segment) -> u64 {
    // SAFETY: the test's segment has at least 8 data bytes, used only atomically.
    let word = unsafe { AtomicU64::from_ptr(seg.data().as_ptr().cast()) };
    word.fetch_add(1, Ordering::AcqRel) + 1
}

#[test]
fn handles_travel_as_arguments() {
    let _wd = Watchdog::new(STEP);
    let anonymous = SegmentOptions::new(ObjectKind::RAW)
        .len(8)
        .create_anonymous()
        .unwrap();
    let mut children: Vec<_> = (0..4)
        .map(|_| Process::new(bump, anonymous_clone(&anonymous)))
        .collect();
    for c in &mut children {
        c.start().unwrap();
    }
    let mut seen: Vec<u64> = children.iter_mut().map(|c| c.join().unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        [1, 2, 3, 4],
        "four processes incremented the same anonymous segment"
    );
}

/// A second handle to the same anonymous segment, made the way a receiver would.
fn anonymous_clone(seg: &Segment) -> Segment {
    SegmentOptions::new(ObjectKind::RAW)
        .open_fd(seg.fd().try_clone_to_owned().unwrap())
        .unwrap()
}

#[test]
fn spawning_from_many_threads_at_once_is_safe() {
    let _wd = Watchdog::new(STEP);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                (0..4)
                    .map(|i| {
                        let mut p = Process::spawn(print_square, t * 10 + i).unwrap();
                        p.join().unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for (t, handle) in threads.into_iter().enumerate() {
        let got = handle.join().unwrap();
        let want: Vec<_> = (0..4).map(|i| print_square(t as i64 * 10 + i)).collect();
        assert_eq!(got, want);
    }
}

fn pid_alive(pid: u32) -> bool {
    shm_segment::ProcessId::of(pid).is_some_and(|p| p.is_alive())
}

/// RELIABILITY row 18: daemon children die with their parent, even when it is SIGKILLed;
/// non-daemon children live on (as in Python).
#[test]
fn daemon_children_die_when_the_parent_is_killed() {
    let _wd = Watchdog::new(STEP);
    let mut parent = child_builder(&test_name!(), "parent").spawn(|| {
        let daemon = Process::new(sleeps, 600_000).daemon(true);
        let mut daemon = daemon;
        daemon.start().unwrap();
        let plain = Process::spawn(sleeps, 600_000).unwrap();
        signal_parent_with(
            "pids",
            format!("{} {}", daemon.pid().unwrap(), plain.pid().unwrap()),
        );
        wait_parent_line();
        let _ = plain.kill();
    });
    let pids = parent.wait_line("pids", STEP).unwrap();
    let pids: Vec<u32> = pids.split(' ').map(|p| p.parse().unwrap()).collect();
    let (daemon, plain) = (pids[0], pids[1]);
    assert!(pid_alive(daemon) && pid_alive(plain));
    parent.kill();
    parent.wait_timeout(STEP).unwrap();
    // The kernel delivers the parent-death signal as the parent exits; wait on a pidfd.
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(daemon as i32).unwrap(),
        rustix::process::PidfdFlags::empty(),
    );
    if let Ok(fd) = pidfd {
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::time::Timespec {
            tv_sec: 20,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut fds, Some(&timeout)).unwrap();
    }
    assert!(!pid_alive(daemon), "the daemon died with its parent");
    assert!(pid_alive(plain), "a non-daemon child outlives its parent");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(plain as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
}

#[test]
fn active_children_lists_running_ones_and_reaps_finished_ones() {
    let _wd = Watchdog::new(STEP);
    let mut long = Process::spawn(sleeps, 60_000).unwrap();
    let pid = long.pid().unwrap();
    assert!(
        active_children()
            .iter()
            .any(|c| c.pid == pid && c.name == long.name())
    );
    long.kill().unwrap();
    let _ = long.join();
    assert!(!active_children().iter().any(|c| c.pid == pid));
    assert!(!pid_alive(pid), "joined children are reaped, not zombies");
}

fn in_forked_child() -> (u32, String) {
    // The parent's cached identity must not survive the fork.
    assert_eq!(shm_segment::ProcessId::current().pid, std::process::id());
    (std::process::id(), current_process().name)
}

/// Runs in a spawned child, which (unlike the test harness) has a single thread.
fn fork_three_ways(_: ()) -> Result<String, String> {
    let threads = std::fs::read_dir("/proc/self/task").unwrap().count();
    if threads != 1 {
        return Err(format!("the spawned child runs {threads} threads"));
    }
    let captured = String::from("123"); // heap data, copied into the fork
    let mut p = Process::fork(move || captured.bytes().map(|b| u64::from(b - b'0')).sum::<u64>())
        .map_err(|e| e.to_string())?;
    assert_eq!(p.join().unwrap(), 6, "a capturing closure ran in the fork");
    let mut q = Process::fork(in_forked_child).map_err(|e| e.to_string())?;
    let (pid, name) = q.join().unwrap();
    assert_eq!(Some(pid), q.pid());
    assert_eq!(name, q.name());
    let mut r = Process::fork(|| -> u8 { panic!("forked panic") }).map_err(|e| e.to_string())?;
    match r.join() {
        Err(ProcessError::Panicked { message, .. }) if message == "forked panic" => {}
        other => return Err(format!("expected the forked panic, got {other:?}")),
    }
    assert_eq!(r.exitcode(), Some(1));

    // A forked child that drops its copy of the parent's creating handle must neither
    // remove the parent's name nor free the parent's attach slot.
    let seg_name = format!("t-fork-drop-{}", std::process::id());
    let mut creator = Some(
        SegmentOptions::new(ObjectKind::RAW)
            .create(&seg_name)
            .unwrap(),
    );
    let mut dropper = Process::fork(|| drop(creator.take())).map_err(|e| e.to_string())?;
    dropper.join().unwrap();
    let creator = creator.expect("the parent's handle is untouched by the child");
    if SegmentOptions::new(ObjectKind::RAW)
        .open(&seg_name)
        .is_err()
    {
        return Err("the forked child removed the parent's segment".into());
    }
    if creator.attached() != vec![shm_segment::ProcessId::current()] {
        return Err(format!("attach table changed: {:?}", creator.attached()));
    }
    drop(creator);
    Ok(name)
}

#[test]
fn fork_runs_a_capturing_closure_in_a_single_threaded_process() {
    let _wd = Watchdog::new(STEP);
    let mut child = Process::spawn(fork_three_ways, ()).unwrap();
    let forked_name = child.join().unwrap().unwrap();
    assert_eq!(
        forked_name,
        format!("{}:2", child.name()),
        "a forked grandchild is named like a spawned one"
    );
    // Here, in the multi-threaded test harness, fork refuses.
    assert!(matches!(
        Process::fork(|| 1u8),
        Err(shm_process::ForkError::MultiThreaded { .. })
    ));
}

fn ignore_sigchld_then_spawn(_: ()) -> Result<String, String> {
    // SAFETY: sets a disposition in this single-purpose child process only.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let mut child = Process::spawn(print_square, 4).map_err(|e| e.to_string())?;
    // The kernel reaps the child itself; `join` must neither spin nor hang, and the result
    // still comes from the child's report.
    let result = child
        .join_timeout(Duration::from_secs(20))
        .map_err(|e| e.to_string())?;
    if child.is_alive() {
        return Err("a reaped child still counts as alive".into());
    }
    Ok(result)
}

/// With SIGCHLD ignored, someone else (the kernel) reaps children: join still ends.
#[test]
fn join_survives_sigchld_being_ignored() {
    let _wd = Watchdog::new(STEP);
    let mut p = Process::spawn(ignore_sigchld_then_spawn, ()).unwrap();
    assert_eq!(p.join().unwrap(), Ok("Square: 16".to_owned()));
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Orphan {
    flag: shm_lock::Value<u64>,
    parent: u32,
}

fn orphan_work(args: Orphan) {
    // Wait (bounded) until the parent that spawned us has exited.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::process::parent_id() == args.parent && Instant::now() < deadline {
        std::thread::yield_now();
    }
    args.flag.store(1);
}

fn spawn_and_leave(flag: shm_lock::Value<u64>) {
    let orphan = Orphan {
        flag,
        parent: std::process::id(),
    };
    // Fire and forget: this process exits without joining.
    let _ = Process::spawn(orphan_work, orphan).unwrap();
}

/// A child whose parent exits before it starts still runs its function (it must not fall
/// through into `main`).
#[test]
fn an_orphaned_child_still_runs_its_function() {
    let _wd = Watchdog::new(STEP);
    let flag = shm_lock::Value::new(0u64).unwrap();
    let mut parent = Process::spawn(spawn_and_leave, flag.clone()).unwrap();
    parent.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while flag.load() != 1 {
        assert!(
            Instant::now() < deadline,
            "the orphaned child never ran its function"
        );
        std::thread::yield_now();
    }
}
