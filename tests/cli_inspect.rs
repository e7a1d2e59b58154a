//! `multiproc inspect NAME`: a queue's depth and flags, a lock's holder alive and then dead
//! (a child process holds it and is SIGKILLed), a manager's containers, and the errors for
//! a missing name and a file that is not a multiproc segment.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use test_support::{
    ShmLeakCheck, Watchdog, child_builder, signal_parent, test_name, unique_name, wait_parent_line,
};

fn multiproc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_multiproc"))
        .args(args)
        .output()
        .expect("run multiproc")
}

/// `multiproc inspect NAME --json`, which must succeed with one JSON object.
fn inspect_json(name: &str) -> Value {
    let out = multiproc(&["inspect", name, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn inspect_shows_a_queues_depth_capacity_and_closed_flag() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("cli-insp-queue");
    let leaks = ShmLeakCheck::new(&name);
    let queue = shm_queue::Queue::<u32>::builder()
        .capacity(8)
        .max_message_size(64)
        .create(&name)
        .unwrap();
    for i in 0..3 {
        queue.put(i).unwrap();
    }
    queue.close();

    let report = inspect_json(&name);
    assert_eq!(report["name"], name.as_str());
    assert_eq!(report["kind"], "queue");
    assert!(report["size"].as_u64().unwrap() > 0);
    assert_eq!(report["creator"]["pid"], std::process::id());
    assert_eq!(report["creator"]["alive"], true);
    assert!(
        report["attached"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == std::process::id()),
        "{report}"
    );
    let state = &report["state"];
    assert_eq!(state["len"], 3, "{report}");
    assert_eq!(state["capacity"], 8);
    assert_eq!(state["max_message"], 64);
    assert_eq!(state["closed"], true);
    assert_eq!(state["getters_waiting"], 0);
    assert_eq!(state["putters_waiting"], 0);

    let out = multiproc(&["inspect", &name]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("kind:     queue") && text.contains("len: 3"),
        "{text}"
    );
    drop(queue);
    leaks.finish();
}

#[test]
fn inspect_shows_a_lock_holder_alive_then_dead() {
    let wd = Watchdog::new(Duration::from_secs(60));
    let name = std::env::var("INSPECT_LOCK_NAME").unwrap_or_else(|_| unique_name("cli-insp-lock"));
    let mut child = child_builder(&test_name!(), "holder")
        .env("INSPECT_LOCK_NAME", &name)
        .spawn(|| {
            wait_parent_line();
            let lock = shm_lock::Lock::open(&name).unwrap();
            let Ok(_guard) = lock.acquire() else {
                panic!("the lock is free")
            };
            signal_parent("held");
            wait_parent_line();
        });
    wd.guard_child(child.pid());
    let leaks = ShmLeakCheck::new(&name);
    let lock = shm_lock::Lock::create(&name).unwrap();

    let report = inspect_json(&name);
    assert_eq!(report["kind"], "lock");
    assert_eq!(report["state"]["type"], "lock");
    assert_eq!(report["state"]["holder"], Value::Null, "free: {report}");

    child.send_line("go").unwrap();
    child.wait_line("held", Duration::from_secs(20)).unwrap();
    let report = inspect_json(&name);
    let holder = &report["state"]["holder"];
    assert_eq!(holder["pid"], child.pid(), "{report}");
    assert_eq!(holder["alive"], true, "{report}");
    // The child's test body runs on a thread of its own: the lock records that thread.
    let tid = holder["tid"].as_u64().unwrap();

    child.kill();
    child.wait_timeout(Duration::from_secs(20)).unwrap();
    let report = inspect_json(&name);
    let holder = &report["state"]["holder"];
    assert_eq!(holder["tid"], tid, "{report}");
    assert_eq!(holder["alive"], false, "{report}");
    let text = String::from_utf8_lossy(&multiproc(&["inspect", &name]).stdout).into_owned();
    assert!(
        text.contains("holder: ") && text.contains(" (dead)"),
        "{text}"
    );
    drop(lock);
    leaks.finish();
}

#[test]
fn inspect_shows_a_managers_containers() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("cli-insp-mgr");
    let leaks = ShmLeakCheck::new(&name);
    let manager = shm_manager::Manager::builder().create(&name).unwrap();
    let dict = manager.dict::<String, u32>("ages").unwrap();
    for (who, age) in [("ann", 31), ("bob", 42), ("cy", 7)] {
        dict.insert(&who.to_owned(), &age).unwrap();
    }
    manager
        .list::<u64>("squares")
        .unwrap()
        .extend((0..5u64).map(|i| i * i))
        .unwrap();

    let report = inspect_json(&name);
    assert_eq!(report["kind"], "manager");
    let state = &report["state"];
    let containers = state["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "{report}");
    assert_eq!(containers[0]["name"], "ages");
    assert_eq!(containers[0]["kind"], "dict");
    assert_eq!(containers[0]["len"], 3);
    assert_eq!(containers[1]["name"], "squares");
    assert_eq!(containers[1]["kind"], "list");
    assert_eq!(containers[1]["len"], 5);
    let total: u64 = containers
        .iter()
        .map(|c| c["bytes"].as_u64().unwrap())
        .sum();
    assert!(containers.iter().all(|c| c["bytes"].as_u64().unwrap() > 0));
    let (heap, used, max) = (
        state["heap_bytes"].as_u64().unwrap(),
        state["used_bytes"].as_u64().unwrap(),
        state["max_bytes"].as_u64().unwrap(),
    );
    assert!(total <= heap && heap <= used && used <= max, "{report}");
    drop((dict, manager));
    leaks.finish();
}

#[test]
fn inspect_fails_clearly_for_a_missing_name_or_a_foreign_file() {
    let name = unique_name("cli-insp-missing");
    let out = multiproc(&["inspect", &name, "--json"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("no multiproc segment named '{name}'")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let foreign = unique_name("cli-insp-foreign");
    let leaks = ShmLeakCheck::new(&foreign);
    let path = format!("/dev/shm/{}{foreign}", shm_segment::NAME_PREFIX);
    std::fs::write(&path, vec![0xab_u8; 4096]).unwrap();
    let out = multiproc(&["inspect", &foreign]);
    std::fs::remove_file(&path).unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a multiproc segment"), "{stderr}");
    leaks.finish();
}
