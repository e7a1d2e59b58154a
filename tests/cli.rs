//! The `multiproc` command line: `ls`, `rm` and `gc` against real segments, including one
//! whose creator was SIGKILLed.

use std::process::{Command, Output};
use std::time::Duration;

use shm_segment::{ObjectKind, SegmentOptions};
use test_support::{
    ShmLeakCheck, Watchdog, child_builder, signal_parent, test_name, unique_name, wait_parent_line,
};

fn multiproc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_multiproc"))
        .args(args)
        .output()
        .expect("run multiproc")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ls_shows_a_live_segment_and_rm_removes_it() {
    let name = unique_name("cli-ls");
    let leaks = ShmLeakCheck::new(&name);
    let seg = SegmentOptions::new(ObjectKind::QUEUE)
        .len(10_000)
        .create(&name)
        .unwrap();
    seg.persist();

    let out = multiproc(&["ls"]);
    assert!(out.status.success());
    let line = stdout(&out)
        .lines()
        .find(|l| l.starts_with(&name))
        .map(str::to_owned)
        .expect("listed");
    assert!(line.contains("queue") && line.contains("alive"), "{line}");
    assert!(
        line.contains(&std::process::id().to_string()),
        "creator pid shown: {line}"
    );

    let out = multiproc(&["ls", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = all
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name.as_str())
        .unwrap();
    assert_eq!(entry["kind"], "queue");
    assert_eq!(entry["state"], "ready");
    assert_eq!(entry["stale"], false);
    assert_eq!(entry["creator"]["pid"], std::process::id());
    assert!(entry["size"].as_u64().unwrap() >= 10_000);

    let out = multiproc(&["rm", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout(&multiproc(&["ls"])).contains(&name));

    let out = multiproc(&["rm", &name]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no segment named"));
    let out = multiproc(&["rm", "bad/name"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid segment name"));
    drop(seg);
    leaks.finish();
}

#[test]
fn gc_removes_only_the_segments_of_dead_processes() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let dead = std::env::var("DEAD_NAME").unwrap_or_else(|_| unique_name("cli-gc-dead"));
    let mut child = child_builder(&test_name!(), "victim")
        .env("DEAD_NAME", &dead)
        .spawn(|| {
            let _seg = SegmentOptions::new(ObjectKind::LOCK).create(&dead).unwrap();
            signal_parent("created");
            wait_parent_line();
        });
    let leaks_dead = ShmLeakCheck::new(&dead);
    let live = unique_name("cli-gc-live");
    let leaks_live = ShmLeakCheck::new(&live);
    let seg = SegmentOptions::new(ObjectKind::LOCK).create(&live).unwrap();
    child.wait_line("created", Duration::from_secs(20)).unwrap();
    child.kill();
    child.wait_timeout(Duration::from_secs(20)).unwrap();

    let listing = stdout(&multiproc(&["ls"]));
    let line = listing
        .lines()
        .find(|l| l.starts_with(&dead))
        .expect("dead segment listed");
    assert!(line.contains("stale") && line.contains("(dead)"), "{line}");

    // Limited to this test's names, so tests running beside it keep their segments.
    let prefix = "t-cli-gc-";
    let out = multiproc(&["gc", "--dry-run", "--json", "--prefix", prefix]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["removed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == dead.as_str())
    );
    assert!(
        std::path::Path::new(&format!("/dev/shm/multiproc.{dead}")).exists(),
        "dry run removes nothing"
    );

    let out = multiproc(&["gc", "--prefix", prefix]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains(&format!("removed {dead}")), "{text}");
    assert!(text.contains(&format!("kept {live}")), "{text}");
    assert!(!std::path::Path::new(&format!("/dev/shm/multiproc.{dead}")).exists());
    assert!(std::path::Path::new(&format!("/dev/shm/multiproc.{live}")).exists());
    drop(seg);
    leaks_dead.finish();
    leaks_live.finish();
}

/// The benchmark harness end to end at a tiny scale: every row measured, ratios oriented so
/// that above 1 means multiproc is better, the probe reported before and after.
#[test]
fn bench_json_reports_every_row_with_consistent_ratios() {
    let _wd = Watchdog::new(Duration::from_secs(300));
    let out = multiproc(&["bench", "--quick", "--json", "--scale", "0.002"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert!(report["probe_ns"]["before"].as_f64().unwrap() > 0.0);
    assert!(report["probe_ns"]["after"].as_f64().unwrap() > 0.0);
    let rows = report["results"].as_array().unwrap();
    assert!(rows.len() >= 8, "{rows:?}");
    for row in rows {
        let (ours, reference, ratio) = (
            row["ours"].as_f64().unwrap(),
            row["reference_value"].as_f64().unwrap(),
            row["ratio"].as_f64().unwrap(),
        );
        assert!(ours > 0.0 && reference > 0.0, "{row}");
        let expected = if row["unit"] == "msg/s" {
            ours / reference
        } else {
            reference / ours
        };
        assert!(
            (ratio - expected).abs() <= 1e-9 * expected.abs().max(1.0),
            "{row}"
        );
    }
}
