//! `Manager::remove`: a removed container's memory is reused, every proxy of it (in any
//! process, however it got there) fails with `Error::Removed` even after its descriptor
//! serves a new container, and a process SIGKILLed at each moment of a removal leaves the
//! container either whole or gone, with a consistent heap.

mod common;

use std::time::Duration;

use common::{STEP, shared_env};
use shm_manager::{Error, Manager, SharedDict, SharedList};
use test_support::{
    ShmLeakCheck, Watchdog, child_builder, child_role, iterations, signal_parent_with, test_name,
    unique_name,
};

#[test]
fn removed_memory_is_reused_by_the_next_container() {
    let m = Manager::new().unwrap();
    let fill = |name: &str| {
        let d = m.dict::<u32, Vec<u8>>(name).unwrap();
        d.extend((0..20_000).map(|k| (k, vec![k as u8; 24])))
            .unwrap();
        let l = m.list::<String>(&format!("{name}-list")).unwrap();
        l.extend((0..5_000).map(|i| i.to_string())).unwrap();
    };
    fill("first");
    let heap = m.verify().unwrap().heap_bytes;
    assert!(m.remove("first").unwrap());
    assert!(m.remove("first-list").unwrap());
    let report = m.verify().unwrap();
    assert_eq!(report.containers, 0);
    assert!(
        report.free_blocks > 25_000,
        "entries went to the free lists"
    );
    fill("second");
    let again = m.verify().unwrap();
    assert_eq!(again.containers, 2);
    assert_eq!(
        again.heap_bytes, heap,
        "the second container fits in the first one's memory"
    );
}

#[test]
fn stale_proxies_fail_with_removed_even_when_the_descriptor_is_reused() {
    let m = Manager::new().unwrap();
    let old = m.dict::<u8, u8>("a").unwrap();
    old.insert(&1, &1).unwrap();
    let wire = serde_json::to_string(&old).unwrap();
    let old_list = m.list::<u8>("l").unwrap();
    assert!(m.remove("a").unwrap());
    assert!(m.remove("l").unwrap());
    // The next containers take the removed descriptors.
    let old_list_desc = format!("{old_list:?}");
    let old_desc = format!("{old:?}");
    let new = m.dict::<u8, u8>("b").unwrap();
    new.insert(&1, &99).unwrap();
    let new_list = m.list::<u8>("l").unwrap();
    new_list.push(&5).unwrap();
    // Debug shows the descriptor offset: the new containers sit in the removed ones' places.
    let desc = |debug: String| -> u64 {
        debug
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    let mut before = [desc(old_desc), desc(old_list_desc)];
    let mut after = [desc(format!("{new:?}")), desc(format!("{new_list:?}"))];
    before.sort_unstable();
    after.sort_unstable();
    assert_eq!(before, after, "the removed descriptors were reused");
    for result in [old.get(&1).map(drop), old.insert(&2, &2).map(drop)] {
        assert!(matches!(result, Err(Error::Removed)), "{result:?}");
    }
    assert!(matches!(old.len(), Err(Error::Removed)));
    assert!(matches!(old.items(), Err(Error::Removed)));
    assert!(matches!(
        old.update_with(&1, |v| *v = Some(3)),
        Err(Error::Removed)
    ));
    assert!(matches!(old_list.to_vec(), Err(Error::Removed)));
    assert!(matches!(old_list.push(&1), Err(Error::Removed)));
    let received = serde_json::from_str::<SharedDict<u8, u8>>(&wire);
    assert!(
        received.is_err(),
        "a removed container's proxy does not deserialise"
    );
    assert_eq!(
        new.get(&1).unwrap(),
        Some(99),
        "untouched by the stale proxy"
    );
    assert_eq!(new_list.to_vec().unwrap(), vec![5]);
    m.verify().unwrap();
}

#[test]
fn a_proxy_in_another_process_sees_its_container_removed() {
    let name = shared_env("MGR_NAME", || unique_name("remove-remote"));
    if let Some(role) = child_role() {
        child_builder(&test_name!(), &role).spawn(|| {
            let d: SharedDict<u8, u8> =
                serde_json::from_str(&std::env::var("DICT").unwrap()).unwrap();
            assert_eq!(d.get(&1).unwrap(), Some(1));
            signal_parent_with("read", 1);
            // The parent removes the container, then says so.
            let _ = test_support::wait_parent_line();
            assert!(matches!(d.get(&1), Err(Error::Removed)));
            assert!(matches!(d.insert(&1, &2), Err(Error::Removed)));
        });
        unreachable!("the child exits in spawn");
    }
    let _wd = Watchdog::new(Duration::from_secs(120));
    let leaks = ShmLeakCheck::new(&name);
    let m = Manager::builder().create(&name).unwrap();
    let d = m.dict::<u8, u8>("d").unwrap();
    d.insert(&1, &1).unwrap();
    let mut child = child_builder(&test_name!(), "holder")
        .env("MGR_NAME", &name)
        .env("DICT", serde_json::to_string(&d).unwrap())
        .spawn(|| {});
    child.wait_line("read", STEP).unwrap();
    assert!(m.remove("d").unwrap());
    child.send_line("removed").unwrap();
    child.wait_success(STEP);
    drop((d, m));
    leaks.finish();
}

const POINTS: [&str; 4] = [
    "manager.commit.before_publish",
    "manager.commit.published",
    "manager.commit.half_applied",
    "manager.commit.applied",
];

#[test]
fn a_remover_killed_at_each_commit_moment_leaves_the_container_whole_or_gone() {
    let rounds = iterations(12);
    let name = shared_env("MGR_NAME", || unique_name("remove-kill"));
    if let Some(role) = child_role() {
        child_builder(&test_name!(), &role).spawn(|| {
            let m = Manager::open(&name).unwrap();
            let victim = std::env::var("VICTIM").unwrap();
            m.remove(&victim).unwrap();
        });
        unreachable!("the child exits in spawn");
    }
    let _wd = Watchdog::new(Duration::from_secs(300));
    let leaks = ShmLeakCheck::new(&name);
    let m = Manager::builder().create(&name).unwrap();
    let keep = m.list::<u32>("keep").unwrap();
    keep.extend(0..100).unwrap();
    for round in 0..rounds {
        let victim = format!("victim-{round}");
        let d: SharedDict<u32, String> = m.dict(&victim).unwrap();
        d.extend((0..300).map(|k| (k, format!("{round}-{k}"))))
            .unwrap();
        let l: SharedList<u32> = m.list(&format!("{victim}-list")).unwrap();
        l.extend(0..50).unwrap();
        let point = POINTS[round % POINTS.len()];
        let mut child = child_builder(&test_name!(), "remover")
            .env("MGR_NAME", &name)
            .env("VICTIM", &victim)
            .park_at(point)
            .spawn(|| {});
        child.wait_parked(point, STEP).unwrap();
        child.kill();
        let report = m.verify().unwrap();
        let names: Vec<String> = m.containers().unwrap().into_iter().map(|c| c.0).collect();
        if point == POINTS[0] {
            // Killed before the commit point: whole.
            assert!(names.contains(&victim));
            assert_eq!(d.len().unwrap(), 300);
            assert_eq!(d.get(&7).unwrap(), Some(format!("{round}-7")));
        } else {
            // Killed after it: gone, and its proxies say so.
            assert!(!names.contains(&victim), "round {round}: {names:?}");
            assert!(matches!(d.len(), Err(Error::Removed)));
        }
        assert_eq!(keep.len().unwrap(), 100, "other containers untouched");
        assert!(report.live_blocks > 0);
        // Clean up whatever is left, so every round starts alike.
        m.remove(&victim).unwrap();
        m.remove(&format!("{victim}-list")).unwrap();
    }
    let report = m.verify().unwrap();
    assert_eq!(report.containers, 1);
    drop((keep, m));
    leaks.finish();
}
