//! A process maps each manager segment once, however many proxies and managers of it it
//! receives or opens: every mapping reserves the manager's whole address space (256 GiB by
//! default), so one mapping per proxy ran a process out of address space after a few
//! hundred. Counted in `/proc/self/maps` (lines naming the segment's inode) and in the
//! process's `VmSize`.

shm_process::init_before_main!();

mod common;

use std::os::unix::fs::MetadataExt as _;

use common::STEP;
use shm_manager::{DEFAULT_MAX_BYTES, Manager, Namespace, SharedDict, SharedList, SharedValue};
use shm_process::Process;
use shm_segment::Segment;
use shm_segment::transfer::SegmentToken;
use test_support::{
    ShmLeakCheck, Watchdog, child_builder, child_role, iterations, signal_parent_with, test_name,
    unique_name,
};

/// Lines of `/proc/self/maps` that map the file with inode `ino` (a manager segment: its
/// memfd or its `/dev/shm` file). One per mapped segment handle, as long as the segment
/// has not grown in this process.
fn mappings(ino: u64) -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() >= 6
                && fields[4].parse::<u64>() == Ok(ino)
                && fields[5..].join(" ").contains("multiproc")
        })
        .count()
}

/// This process's address space (`VmSize`), in KiB.
fn vm_size_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .map(|kib| kib.trim().parse().unwrap())
        .expect("VmSize in /proc/self/status")
}

/// The inode of an anonymous manager, from the JSON of the manager (its segment token) or
/// of one of its proxies (`{"segment": token, "desc": ..}`).
fn anonymous_inode(wire: &str) -> u64 {
    let value: serde_json::Value = serde_json::from_str(wire).unwrap();
    let token = value.get("segment").cloned().unwrap_or(value);
    match serde_json::from_value(token).unwrap() {
        SegmentToken::Anonymous { inode, .. } => inode,
        other => panic!("not an anonymous segment: {other:?}"),
    }
}

/// The JSON a proxy or manager travels as.
fn json<T: serde::Serialize>(x: &T) -> String {
    serde_json::to_string(x).unwrap()
}

/// The inode of the file behind the named manager `name`.
fn named_inode(name: &str) -> u64 {
    std::fs::metadata(format!("/dev/shm/multiproc.{name}"))
        .unwrap()
        .ino()
}

/// In the child: receives `n` proxies (a quarter of each kind) and a few managers of one
/// anonymous manager, all serialised as the parent made them (as a queue would carry
/// them), and writes through every one.
fn receive_many(n: usize) {
    let var = |key: &str| std::env::var(key).unwrap();
    let (manager, dict, list, value, namespace) = (
        var("MANAGER"),
        var("DICT"),
        var("LIST"),
        var("VALUE"),
        var("NAMESPACE"),
    );
    let ino = anonymous_inode(&manager);
    let vm_before = vm_size_kib();
    assert_eq!(mappings(ino), 0, "mapped before anything was received");

    let first: SharedDict<String, u64> = serde_json::from_str(&dict).unwrap();
    let one = mappings(ino);
    assert!(one >= 1, "the first proxy maps the segment");

    let per_kind = n / 4;
    let dicts: Vec<SharedDict<String, u64>> = (0..per_kind)
        .map(|_| serde_json::from_str(&dict).unwrap())
        .collect();
    let lists: Vec<SharedList<u64>> = (0..per_kind)
        .map(|_| serde_json::from_str(&list).unwrap())
        .collect();
    let values: Vec<SharedValue<u64>> = (0..per_kind)
        .map(|_| serde_json::from_str(&value).unwrap())
        .collect();
    let namespaces: Vec<Namespace> = (0..per_kind)
        .map(|_| serde_json::from_str(&namespace).unwrap())
        .collect();
    let managers: Vec<Manager> = (0..16)
        .map(|_| serde_json::from_str(&manager).unwrap())
        .collect();
    let many = mappings(ino);
    let vm_growth = vm_size_kib().saturating_sub(vm_before);
    eprintln!(
        "received {} proxies and 16 managers: {one} mapping(s) after the first, {many} after \
         all; VmSize grew by {vm_growth} KiB",
        4 * per_kind
    );
    signal_parent_with("mappings", format!("{one} {many}"));
    signal_parent_with("vm-growth-kib", vm_growth);
    assert_eq!(
        many,
        one,
        "{} proxies mapped the segment again",
        4 * per_kind
    );
    assert!(
        vm_growth < 2 * DEFAULT_MAX_BYTES as u64 / 1024,
        "{vm_growth} KiB of address space for one manager"
    );

    for (i, d) in dicts.iter().enumerate() {
        d.update_with(&"hits".to_string(), |h| *h.get_or_insert(0) += 1)
            .unwrap();
        lists[i].push(&(i as u64)).unwrap();
        values[i].update_with(|v| *v.get_or_insert(0) += 1).unwrap();
        namespaces[i]
            .update_with::<u64, _>("hits", |h| *h.get_or_insert(0) += 1)
            .unwrap();
    }
    for m in &managers {
        m.list::<u64>("from-managers").unwrap().push(&1).unwrap();
    }
    assert_eq!(
        first.get(&"hits".to_string()).unwrap(),
        Some(per_kind as u64)
    );

    drop((first, dicts, lists, values, namespaces, managers));
    let after_drop = mappings(ino);
    signal_parent_with("after-drop", after_drop);
    assert_eq!(after_drop, 0, "the registry kept the segment mapped");
    assert!(vm_size_kib() < vm_before + DEFAULT_MAX_BYTES as u64 / 1024 / 2);
}

#[test]
fn a_child_receiving_thousands_of_proxies_maps_the_manager_once() {
    let n = iterations(2_000).max(4);
    if child_role().is_some() {
        child_builder(&test_name!(), "receiver").spawn(|| receive_many(n));
        unreachable!("the receiver exits in spawn");
    }
    let _wd = Watchdog::new(STEP * 5);
    // Anonymous: nothing in /dev/shm; the child reopens it through the tokens.
    let manager = Manager::new().unwrap();
    let dict = manager.dict::<String, u64>("d").unwrap();
    let list = manager.list::<u64>("l").unwrap();
    let value = manager.value::<u64>("v").unwrap();
    let namespace = manager.namespace("ns").unwrap();
    let mut child = child_builder(&test_name!(), "receiver")
        .env("MANAGER", json(&manager))
        .env("DICT", json(&dict))
        .env("LIST", json(&list))
        .env("VALUE", json(&value))
        .env("NAMESPACE", json(&namespace))
        .spawn(|| {});
    let counts = child.wait_line("mappings", STEP * 5).unwrap();
    let growth = child.wait_line("vm-growth-kib", STEP).unwrap();
    let after_drop = child.wait_line("after-drop", STEP).unwrap();
    child.wait_success(STEP);
    eprintln!(
        "{n} proxies + 16 managers: mappings (after one proxy, after all) {counts}, \
         VmSize growth {growth} KiB, mappings after dropping all {after_drop}"
    );
    let per_kind = (n / 4) as u64;
    assert_eq!(dict.get(&"hits".to_string()).unwrap(), Some(per_kind));
    assert_eq!(list.len().unwrap() as u64, per_kind);
    assert_eq!(value.get().unwrap(), Some(per_kind));
    assert_eq!(namespace.get::<u64>("hits").unwrap(), Some(per_kind));
    assert_eq!(
        manager.list::<u64>("from-managers").unwrap().len().unwrap(),
        16
    );
    manager.verify().unwrap();
}

#[test]
fn a_named_manager_opened_again_is_mapped_once_and_a_recreated_name_is_a_new_manager() {
    let _wd = Watchdog::new(STEP);
    let name = unique_name("mappings-named");
    let leaks = ShmLeakCheck::new(&name);

    let creator = Manager::builder().create(&name).unwrap();
    let old_ino = named_inode(&name);
    let one = mappings(old_ino);
    assert!(one >= 1);
    let opened = [Manager::open(&name).unwrap(), Manager::open(&name).unwrap()];
    let manager_wire = serde_json::to_string(&creator).unwrap();
    let received: Manager = serde_json::from_str(&manager_wire).unwrap();
    let dict_wire = serde_json::to_string(&creator.dict::<String, u64>("d").unwrap()).unwrap();
    let old_dict: SharedDict<String, u64> = serde_json::from_str(&dict_wire).unwrap();
    eprintln!(
        "named: {one} mapping(s) for the creator, {} after two opens, a received manager and a proxy",
        mappings(old_ino)
    );
    assert_eq!(
        mappings(old_ino),
        one,
        "opening the name again mapped it again"
    );
    opened[0]
        .dict::<String, u64>("d")
        .unwrap()
        .insert(&"k".to_string(), &1)
        .unwrap();
    assert_eq!(old_dict.get(&"k".to_string()).unwrap(), Some(1));
    assert_eq!(received.dict::<String, u64>("d").unwrap().len().unwrap(), 1);

    // Remove the name and create another manager under it: another file, another Store.
    Segment::unlink(&name).unwrap();
    let recreated = Manager::builder().create(&name).unwrap();
    let new_ino = named_inode(&name);
    assert_ne!(new_ino, old_ino);
    let reopened = Manager::open(&name).unwrap();
    let new_dict = reopened.dict::<String, u64>("d").unwrap();
    // The old proxy's wire form names the segment by name, but also the manager's nonce:
    // it does not bind to the new manager's container (a different one, perhaps of
    // another name, may sit at the same offset).
    let by_name = serde_json::from_str::<SharedDict<String, u64>>(&dict_wire);
    let err = by_name.expect_err("a proxy of the old manager must not bind to the new one");
    assert!(err.to_string().contains("manager is gone"), "{err}");
    // Nor does the old manager's own wire form.
    let err = serde_json::from_str::<Manager>(&manager_wire)
        .expect_err("a received manager must not rebind to the new one");
    assert!(err.to_string().contains("manager is gone"), "{err}");
    new_dict.insert(&"k".to_string(), &2).unwrap();
    assert_eq!(
        old_dict.get(&"k".to_string()).unwrap(),
        Some(1),
        "old proxies keep the old data"
    );
    assert_eq!(
        opened[1]
            .dict::<String, u64>("d")
            .unwrap()
            .get(&"k".to_string())
            .unwrap(),
        Some(1)
    );
    assert_eq!(mappings(old_ino), one);
    assert_eq!(mappings(new_ino), one);

    // The registry holds no mapping alive: dropping the handles unmaps each segment.
    drop((creator, opened, received, old_dict));
    assert_eq!(mappings(old_ino), 0, "the old segment is still mapped");
    assert!(
        Manager::open(&name).is_ok(),
        "dropping the old creator removed the new manager's name"
    );
    drop((recreated, reopened, new_dict));
    assert_eq!(mappings(new_ino), 0, "the new segment is still mapped");
    leaks.finish();
}

/// In a child started by spawn (single-threaded, so it may fork): receives a proxy, forks,
/// and the forked grandchild receives more proxies of the same manager. Returns the
/// mapping counts (here, in the grandchild before and after receiving).
fn fork_after_receiving(dict: SharedDict<String, u64>) -> (usize, usize, usize) {
    let wire = serde_json::to_string(&dict).unwrap();
    let ino = anonymous_inode(&wire);
    let here = mappings(ino);
    let mut grandchild = Process::fork(move || {
        let inherited = mappings(ino);
        let received: Vec<SharedDict<String, u64>> = (0..100)
            .map(|_| serde_json::from_str(&wire).unwrap())
            .collect();
        for d in &received {
            d.update_with(&"forked".to_string(), |n| *n.get_or_insert(0) += 1)
                .unwrap();
        }
        (inherited, mappings(ino))
    })
    .unwrap();
    let (inherited, received) = grandchild.join().unwrap();
    dict.update_with(&"forked".to_string(), |n| *n.get_or_insert(0) += 1)
        .unwrap();
    (here, inherited, received)
}

#[test]
fn a_forked_child_reuses_the_inherited_mapping() {
    let _wd = Watchdog::new(STEP);
    let manager = Manager::new().unwrap();
    let dict = manager.dict::<String, u64>("d").unwrap();
    let mut child = Process::spawn(fork_after_receiving, dict.clone()).unwrap();
    let (here, inherited, received) = child.join().unwrap();
    eprintln!(
        "fork: {here} mapping(s) before the fork, {inherited} inherited, {received} after 100 proxies"
    );
    assert!(here >= 1);
    assert_eq!(inherited, here);
    assert_eq!(
        received, inherited,
        "the forked child mapped the segment again"
    );
    assert_eq!(dict.get(&"forked".to_string()).unwrap(), Some(101));
}
