//! N processes increment disjoint and shared keys with `update_with`: the totals are
//! exact, so no read-modify-write was lost or torn. The proxies reach the children
//! serialised (serde), as they would through a queue.

mod common;

use std::time::Duration;

use common::{STEP, shared_env};
use shm_manager::{Manager, SharedDict, SharedList};
use test_support::{
    ShmLeakCheck, Watchdog, child_builder, child_role, iterations, test_name, unique_name,
};

const PROCESSES: usize = 4;
const SHARED_KEYS: u64 = 3;

fn worker(me: usize, rounds: usize) {
    let dict: SharedDict<String, u64> =
        serde_json::from_str(&std::env::var("DICT").unwrap()).expect("the proxy deserialises");
    let log: SharedList<u64> = serde_json::from_str(&std::env::var("LIST").unwrap()).unwrap();
    let own = format!("own-{me}");
    for i in 0..rounds {
        dict.update_with(&own, |n| *n.get_or_insert(0) += 1)
            .unwrap();
        let shared = format!("shared-{}", i as u64 % SHARED_KEYS);
        dict.update_with(&shared, |n| *n.get_or_insert(0) += 2)
            .unwrap();
        if i % 16 == 0 {
            log.push(&(me as u64)).unwrap();
        }
    }
}

#[test]
fn update_with_counters_are_exact_across_processes() {
    let rounds = iterations(2_000);
    let name = shared_env("MGR_NAME", || unique_name("counters"));
    if let Some(role) = child_role() {
        let me: usize = role.strip_prefix("worker-").unwrap().parse().unwrap();
        child_builder(&test_name!(), &role).spawn(|| worker(me, rounds));
        unreachable!("the worker exits in spawn");
    }
    let _wd = Watchdog::new(Duration::from_secs(300));
    let leaks = ShmLeakCheck::new(&name);
    let manager = Manager::builder().create(&name).unwrap();
    let dict = manager.dict::<String, u64>("counts").unwrap();
    let log = manager.list::<u64>("log").unwrap();
    let dict_wire = serde_json::to_string(&dict).unwrap();
    let list_wire = serde_json::to_string(&log).unwrap();
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|me| {
            child_builder(&test_name!(), &format!("worker-{me}"))
                .env("MGR_NAME", &name)
                .env("DICT", &dict_wire)
                .env("LIST", &list_wire)
                .spawn(|| {})
        })
        .collect();
    for child in &mut children {
        child.wait_success(STEP * 5);
    }
    for me in 0..PROCESSES {
        assert_eq!(dict.get(&format!("own-{me}")).unwrap(), Some(rounds as u64));
    }
    let shared_total: u64 = (0..SHARED_KEYS)
        .map(|k| dict.get(&format!("shared-{k}")).unwrap().unwrap_or(0))
        .sum();
    assert_eq!(shared_total, 2 * (PROCESSES * rounds) as u64);
    assert_eq!(dict.len().unwrap(), PROCESSES + SHARED_KEYS as usize);
    let pushes = log.to_vec().unwrap();
    assert_eq!(pushes.len(), PROCESSES * rounds.div_ceil(16));
    for me in 0..PROCESSES {
        assert_eq!(
            pushes.iter().filter(|&&p| p == me as u64).count(),
            rounds.div_ceil(16)
        );
    }
    manager.verify().unwrap();
    drop((dict, log, manager));
    leaks.finish();
}
