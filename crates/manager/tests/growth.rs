//! A dict grows from empty to 10^6 entries (the segment grows many times, the table is
//! rebuilt many times) while another process reads it: every read sees a consistent
//! prefix, and the reader's mapping follows the growth.

mod common;

use std::time::Duration;

use common::{Rng, STEP, shared_env};
use shm_manager::Manager;
use test_support::{
    Watchdog, child_builder, child_role, iterations, signal_parent, signal_parent_with, test_name,
};

const BATCH: u64 = 1000;

fn reader(total: u64) {
    let manager: Manager = serde_json::from_str(&std::env::var("MANAGER").unwrap()).unwrap();
    let dict = manager.dict::<u64, u64>("big").unwrap();
    let mut rng = Rng(7);
    let mut reads = 0u64;
    signal_parent("ready");
    loop {
        let len = dict.len().unwrap() as u64;
        assert!(
            len.is_multiple_of(BATCH) || len == total,
            "batches are atomic: {len}"
        );
        // Keys below a length seen earlier must be there; keys far beyond the total never.
        let mut keys: Vec<u64> = (0..8).map(|_| rng.below(len.max(1))).collect();
        keys.push(total + 1 + rng.below(1000));
        let got = dict.get_many(&keys).unwrap();
        for (k, v) in keys.iter().zip(&got) {
            if *k < len {
                assert_eq!(*v, Some(k * 3), "key {k} below length {len}");
            } else if *k > total {
                assert_eq!(*v, None);
            }
        }
        reads += 1;
        if len == total {
            break;
        }
    }
    signal_parent_with("reads", reads);
}

#[test]
fn grows_to_a_million_entries_while_another_process_reads() {
    let total = iterations(1_000_000) as u64;
    if child_role().is_some() {
        child_builder(&test_name!(), "reader").spawn(|| reader(total));
        unreachable!("the reader exits in spawn");
    }
    let _wd = Watchdog::new(Duration::from_secs(600));
    // Anonymous: nothing in /dev/shm; the child reopens it through the token.
    let manager = Manager::new().unwrap();
    let wire = shared_env("MANAGER", || serde_json::to_string(&manager).unwrap());
    let dict = manager.dict::<u64, u64>("big").unwrap();
    let start_bytes = manager.used_bytes();
    let mut child = child_builder(&test_name!(), "reader")
        .env("MANAGER", &wire)
        .spawn(|| {});
    child.wait_line("ready", STEP).unwrap();
    let mut next = 0;
    while next < total {
        let end = (next + BATCH).min(total);
        let batch: Vec<(u64, u64)> = (next..end).map(|k| (k, k * 3)).collect();
        dict.insert_many(&batch).unwrap();
        next = end;
    }
    let reads: u64 = child.wait_line("reads", STEP * 5).unwrap().parse().unwrap();
    assert!(reads >= 1);
    child.wait_success(STEP);
    assert_eq!(dict.len().unwrap() as u64, total);
    assert!(manager.used_bytes() > start_bytes, "the segment grew");
    let probe: Vec<u64> = (0..total).step_by(997).collect();
    let got = dict.get_many(&probe).unwrap();
    assert!(probe.iter().zip(got).all(|(k, v)| v == Some(k * 3)));
    let report = manager.verify().unwrap();
    assert_eq!(report.containers, 1);
    eprintln!(
        "grew to {total} entries: {report:?}, {} bytes mapped, {reads} reads",
        manager.used_bytes()
    );
}
