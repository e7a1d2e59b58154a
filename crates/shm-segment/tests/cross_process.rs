//! Segments shared between real processes: named and anonymous, growth, the ready
//! handshake, racing creators.

mod common;

use std::time::Duration;

use common::{STEP, load, shared_env, store};
use shm_segment::transfer;
use shm_segment::{ObjectKind, OpenError, Segment, SegmentOptions, TypeFingerprint};
use test_support::{
    ShmLeakCheck, Watchdog, child_builder, signal_parent, signal_parent_with, test_name,
    unique_name, wait_parent_line,
};

fn opts() -> SegmentOptions {
    SegmentOptions::new(ObjectKind::RAW)
        .fingerprint(TypeFingerprint::of::<u64>())
        .len(4096)
}

#[test]
fn child_sees_parent_writes_and_parent_sees_childs() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = shared_env("SEG_NAME", || unique_name("rw"));
    let mut child = child_builder(&test_name!(), "reader")
        .env("SEG_NAME", &name)
        .spawn(|| {
            assert_eq!(wait_parent_line(), "created");
            let seg = opts()
                .open(&name)
                .expect("child opens the parent's segment");
            assert_eq!(load(&seg, 0), 42, "child sees the parent's write");
            store(&seg, 1, 43);
            signal_parent("written");
            assert_eq!(wait_parent_line(), "bye");
        });
    let leaks = ShmLeakCheck::new(&name);
    let seg = opts().create(&name).unwrap();
    store(&seg, 0, 42);
    child.send_line("created").unwrap();
    child.wait_line("written", STEP).unwrap();
    assert_eq!(load(&seg, 1), 43, "parent sees the child's write");
    child.send_line("bye").unwrap();
    child.wait_success(STEP);
    drop(seg);
    leaks.finish();
}

/// The transfer mechanism end to end with a plain `std::process::Command`: two anonymous
/// segments serialised inside `collect_fds`, inherited with `transfer::inherit`, taken with
/// `take_inherited` and opened inside `with_received_fds`.
#[test]
fn anonymous_segments_inherited_by_a_command_child() {
    if let Ok(token) = std::env::var("TRANSFER_TOKEN") {
        // The child: this test binary, started below with the token in its environment.
        let fds = transfer::take_inherited();
        assert_eq!(fds.len(), 2, "both descriptors inherited");
        assert!(transfer::take_inherited().is_empty(), "taken only once");
        let (a, b): (Segment, Segment) =
            transfer::with_received_fds(&fds, || serde_json::from_str(&token)).unwrap();
        assert!(a.name().is_none() && b.name().is_none());
        store(&a, 0, load(&a, 0) + 1);
        store(&b, 0, load(&b, 0) + 2);
        return;
    }
    let _wd = Watchdog::new(Duration::from_secs(60));
    let a = opts().create_anonymous().unwrap();
    let b = opts().create_anonymous().unwrap();
    store(&a, 0, 10);
    store(&b, 0, 20);
    let (token, fds) = transfer::collect_fds(|| serde_json::to_string(&(&a, &b)).unwrap());
    assert_eq!(fds.len(), 2);
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            test_name!().as_str(),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TRANSFER_TOKEN", &token);
    transfer::inherit(&mut command, fds);
    let status = command.status().unwrap();
    assert!(status.success(), "child failed: {status}");
    assert_eq!(
        (load(&a, 0), load(&b, 0)),
        (11, 22),
        "the child wrote through both segments"
    );
}

#[test]
fn anonymous_segment_reopened_through_proc_while_sender_lives() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let parent = test_support::child_role().is_none();
    // No collect scope: the token names this process and its fd, as a queue would carry it.
    let seg = parent.then(|| opts().create_anonymous().unwrap());
    let token = seg
        .as_ref()
        .map(|s| serde_json::to_string(s).unwrap())
        .unwrap_or_default();
    let mut child = child_builder(&test_name!(), "proc-reader")
        .env("TOKEN", &token)
        .spawn(|| {
            let token = std::env::var("TOKEN").unwrap();
            let seg: Segment = serde_json::from_str(&token).expect("reopen via /proc/PID/fd/N");
            store(&seg, 2, 99);
            signal_parent("done");
        });
    child.wait_line("done", STEP).unwrap();
    child.wait_success(STEP);
    assert_eq!(load(seg.as_ref().unwrap(), 2), 99);
}

#[test]
fn anonymous_handle_from_a_dead_sender_is_holder_gone() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let mut child = child_builder(&test_name!(), "sender").spawn(|| {
        let seg = opts().create_anonymous().unwrap();
        signal_parent_with("token", serde_json::to_string(&seg).unwrap());
        assert_eq!(wait_parent_line(), "exit");
    });
    let token = child.wait_line("token", STEP).unwrap();
    child.send_line("exit").unwrap();
    child.wait_success(STEP);
    let token: transfer::SegmentToken = serde_json::from_str(&token).unwrap();
    match token.open(&opts()) {
        Err(OpenError::HolderGone { .. }) => {}
        other => panic!("expected HolderGone, got {other:?}"),
    }
}

#[test]
fn grow_is_seen_by_a_reader_in_another_process() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = shared_env("SEG_NAME", || unique_name("grow"));
    const BIG: usize = 8 << 20;
    let mut child = child_builder(&test_name!(), "reader")
        .env("SEG_NAME", &name)
        .spawn(|| {
            assert_eq!(wait_parent_line(), "created");
            let seg = opts().open(&name).unwrap();
            let small = seg.data_len();
            assert!(small < BIG);
            signal_parent("opened");
            assert_eq!(wait_parent_line(), "grown");
            assert!(seg.refresh().unwrap(), "the generation changed");
            assert!(seg.data_len() >= BIG);
            assert_eq!(load(&seg, 0), 1, "old data kept");
            assert_eq!(load(&seg, BIG / 8 - 1), 2, "new data visible");
            // Grow from this side; the parent must see it too.
            seg.grow(2 * BIG).unwrap();
            store(&seg, 2 * BIG / 8 - 1, 3);
            signal_parent("grown-again");
            assert_eq!(wait_parent_line(), "bye");
        });
    let leaks = ShmLeakCheck::new(&name);
    let seg = opts().max_len(4 * BIG).create(&name).unwrap();
    store(&seg, 0, 1);
    child.send_line("created").unwrap();
    child.wait_line("opened", STEP).unwrap();
    let generation = seg.generation();
    seg.grow(BIG).unwrap();
    assert_eq!(seg.generation(), generation + 1);
    store(&seg, BIG / 8 - 1, 2);
    child.send_line("grown").unwrap();
    child.wait_line("grown-again", STEP).unwrap();
    assert!(seg.refresh().unwrap());
    assert_eq!(load(&seg, 2 * BIG / 8 - 1), 3);
    assert_eq!(load(&seg, 0), 1);
    child.send_line("bye").unwrap();
    child.wait_success(STEP);
    drop(seg);
    leaks.finish();
}

#[test]
fn opener_waits_for_a_slow_creator_to_finish_init() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = shared_env("SEG_NAME", || unique_name("slow"));
    let mut child = child_builder(&test_name!(), "creator")
        .env("SEG_NAME", &name)
        .spawn(|| {
            let seg = opts()
                .create_with(&name, |seg| {
                    signal_parent("initialising");
                    assert_eq!(wait_parent_line(), "finish");
                    store(seg, 0, 1234);
                })
                .unwrap();
            signal_parent("ready");
            assert_eq!(wait_parent_line(), "bye");
            drop(seg);
        });
    let leaks = ShmLeakCheck::new(&name);
    child.wait_line("initialising", STEP).unwrap();
    let opener = {
        let name = name.clone();
        std::thread::spawn(move || {
            let seg = opts().init_timeout(STEP).open(&name).unwrap();
            load(&seg, 0)
        })
    };
    child.send_line("finish").unwrap();
    assert_eq!(
        opener.join().unwrap(),
        1234,
        "the opener saw the initialised object"
    );
    child.wait_line("ready", STEP).unwrap();
    child.send_line("bye").unwrap();
    child.wait_success(STEP);
    leaks.finish();
}

#[test]
fn creator_killed_before_ready_gives_init_timeout_and_gc_reclaims() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = shared_env("SEG_NAME", || unique_name("dead-creator"));
    let mut child = child_builder(&test_name!(), "creator")
        .env("SEG_NAME", &name)
        .park_at("segment.create.before_ready")
        .spawn(|| {
            let _seg = opts().create(&name);
            unreachable!("the child parks at the fault point and is killed there");
        });
    let leaks = ShmLeakCheck::new(&name);
    child
        .wait_parked("segment.create.before_ready", STEP)
        .unwrap();

    // Creator alive but stuck: a bounded wait, then InitTimeout naming a live creator.
    match opts().init_timeout(Duration::from_millis(100)).open(&name) {
        Err(OpenError::InitTimeout {
            creator: Some(c),
            creator_alive: true,
            ..
        }) => assert_eq!(c.pid, child.pid()),
        other => panic!("expected InitTimeout with a live creator, got {other:?}"),
    }
    assert!(
        !shm_segment::catalog::gc_matching(&name, false)
            .unwrap()
            .removed
            .contains(&name),
        "live creator: kept"
    );

    child.kill();
    child.wait_timeout(STEP).unwrap();
    // Creator dead: reported at once, even with an hour-long time-out (the watchdog
    // fails the test if it waited).
    match opts().init_timeout(Duration::from_secs(3600)).open(&name) {
        Err(OpenError::InitTimeout {
            creator_alive: false,
            ..
        }) => {}
        other => panic!("expected InitTimeout with a dead creator, got {other:?}"),
    }
    // Another test's child, forked but not yet exec'd, can hold a copy of a descriptor
    // this process had open at the time (and so the segment's lock) for a moment: gc
    // rightly keeps the segment then, so give it a few tries.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let report = loop {
        let report = shm_segment::catalog::gc_matching(&name, false).unwrap();
        if report.removed.contains(&name) || std::time::Instant::now() > deadline {
            break report;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        report.removed.contains(&name),
        "gc removes the dead creator's segment: {report:?}"
    );
    leaks.finish();
}

#[test]
fn gc_keeps_a_segment_with_a_live_attached_process() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = shared_env("SEG_NAME", || unique_name("attached"));
    let mut child = child_builder(&test_name!(), "creator")
        .env("SEG_NAME", &name)
        .spawn(|| {
            let _seg = opts().create(&name).unwrap();
            signal_parent("created");
            assert_eq!(wait_parent_line(), "never");
        });
    let leaks = ShmLeakCheck::new(&name);
    child.wait_line("created", STEP).unwrap();
    let seg = opts().open(&name).unwrap();
    child.kill();
    child.wait_timeout(STEP).unwrap();

    let info = shm_segment::catalog::describe_name(&name).unwrap();
    assert!(!info.creator_alive);
    assert_eq!(info.attached.len(), 1, "this process is attached: {info:?}");
    assert!(!info.stale);
    let report = shm_segment::catalog::gc_matching(&name, false).unwrap();
    assert!(
        !report.removed.contains(&name),
        "in use by this process: kept"
    );
    assert!(std::path::Path::new(&common::shm_path(&name)).exists());

    drop(seg);
    let report = shm_segment::catalog::gc_matching(&name, false).unwrap();
    assert!(
        report.removed.contains(&name),
        "nobody left: removed ({report:?})"
    );
    leaks.finish();
}

#[test]
fn racing_create_or_open_has_exactly_one_creator_per_name() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    const RACERS: usize = 8;
    let rounds = test_support::iterations(50);
    let prefix = shared_env("SEG_PREFIX", || unique_name("race"));
    let mut children = Vec::new();
    for racer in 0..RACERS {
        let role = format!("racer-{racer}");
        let prefix = prefix.clone();
        children.push(
            child_builder(&test_name!(), &role)
                .env("SEG_PREFIX", &prefix)
                .spawn(move || {
                    assert_eq!(wait_parent_line(), "go");
                    let mut created = Vec::new();
                    let mut held = Vec::new();
                    for round in 0..rounds {
                        let seg = opts()
                            .init_timeout(STEP)
                            .create_or_open_with(&format!("{prefix}-{round}"), |seg| {
                                common::word(seg, 0)
                                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            })
                            .unwrap();
                        assert_eq!(
                            load(&seg, 0),
                            1,
                            "every handle sees the object initialised once"
                        );
                        if seg.is_creator() {
                            seg.persist();
                            created.push(round.to_string());
                        }
                        held.push(seg);
                    }
                    signal_parent_with("created", created.join(","));
                    assert_eq!(wait_parent_line(), "bye");
                }),
        );
    }
    let leaks = ShmLeakCheck::new(&prefix);
    for child in &mut children {
        child.send_line("go").unwrap();
    }
    let mut creators = vec![0usize; rounds];
    for child in &mut children {
        let created = child.wait_line("created", STEP * 3).unwrap();
        for round in created.split(',').filter(|s| !s.is_empty()) {
            creators[round.parse::<usize>().unwrap()] += 1;
        }
    }
    for child in &mut children {
        child.send_line("bye").unwrap();
        child.wait_success(STEP);
    }
    for round in 0..rounds {
        Segment::unlink(&format!("{prefix}-{round}")).unwrap();
    }
    assert!(
        creators.iter().all(|&n| n == 1),
        "creators per round: {creators:?}"
    );
    leaks.finish();
}

#[test]
fn open_is_permission_denied_for_another_user() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    if test_support::child_role().is_none()
        && (!test_support::is_root() || !test_support::have_program("setpriv"))
    {
        test_support::skip("needs root and setpriv to open a 0600 segment as uid 65534");
        return;
    }
    let name = shared_env("SEG_NAME", || unique_name("perm"));
    let mut child = child_builder(&test_name!(), "nobody")
        .env("SEG_NAME", &name)
        .wrapper(&[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .spawn(|| {
            assert_eq!(wait_parent_line(), "created");
            match opts().open(&name) {
                Err(OpenError::PermissionDenied { .. }) => signal_parent("denied"),
                other => panic!("expected PermissionDenied, got {other:?}"),
            }
            assert!(
                matches!(
                    opts().create(&format!("{name}-x")),
                    Err(shm_segment::CreateError::AlreadyExists { .. }
                        | shm_segment::CreateError::PermissionDenied { .. })
                ) || std::path::Path::new("/dev/shm").metadata().is_ok()
            );
        });
    let leaks = ShmLeakCheck::new(&name);
    let seg = opts().create(&name).unwrap();
    child.send_line("created").unwrap();
    match child.wait_line("denied", STEP) {
        Ok(_) => child.wait_success(STEP),
        Err(e) => {
            let tail = child.stderr_tail().join("\n");
            // The test binary itself may not be reachable by uid 65534 (a private checkout).
            if tail.contains("Permission denied") && tail.contains("exec") {
                test_support::skip("the test binary is not executable by uid 65534 here");
            } else {
                panic!("child failed: {e}\n{tail}");
            }
        }
    }
    drop(seg);
    leaks.finish();
}

#[test]
fn named_handle_travels_as_its_name() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = shared_env("SEG_NAME", || unique_name("serde-named"));
    let mut child = child_builder(&test_name!(), "receiver")
        .env("SEG_NAME", &name)
        .spawn(|| {
            let json = wait_parent_line();
            assert!(
                json.contains(&name),
                "a named handle serialises as its name: {json}"
            );
            let seg: Segment = serde_json::from_str(&json).unwrap();
            assert_eq!(seg.name().unwrap().as_str(), name);
            assert!(!seg.is_creator());
            store(&seg, 0, 5);
            signal_parent("stored");
        });
    let leaks = ShmLeakCheck::new(&name);
    let seg = opts().create(&name).unwrap();
    child
        .send_line(&serde_json::to_string(&seg).unwrap())
        .unwrap();
    child.wait_line("stored", STEP).unwrap();
    child.wait_success(STEP);
    assert_eq!(load(&seg, 0), 5);
    drop(seg);
    leaks.finish();
}
