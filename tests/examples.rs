//! Runs every example and checks its output: the tutorial programs must print exactly what
//! they promise (lines from concurrent processes are compared as sets where their order is
//! up to the scheduler).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use test_support::Watchdog;

/// `cargo test` builds the examples next to the test binaries' directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target profile dir");
    dir.join("examples").join(name)
}

fn run(name: &str, args: &[&str]) -> Vec<String> {
    let path = example(name);
    assert!(
        path.exists(),
        "{} was not built (cargo test builds examples)",
        path.display()
    );
    let out = Command::new(&path)
        .args(args)
        .output()
        .expect("run example");
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

#[test]
fn hello() {
    assert_eq!(run("hello", &[]), ["hello bob"]);
}

#[test]
fn square_cube() {
    let lines = run("square_cube", &[]);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("Done!"),
        "Done! comes after both joins"
    );
    assert_eq!(sorted(lines), ["Cube: 125", "Done!", "Square: 25"]);
}

#[test]
fn cpu_count() {
    assert_eq!(
        run("cpu_count", &[]),
        [format!("Number of cpu : {}", multiproc::cpu_count())]
    );
}

#[test]
fn fruits() {
    assert_eq!(run("fruits", &[]), ["apple", "banana", "cherry", "durian"]);
}

#[test]
fn tasks_and_results() {
    let lines = run("tasks_and_results", &[]);
    assert_eq!(lines.len(), 8);
    let mut tasks: Vec<u32> = lines
        .iter()
        .map(|line| {
            let (task, worker) = line
                .strip_prefix("Task no ")
                .and_then(|rest| rest.split_once(" is done by "))
                .unwrap_or_else(|| panic!("unexpected line {line:?}"));
            assert!(
                ["Process-1", "Process-2", "Process-3"].contains(&worker),
                "{line}"
            );
            task.parse().unwrap()
        })
        .collect();
    tasks.sort_unstable();
    assert_eq!(tasks, (0..8).collect::<Vec<_>>());
}

#[test]
fn pool_work_log() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let lines = run("pool_work_log", &[]);
    let mut expected: Vec<String> = [("A", 5), ("B", 2), ("C", 1), ("D", 3)]
        .iter()
        .flat_map(|(n, t)| {
            [
                format!(" Process {n} waiting {t} tenths of a second"),
                format!(" Process {n} Finished."),
            ]
        })
        .collect();
    expected.sort();
    assert_eq!(sorted(lines), expected);
}

#[test]
fn pool_map() {
    assert_eq!(run("pool_map", &[]), ["[1, 4, 9]"]);
}

#[test]
fn pipeline() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let lines = run("pipeline", &["20000", "3"]);
    assert_eq!(lines[0], "pipeline: 20000 items, 3 workers");
    assert_eq!(
        lines[1],
        "stats: produced 20000 processed 20000 collected 20000"
    );
    assert_eq!(lines[2], "checksum: ok");
    assert!(
        lines[3].starts_with("throughput: ") && lines[3].ends_with(" ms)"),
        "{}",
        lines[3]
    );
}

#[test]
fn manager_list() {
    assert_eq!(
        run("manager_list", &[]),
        ["[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]", "[4, 9, 16]"]
    );
}
