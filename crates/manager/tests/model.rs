//! `SharedDict` against `HashMap` and `SharedList` against `Vec`, and a manager's set of
//! containers (opened, written, removed, re-created) against a map of models, on random
//! operation sequences (proptest), each followed by a full heap check. The second handle is
//! a second `Manager` of the same named segment (in one process both share one mapping;
//! other processes' views are exercised by `counters.rs`, `growth.rs` and
//! `lock_free_reads.rs`).

use std::collections::HashMap;

use proptest::prelude::*;
use shm_manager::{ContainerError, Error, Manager};
use test_support::{ShmLeakCheck, unique_name};

#[derive(Debug, Clone)]
enum DictOp {
    Insert(u16, Vec<u8>),
    Remove(u16),
    UpdatePush(u16, u8),
    UpdateDelete(u16),
    Setdefault(u16, Vec<u8>),
    InsertMany(Vec<(u16, Vec<u8>)>),
    Pop(u16),
    Clear,
}

fn key() -> impl Strategy<Value = u16> {
    0u16..64
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..40)
}

fn dict_op() -> impl Strategy<Value = DictOp> {
    prop_oneof![
        8 => (key(), value()).prop_map(|(k, v)| DictOp::Insert(k, v)),
        4 => key().prop_map(DictOp::Remove),
        4 => (key(), any::<u8>()).prop_map(|(k, b)| DictOp::UpdatePush(k, b)),
        1 => key().prop_map(DictOp::UpdateDelete),
        2 => (key(), value()).prop_map(|(k, v)| DictOp::Setdefault(k, v)),
        2 => prop::collection::vec((key(), value()), 0..20).prop_map(DictOp::InsertMany),
        2 => key().prop_map(DictOp::Pop),
        1 => Just(DictOp::Clear),
    ]
}

#[derive(Debug, Clone)]
enum ListOp {
    Push(String),
    Pop,
    Set(usize, String),
    Insert(usize, String),
    Remove(usize),
    Extend(Vec<String>),
    Truncate(usize),
    UpdateAppend(usize, char),
    Clear,
}

fn list_op() -> impl Strategy<Value = ListOp> {
    let s = || "[a-z]{0,12}";
    prop_oneof![
        6 => s().prop_map(ListOp::Push),
        3 => Just(ListOp::Pop),
        3 => (0usize..40, s()).prop_map(|(i, v)| ListOp::Set(i, v)),
        3 => (0usize..40, s()).prop_map(|(i, v)| ListOp::Insert(i, v)),
        3 => (0usize..40).prop_map(ListOp::Remove),
        2 => prop::collection::vec(s(), 0..10).prop_map(ListOp::Extend),
        1 => (0usize..40).prop_map(ListOp::Truncate),
        2 => (0usize..40, proptest::char::range('a', 'z')).prop_map(|(i, c)| ListOp::UpdateAppend(i, c)),
        1 => Just(ListOp::Clear),
    ]
}

#[derive(Debug, Clone)]
enum ContainerOp {
    /// Opens (or creates) dict `name` and inserts `k -> v`.
    DictInsert(u8, u8, u32),
    /// Opens (or creates) list `name` and pushes `v`.
    ListPush(u8, u32),
    /// Removes container `name`.
    Remove(u8),
    /// Writes through the proxy kept from the last open of `name`, if any.
    StaleWrite(u8),
}

fn container_op() -> impl Strategy<Value = ContainerOp> {
    let name = || 0u8..5;
    prop_oneof![
        4 => (name(), any::<u8>(), any::<u32>()).prop_map(|(n, k, v)| ContainerOp::DictInsert(n, k, v)),
        3 => (name(), any::<u32>()).prop_map(|(n, v)| ContainerOp::ListPush(n, v)),
        2 => name().prop_map(ContainerOp::Remove),
        2 => name().prop_map(ContainerOp::StaleWrite),
    ]
}

/// A container of the model.
#[derive(Debug, Clone, PartialEq)]
enum Model {
    Dict(HashMap<u8, u32>),
    List(Vec<u32>),
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn containers_match_a_model_across_removal_and_recreation(
        ops in prop::collection::vec(container_op(), 1..80)
    ) {
        let manager = Manager::new().unwrap();
        let mut model: HashMap<String, Model> = HashMap::new();
        // The last proxy opened under each name, and whether it is still live.
        let mut dicts = HashMap::new();
        let mut lists = HashMap::new();
        for op in ops {
            match op {
                ContainerOp::DictInsert(n, k, v) => {
                    let name = format!("c{n}");
                    match model.get_mut(&name) {
                        Some(Model::List(_)) => {
                            let err = manager.dict::<u8, u32>(&name).unwrap_err();
                            prop_assert!(matches!(err, ContainerError::KindMismatch { .. }), "{}", err);
                        }
                        found => {
                            let d = manager.dict::<u8, u32>(&name).unwrap();
                            d.insert(&k, &v).unwrap();
                            match found {
                                Some(Model::Dict(m)) => { m.insert(k, v); }
                                _ => { model.insert(name.clone(), Model::Dict(HashMap::from([(k, v)]))); }
                            }
                            dicts.insert(name, (d, true));
                        }
                    }
                }
                ContainerOp::ListPush(n, v) => {
                    let name = format!("c{n}");
                    match model.get_mut(&name) {
                        Some(Model::Dict(_)) => {
                            let err = manager.list::<u32>(&name).unwrap_err();
                            prop_assert!(matches!(err, ContainerError::KindMismatch { .. }), "{}", err);
                        }
                        found => {
                            let l = manager.list::<u32>(&name).unwrap();
                            l.push(&v).unwrap();
                            match found {
                                Some(Model::List(m)) => m.push(v),
                                _ => { model.insert(name.clone(), Model::List(vec![v])); }
                            }
                            lists.insert(name, (l, true));
                        }
                    }
                }
                ContainerOp::Remove(n) => {
                    let name = format!("c{n}");
                    prop_assert_eq!(manager.remove(&name).unwrap(), model.remove(&name).is_some());
                    if let Some((_, live)) = dicts.get_mut(&name) {
                        *live = false;
                    }
                    if let Some((_, live)) = lists.get_mut(&name) {
                        *live = false;
                    }
                }
                ContainerOp::StaleWrite(n) => {
                    let name = format!("c{n}");
                    if let Some((d, live)) = dicts.get(&name) {
                        let result = d.insert(&0, &7);
                        if *live {
                            result.unwrap();
                            if let Some(Model::Dict(m)) = model.get_mut(&name) { m.insert(0, 7); }
                        } else {
                            prop_assert!(matches!(result, Err(Error::Removed)), "{:?}", result);
                        }
                    }
                    if let Some((l, live)) = lists.get(&name) {
                        let result = l.len();
                        if *live {
                            let Some(Model::List(m)) = model.get(&name) else { panic!("live list not in the model") };
                            prop_assert_eq!(result.unwrap(), m.len());
                        } else {
                            prop_assert!(matches!(result, Err(Error::Removed)), "{:?}", result);
                        }
                    }
                }
            }
            let report = manager.verify().unwrap();
            prop_assert_eq!(report.containers, model.len());
        }
        let mut names: Vec<(String, &str)> = model
            .iter()
            .map(|(n, m)| (n.clone(), if matches!(m, Model::Dict(_)) { "dict" } else { "list" }))
            .collect();
        names.sort();
        prop_assert_eq!(manager.containers().unwrap(), names);
        for (name, m) in &model {
            match m {
                Model::Dict(m) => {
                    let got: HashMap<u8, u32> = manager.dict(name).unwrap().items().unwrap().into_iter().collect();
                    prop_assert_eq!(&got, m);
                }
                Model::List(m) => prop_assert_eq!(&manager.list::<u32>(name).unwrap().to_vec().unwrap(), m),
            }
        }
    }

    #[test]
    fn dict_matches_hashmap(ops in prop::collection::vec(dict_op(), 1..120)) {
        let name = unique_name("model-dict");
        let leaks = ShmLeakCheck::new(&name);
        let manager = Manager::builder().create(&name).unwrap();
        let other = Manager::open(&name).unwrap();
        let d = manager.dict::<u16, Vec<u8>>("d").unwrap();
        let seen = other.dict::<u16, Vec<u8>>("d").unwrap();
        let mut model: HashMap<u16, Vec<u8>> = HashMap::new();
        for op in ops {
            match op {
                DictOp::Insert(k, v) => prop_assert_eq!(d.insert(&k, &v).unwrap(), model.insert(k, v)),
                DictOp::Remove(k) => prop_assert_eq!(d.remove(&k).unwrap(), model.remove(&k)),
                DictOp::UpdatePush(k, b) => {
                    let n = d.update_with(&k, |v| { let v = v.get_or_insert_with(Vec::new); v.push(b); v.len() }).unwrap();
                    let m = model.entry(k).or_default();
                    m.push(b);
                    prop_assert_eq!(n, m.len());
                }
                DictOp::UpdateDelete(k) => {
                    let had = d.update_with(&k, |v| v.take().is_some()).unwrap();
                    prop_assert_eq!(had, model.remove(&k).is_some());
                }
                DictOp::Setdefault(k, v) => {
                    let got = d.setdefault(&k, v.clone()).unwrap();
                    prop_assert_eq!(&got, model.entry(k).or_insert(v));
                }
                DictOp::InsertMany(items) => {
                    d.insert_many(&items).unwrap();
                    model.extend(items);
                }
                DictOp::Pop(k) => prop_assert_eq!(d.pop(&k, vec![9]).unwrap(), model.remove(&k).unwrap_or(vec![9])),
                DictOp::Clear => { d.clear().unwrap(); model.clear(); }
            }
            prop_assert_eq!(seen.len().unwrap(), model.len());
        }
        let mut items = seen.items().unwrap();
        items.sort();
        let mut expected: Vec<_> = model.clone().into_iter().collect();
        expected.sort();
        prop_assert_eq!(items, expected);
        let keys: Vec<u16> = (0..64).collect();
        let got = seen.get_many(&keys).unwrap();
        for (k, v) in keys.iter().zip(got) {
            prop_assert_eq!(v.as_ref(), model.get(k));
            prop_assert_eq!(seen.contains_key(k).unwrap(), model.contains_key(k));
        }
        let mut ks = d.keys().unwrap();
        ks.sort_unstable();
        let mut mk: Vec<u16> = model.keys().copied().collect();
        mk.sort_unstable();
        prop_assert_eq!(ks, mk);
        prop_assert_eq!(d.values().unwrap().len(), model.len());
        let report = other.verify().unwrap();
        prop_assert_eq!(report.containers, 1);
        drop((d, seen, other, manager));
        leaks.finish();
    }

    #[test]
    fn list_matches_vec(ops in prop::collection::vec(list_op(), 1..120)) {
        let manager = Manager::new().unwrap();
        let l = manager.list::<String>("l").unwrap();
        let mut model: Vec<String> = Vec::new();
        for op in ops {
            match op {
                ListOp::Push(s) => { l.push(&s).unwrap(); model.push(s); }
                ListOp::Pop => prop_assert_eq!(l.pop().unwrap(), model.pop()),
                ListOp::Set(i, s) => {
                    let r = l.set(i, &s);
                    if i < model.len() {
                        prop_assert_eq!(r.unwrap(), std::mem::replace(&mut model[i], s));
                    } else {
                        prop_assert!(r.is_err());
                    }
                }
                ListOp::Insert(i, s) => {
                    let r = l.insert(i, &s);
                    if i <= model.len() { r.unwrap(); model.insert(i, s); } else { prop_assert!(r.is_err()); }
                }
                ListOp::Remove(i) => {
                    let r = l.remove(i);
                    if i < model.len() { prop_assert_eq!(r.unwrap(), model.remove(i)); } else { prop_assert!(r.is_err()); }
                }
                ListOp::Extend(v) => { l.extend(v.clone()).unwrap(); model.extend(v); }
                ListOp::Truncate(n) => { l.truncate(n).unwrap(); model.truncate(n); }
                ListOp::UpdateAppend(i, c) => {
                    let r = l.update_with(i, |s| s.push(c));
                    if i < model.len() { r.unwrap(); model[i].push(c); } else { prop_assert!(r.is_err()); }
                }
                ListOp::Clear => { l.clear().unwrap(); model.clear(); }
            }
            prop_assert_eq!(l.len().unwrap(), model.len());
        }
        prop_assert_eq!(l.to_vec().unwrap(), model.clone());
        prop_assert_eq!(l.iter().unwrap().collect::<Vec<_>>(), model.clone());
        let n = model.len();
        prop_assert_eq!(l.range(n / 3..n / 2).unwrap(), model[n / 3..n / 2].to_vec());
        prop_assert_eq!(l.range(n / 2..=n.saturating_sub(1).max(n / 2)).is_ok(), n > 0);
        for i in 0..n + 2 {
            prop_assert_eq!(l.get(i).unwrap(), model.get(i).cloned());
        }
        manager.verify().unwrap();
    }
}

#[test]
fn value_and_namespace_round_trip() {
    let manager = Manager::new().unwrap();
    let v = manager.value::<(u8, String)>("v").unwrap();
    assert_eq!(v.get().unwrap(), None);
    assert_eq!(v.set(&(1, "a".into())).unwrap(), None);
    assert_eq!(
        v.update_with(|x| x.as_mut().map(|x| x.0 += 1)).unwrap(),
        Some(())
    );
    assert_eq!(v.get().unwrap(), Some((2, "a".into())));
    assert_eq!(v.take().unwrap(), Some((2, "a".into())));
    assert_eq!(v.get().unwrap(), None);
    let ns = manager.namespace("ns").unwrap();
    ns.set("n", &1u64).unwrap();
    ns.set("s", &"x".to_string()).unwrap();
    assert!(matches!(
        ns.get::<String>("n"),
        Err(shm_manager::Error::TypeMismatch { .. })
    ));
    ns.update_with::<u64, _>("n", |n| *n.as_mut().unwrap() += 41)
        .unwrap();
    assert_eq!(ns.get::<u64>("n").unwrap(), Some(42));
    assert_eq!(
        ns.attributes().unwrap(),
        vec!["n".to_string(), "s".to_string()]
    );
    assert!(ns.remove("s").unwrap() && !ns.contains("s").unwrap());
    assert_eq!(manager.verify().unwrap().containers, 2);
}

#[test]
fn proxies_are_send_sync_and_threads_share_them() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Manager>();
    assert_send_sync::<shm_manager::SharedDict<String, Vec<u8>>>();
    assert_send_sync::<shm_manager::SharedList<String>>();
    assert_send_sync::<shm_manager::SharedValue<String>>();
    assert_send_sync::<shm_manager::Namespace>();
    let manager = Manager::new().unwrap();
    let d = manager.dict::<u32, u64>("d").unwrap();
    let big = manager.list::<u64>("big").unwrap();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let (d, big) = (d.clone(), big.clone());
            s.spawn(move || {
                for i in 0..500u32 {
                    d.update_with(&(i % 7), |v| *v.get_or_insert(0) += 1)
                        .unwrap();
                    // Growth by one thread while others work through the same mapping.
                    if t == 0 {
                        big.extend(0..100u64).unwrap();
                    }
                }
            });
        }
    });
    let total: u64 = d.values().unwrap().into_iter().sum();
    assert_eq!(total, 4 * 500);
    assert_eq!(big.len().unwrap(), 500 * 100);
    manager.verify().unwrap();
}
