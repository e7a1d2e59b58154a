//! `Value<T>` and `Array<T>` across processes: lock-free `fetch_add` and locked
//! increments are exact, arrays are shared both ways, a holder killed mid-update is
//! reported with the old value intact, and `Array` behaves like a `Vec` (proptest).

mod common;

use common::{TEST_LIMIT, WAIT, park_forever, recv, send};
use proptest::prelude::*;
use shm_lock::{AcquireError, Array, Value};
use shm_segment::OpenError;
use test_support::{
    ShmLeakCheck, Watchdog, iterations, run_child, signal_parent, test_name, unique_name,
    wait_parent_line,
};

#[test]
fn fetch_add_is_exact_across_processes() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = test_name!();
    let per_process = iterations(50_000);
    let body = move || {
        let value: Value<u64> = recv();
        assert_eq!(wait_parent_line(), "go");
        for _ in 0..per_process {
            value.fetch_add(1);
        }
    };
    let mut children = [
        run_child(&name, "a", body),
        run_child(&name, "b", body),
        run_child(&name, "c", body),
    ];
    let value = Value::new(0u64).unwrap();
    for child in &mut children {
        send(child, &value);
    }
    for child in &mut children {
        child.send_line("go").unwrap();
    }
    for _ in 0..per_process {
        value.fetch_add(1);
    }
    for child in &mut children {
        child.wait_success(WAIT);
    }
    assert_eq!(value.load(), 4 * per_process as u64);
    assert_eq!(value.get().unwrap(), 4 * per_process as u64);
}

#[test]
fn locked_increments_are_exact_across_processes() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = test_name!();
    let per_process = iterations(10_000);
    let body = move || {
        let value: Value<[u32; 3]> = recv();
        assert_eq!(wait_parent_line(), "go");
        for _ in 0..per_process {
            let mut guard = value.lock().unwrap();
            // A multi-word value: all three words move together under the lock.
            guard[0] += 1;
            guard[1] += 2;
            guard[2] = guard[0] + guard[1];
        }
    };
    let mut children = [run_child(&name, "a", body), run_child(&name, "b", body)];
    let value = Value::new([0u32; 3]).unwrap();
    for child in &mut children {
        send(child, &value);
    }
    for child in &mut children {
        child.send_line("go").unwrap();
    }
    for child in &mut children {
        child.wait_success(WAIT);
    }
    let n = 2 * per_process as u32;
    assert_eq!(value.get().unwrap(), [n, 2 * n, 3 * n]);
}

#[test]
fn a_holder_killed_mid_update_leaves_the_old_value_and_is_reported() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let mut child = run_child(&test_name!(), "writer", || {
        let value: Value<u64> = recv();
        let mut guard = value.lock().unwrap();
        *guard = 999; // not stored until the guard drops, which never happens
        signal_parent("writing");
        park_forever();
    });
    let value = Value::new(7u64).unwrap();
    send(&mut child, &value);
    child.wait_line("writing", WAIT).unwrap();
    child.kill();
    child.wait_timeout(WAIT).unwrap();
    match value.lock() {
        Err(AcquireError::OwnerDied(guard)) => {
            assert_eq!(*guard, 7);
            guard.mark_consistent();
        }
        other => panic!("expected OwnerDied, got {:?}", other.map(drop)),
    }
    assert_eq!(value.get().unwrap(), 7);
}

#[test]
fn arrays_are_shared_both_ways() {
    let _watchdog = Watchdog::new(TEST_LIMIT);
    let name = unique_name("array");
    let leaks = ShmLeakCheck::new(&name);
    let mut child = run_child(&test_name!(), "squarer", || {
        let array = Array::<u64>::open(&wait_parent_line()).unwrap();
        let mut guard = array.lock().unwrap();
        for x in guard.iter_mut() {
            *x *= *x;
        }
    });
    let array = Array::<u64>::create(&name, 5).unwrap();
    array.lock().unwrap().copy_from_slice(&[1, 2, 3, 4, 5]);
    child.send_line(&name).unwrap();
    child.wait_success(WAIT);
    assert_eq!(array.to_vec().unwrap(), [1, 4, 9, 16, 25]);
    assert!(matches!(
        Array::<u32>::open(&name),
        Err(OpenError::TypeMismatch { .. })
    ));
    assert!(matches!(
        Value::<u64>::open(&name),
        Err(OpenError::KindMismatch { .. })
    ));
    drop(array);
    leaks.finish();
}

#[test]
fn value_kinds_and_types_are_checked_on_open() {
    let name = unique_name("value");
    let leaks = ShmLeakCheck::new(&name);
    let value = Value::create(&name, 1.5f64).unwrap();
    assert!(matches!(
        Value::<u64>::open(&name),
        Err(OpenError::TypeMismatch { .. })
    ));
    assert_eq!(Value::<f64>::open(&name).unwrap().get().unwrap(), 1.5);
    drop(value);
    leaks.finish();
}

#[derive(Debug, Clone)]
enum Op {
    Set(usize, u16),
    Get(usize),
    Fill(u16),
    Reverse,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<usize>(), any::<u16>()).prop_map(|(i, v)| Op::Set(i, v)),
        any::<usize>().prop_map(Op::Get),
        any::<u16>().prop_map(Op::Fill),
        Just(Op::Reverse),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn array_behaves_like_a_vec(initial in proptest::collection::vec(any::<u16>(), 1..40), ops in proptest::collection::vec(op(), 0..40)) {
        let array = Array::from_slice(&initial).unwrap();
        let mut model = initial.clone();
        for op in ops {
            match op {
                Op::Set(i, v) => {
                    let i = i % model.len();
                    array.set(i, v).unwrap();
                    model[i] = v;
                }
                Op::Get(i) => {
                    let i = i % model.len();
                    prop_assert_eq!(array.get(i).unwrap(), model[i]);
                }
                Op::Fill(v) => {
                    array.lock().unwrap().fill(v);
                    model.fill(v);
                }
                Op::Reverse => {
                    array.lock().unwrap().reverse();
                    model.reverse();
                }
            }
        }
        prop_assert_eq!(array.to_vec().unwrap(), model);
        prop_assert_eq!(array.len(), initial.len());
    }

    #[test]
    fn value_round_trips_any_bits(v in any::<[u8; 7]>(), w in any::<(u32, u64)>().prop_map(|(a, b)| [u64::from(a), b])) {
        let a = Value::new(v).unwrap();
        prop_assert_eq!(a.get().unwrap(), v);
        let b = Value::new([0u64; 2]).unwrap();
        b.set(w).unwrap();
        prop_assert_eq!(b.get().unwrap(), w);
    }
}

/// Clones of a handle share one mapping: a write through one is seen through the other,
/// and a clone keeps the object alive after the original is dropped.
#[test]
fn clones_share_the_object() {
    let value = shm_lock::Value::new(1u64).unwrap();
    let other = value.clone();
    value.fetch_add(41);
    assert_eq!(other.load(), 42);
    drop(value);
    assert_eq!(other.fetch_add(1), 42);
    let lock = shm_lock::Lock::new().unwrap();
    let twin = lock.clone();
    let guard = lock.acquire().unwrap();
    let from_thread = std::thread::spawn(move || twin.try_acquire().is_err())
        .join()
        .unwrap();
    assert!(from_thread, "the clone is the same lock");
    drop(guard);
}
