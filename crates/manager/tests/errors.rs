//! Typed errors: containers opened with other types or kinds (in-process, through serde,
//! and from another process), the optional cap (`CapacityExceeded`, leaving everything
//! intact), re-entry from an `update_with` closure, and no `/dev/shm` leftovers.

mod common;

use std::time::Duration;

use common::{STEP, shared_env};
use shm_manager::{ContainerError, Error, Manager, SharedDict, SharedList};
use test_support::{
    ShmLeakCheck, Watchdog, child_builder, signal_parent, test_name, unique_name, wait_parent_line,
};

#[test]
fn opening_with_other_types_or_kind_is_a_typed_error() {
    let manager = Manager::new().unwrap();
    let d = manager.dict::<String, u64>("d").unwrap();
    d.insert(&"k".into(), &1).unwrap();
    assert!(matches!(
        manager.dict::<String, u32>("d"),
        Err(ContainerError::TypeMismatch { .. })
    ));
    assert!(matches!(
        manager.dict::<u64, u64>("d"),
        Err(ContainerError::TypeMismatch { .. })
    ));
    assert!(matches!(
        manager.list::<u64>("d"),
        Err(ContainerError::KindMismatch {
            expected: "list",
            found: "dict",
            ..
        })
    ));
    assert!(manager.namespace("d").is_err());
    assert!(manager.value::<u64>("d").is_err());
    // A proxy received as the wrong type is refused when deserialised.
    let wire = serde_json::to_string(&d).unwrap();
    assert!(serde_json::from_str::<SharedDict<String, i64>>(&wire).is_err());
    assert!(serde_json::from_str::<SharedList<u64>>(&wire).is_err());
    let again: SharedDict<String, u64> = serde_json::from_str(&wire).unwrap();
    assert_eq!(again.get(&"k".into()).unwrap(), Some(1));
    // The failed opens changed nothing.
    assert_eq!(
        manager.containers().unwrap(),
        vec![("d".to_string(), "dict")]
    );
    manager.verify().unwrap();
}

#[test]
fn another_process_opening_with_other_types_gets_a_typed_error() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let name = shared_env("MGR_NAME", || unique_name("types"));
    let mut child = child_builder(&test_name!(), "opener")
        .env("MGR_NAME", &name)
        .spawn(|| {
            assert_eq!(wait_parent_line(), "created");
            let m = Manager::open(&name).unwrap();
            assert!(matches!(
                m.dict::<u32, u32>("d"),
                Err(ContainerError::TypeMismatch { .. })
            ));
            let d = m.dict::<u64, String>("d").unwrap();
            assert_eq!(d.get(&1).unwrap().as_deref(), Some("one"));
            signal_parent("checked");
        });
    let leaks = ShmLeakCheck::new(&name);
    let manager = Manager::builder().create(&name).unwrap();
    manager
        .dict::<u64, String>("d")
        .unwrap()
        .insert(&1, &"one".into())
        .unwrap();
    child.send_line("created").unwrap();
    child.wait_line("checked", STEP).unwrap();
    child.wait_success(STEP);
    drop(manager);
    leaks.finish();
}

#[test]
fn capacity_exceeded_leaves_everything_intact() {
    let manager = Manager::builder()
        .max_bytes(256 * 1024)
        .create_anonymous()
        .unwrap();
    let d = manager.dict::<u32, Vec<u8>>("d").unwrap();
    let mut inserted = 0u32;
    let err = loop {
        match d.insert(&inserted, &vec![inserted as u8; 100]) {
            Ok(_) => inserted += 1,
            Err(e) => break e,
        }
        assert!(inserted < 100_000, "the cap is enforced");
    };
    assert!(matches!(err, Error::CapacityExceeded { .. }), "{err}");
    assert!(inserted > 100);
    assert_eq!(d.len().unwrap(), inserted as usize);
    assert_eq!(
        d.get(&(inserted - 1)).unwrap(),
        Some(vec![(inserted - 1) as u8; 100])
    );
    assert_eq!(d.get(&inserted).unwrap(), None);
    manager.verify().unwrap();
    // A batch that does not fit is refused as a whole.
    let big: Vec<(u32, Vec<u8>)> = (1_000_000..1_000_100).map(|k| (k, vec![0; 100])).collect();
    assert!(d.insert_many(&big).is_err());
    assert_eq!(d.len().unwrap(), inserted as usize);
    // Freed space is reused.
    for k in 0..50 {
        d.remove(&k).unwrap();
    }
    d.insert(&inserted, &vec![1; 100])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(manager.used_bytes() <= manager.max_bytes());
    manager.verify().unwrap();
}

#[test]
fn a_write_inside_update_with_is_would_deadlock_and_a_read_sees_the_state_before() {
    let manager = Manager::new().unwrap();
    let d = manager.dict::<u8, u8>("d").unwrap();
    d.insert(&2, &20).unwrap();
    let inner = d.clone();
    let (read_own, read_other, nested_write) = d
        .update_with(&1, |v| {
            *v = Some(1);
            (inner.get(&1), inner.get(&2), inner.insert(&3, &30))
        })
        .unwrap();
    assert!(matches!(nested_write, Err(Error::WouldDeadlock)));
    assert_eq!(read_own.unwrap(), None, "the update is not committed yet");
    assert_eq!(read_other.unwrap(), Some(20));
    assert_eq!(
        d.get(&1).unwrap(),
        Some(1),
        "the outer update still applied"
    );
    assert_eq!(d.get(&3).unwrap(), None);
}

#[test]
fn named_managers_leave_nothing_in_dev_shm() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let name = shared_env("MGR_NAME", || unique_name("leak"));
    let mut child = child_builder(&test_name!(), "user")
        .env("MGR_NAME", &name)
        .spawn(|| {
            assert_eq!(wait_parent_line(), "created");
            let m = Manager::open(&name).unwrap();
            m.list::<u8>("l").unwrap().extend(0..100).unwrap();
            signal_parent("used");
            assert_eq!(wait_parent_line(), "bye");
        });
    let leaks = ShmLeakCheck::new(&name);
    let manager = Manager::builder().create(&name).unwrap();
    assert_eq!(manager.name(), Some(name.as_str()));
    child.send_line("created").unwrap();
    child.wait_line("used", STEP).unwrap();
    assert_eq!(manager.list::<u8>("l").unwrap().len().unwrap(), 100);
    child.send_line("bye").unwrap();
    child.wait_success(STEP);
    assert_eq!(
        test_support::shm_entries(&name).len(),
        1,
        "present while in use"
    );
    drop(manager);
    leaks.finish();
}

#[test]
fn list_ranges_at_the_ends_of_usize_are_errors_not_overflows() {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    let l = Manager::new().unwrap().list::<u8>("l").unwrap();
    l.extend([1, 2]).unwrap();
    assert!(matches!(
        l.range((Excluded(usize::MAX), Unbounded)),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        l.range((Unbounded, Included(usize::MAX))),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert_eq!(l.range((Excluded(0), Unbounded)).unwrap(), vec![2]);
}
