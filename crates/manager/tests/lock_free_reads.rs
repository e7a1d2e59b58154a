//! Reads that do not take the manager's lock (`get`, `len`, `items`, `to_vec`, ...):
//!
//! * they go on while another process holds the lock (readers do not queue behind a
//!   writer, nor behind each other);
//! * they only ever see committed states, never a torn one, while writers in other
//!   processes rewrite, free and reuse the very blocks being read, grow the segment and
//!   rebuild tables;
//! * a writer SIGKILLed while applying a commit (sequence number left odd) stalls them only
//!   until they fall back to the lock, whose recovery completes the commit.

mod common;

use std::time::Duration;

use common::{Rng, STEP, shared_env};
use shm_manager::{Manager, Namespace, SharedDict, SharedList, SharedValue};
use test_support::{
    ShmLeakCheck, Watchdog, child_builder, child_role, iterations, signal_parent,
    signal_parent_with, test_name, unique_name, wait_parent_line,
};

/// The containers, each with an invariant that a torn read would break.
struct Containers {
    /// `{0: x, 1: -x}`.
    pair: SharedDict<u8, i64>,
    /// `k -> vec![k; n]`, `n < 40`.
    d: SharedDict<u32, Vec<u32>>,
    /// `l[i] == i`.
    l: SharedList<u64>,
    /// `(x, 3x)`.
    v: SharedValue<(u64, u64)>,
    /// `stop` tells the readers to finish.
    ctl: Namespace,
}

impl Containers {
    fn open(m: &Manager) -> Self {
        Containers {
            pair: m.dict("pair").unwrap(),
            d: m.dict("d").unwrap(),
            l: m.list("l").unwrap(),
            v: m.value("v").unwrap(),
            ctl: m.namespace("ctl").unwrap(),
        }
    }

    /// One writer operation, chosen by `rng`.
    fn write(&self, rng: &mut Rng) {
        match rng.below(8) {
            0 => {
                let x = rng.below(1000) as i64;
                self.pair.insert_many(&[(0, x), (1, -x)]).unwrap();
            }
            1 | 2 => {
                let k = rng.below(3000) as u32;
                self.d.insert(&k, &vec![k; rng.below(40) as usize]).unwrap();
            }
            3 => {
                let k = rng.below(3000) as u32;
                self.d.remove(&k).unwrap();
            }
            4 => {
                let k = rng.below(3000) as u32;
                self.d
                    .update_with(&k, |v| {
                        let v = v.get_or_insert_with(Vec::new);
                        if v.len() < 39 {
                            v.push(k);
                        }
                    })
                    .unwrap();
            }
            5 => {
                // A burst: table rebuilds and segment growth under the readers.
                let base = rng.below(3000) as u32;
                let items: Vec<_> = (base..base + 200).map(|k| (k, vec![k; 3])).collect();
                self.d.insert_many(&items).unwrap();
            }
            6 => {
                let n = self.l.len().unwrap() as u64;
                if n > 300 && rng.below(2) == 0 {
                    self.l.truncate(rng.below(n) as usize).unwrap();
                } else {
                    self.l.extend(n..n + 1 + rng.below(20)).unwrap();
                }
            }
            _ => {
                let x = rng.below(1 << 20);
                self.v.set(&(x, 3 * x)).unwrap();
            }
        }
    }

    /// Reads everything and checks every invariant; returns the number of reads.
    fn check(&self, rng: &mut Rng) -> u64 {
        let pair = self.pair.get_many(&[0, 1]).unwrap();
        assert_eq!(pair[0].unwrap_or(0), -pair[1].unwrap_or(0), "torn pair");
        for _ in 0..16 {
            let k = rng.below(3000) as u32;
            if let Some(v) = self.d.get(&k).unwrap() {
                assert!(v.len() < 40 && v.iter().all(|&x| x == k), "torn entry {k}");
            }
            assert!(self.d.contains_key(&k).is_ok());
        }
        if let Some((x, y)) = self.v.get().unwrap() {
            assert_eq!(3 * x, y, "torn value");
        }
        let n = self.l.len().unwrap() as u64;
        if n > 0 {
            let i = rng.below(n);
            let got = self.l.get(i as usize).unwrap();
            assert!(got.is_none() || got == Some(i), "torn list element {i}");
        }
        let mut reads = 20;
        if rng.below(8) == 0 {
            let all = self.l.to_vec().unwrap();
            assert!(all.iter().enumerate().all(|(i, &x)| x == i as u64));
            for (k, v) in self.d.items().unwrap() {
                assert!(v.iter().all(|&x| x == k), "torn item {k}");
            }
            reads += 2;
        }
        reads
    }
}

fn manager_from_env() -> Manager {
    serde_json::from_str(&std::env::var("MANAGER").unwrap()).unwrap()
}

#[test]
fn reads_go_on_while_another_process_holds_the_lock() {
    let name = shared_env("MGR_NAME", || unique_name("lockfree-hold"));
    if let Some(role) = child_role() {
        child_builder(&test_name!(), &role).spawn(|| {
            let m = Manager::open(&name).unwrap();
            let d = m.dict::<u8, u64>("d").unwrap();
            d.update_with(&1, |v| {
                signal_parent("holding");
                // Holds the lock until the parent has read.
                let _ = wait_parent_line();
                *v = Some(11);
            })
            .unwrap();
        });
        unreachable!("the child exits in spawn");
    }
    let _wd = Watchdog::new(Duration::from_secs(120));
    let leaks = ShmLeakCheck::new(&name);
    let manager = Manager::builder().create(&name).unwrap();
    let d = manager.dict::<u8, u64>("d").unwrap();
    d.insert_many(&[(1, 10), (2, 20)]).unwrap();
    let l = manager.list::<u8>("l").unwrap();
    l.extend([1, 2, 3]).unwrap();
    let mut child = child_builder(&test_name!(), "holder")
        .env("MGR_NAME", &name)
        .spawn(|| {});
    child.wait_line("holding", STEP).unwrap();
    // The child holds the lock: a read that waited for it would hang here (the watchdog
    // fails the test).
    for _ in 0..1000 {
        assert_eq!(d.get(&1).unwrap(), Some(10), "the update is not committed");
        assert_eq!(d.get(&2).unwrap(), Some(20));
        assert_eq!(d.len().unwrap(), 2);
        assert_eq!(d.items().unwrap().len(), 2);
        assert_eq!(l.to_vec().unwrap(), vec![1, 2, 3]);
    }
    child.send_line("go").unwrap();
    child.wait_success(STEP);
    assert_eq!(d.get(&1).unwrap(), Some(11));
    drop((d, l, manager));
    leaks.finish();
}

#[test]
fn readers_see_only_committed_states_while_writers_commit_and_die() {
    let kills = iterations(12);
    let ops = iterations(3000);
    let name = shared_env("MGR_NAME", || unique_name("lockfree-torn"));
    if let Some(role) = child_role() {
        child_builder(&test_name!(), &role).spawn(|| {
            let m = manager_from_env();
            let c = Containers::open(&m);
            let seed: u64 = std::env::var("SEED").unwrap().parse().unwrap();
            let mut rng = Rng(seed);
            if role.starts_with("reader") {
                let mut reads = 0u64;
                signal_parent("reading");
                while c.ctl.get::<bool>("stop").unwrap() != Some(true) {
                    reads += c.check(&mut rng);
                }
                signal_parent_with("reads", reads);
            } else {
                signal_parent("writing");
                for _ in 0..ops {
                    c.write(&mut rng);
                }
            }
        });
        unreachable!("the child exits in spawn");
    }
    let _wd = Watchdog::new(Duration::from_secs(600));
    let leaks = ShmLeakCheck::new(&name);
    let manager = Manager::builder().create(&name).unwrap();
    let c = Containers::open(&manager);
    c.pair.insert_many(&[(0, 0), (1, 0)]).unwrap();
    let wire = serde_json::to_string(&manager).unwrap();
    let mut readers: Vec<_> = (0..2)
        .map(|r| {
            child_builder(&test_name!(), &format!("reader-{r}"))
                .env("MGR_NAME", &name)
                .env("MANAGER", &wire)
                .env("SEED", (1000 + r).to_string())
                .spawn(|| {})
        })
        .collect();
    for reader in &mut readers {
        reader.wait_line("reading", STEP).unwrap();
    }
    for round in 0..kills {
        // A writer that runs to the end...
        let mut writer = child_builder(&test_name!(), "writer")
            .env("MGR_NAME", &name)
            .env("MANAGER", &wire)
            .env("SEED", (2 * round).to_string())
            .spawn(|| {});
        writer.wait_success(STEP * 5);
        // ...and one killed half-way through applying its first commit, while the readers
        // read (they fall back to the lock and its recovery completes the commit).
        let point = if round % 2 == 0 {
            "manager.commit.half_applied"
        } else {
            "manager.commit.applied"
        };
        let mut doomed = child_builder(&test_name!(), "writer")
            .env("MGR_NAME", &name)
            .env("MANAGER", &wire)
            .env("SEED", (2 * round + 1).to_string())
            .park_at(point)
            .spawn(|| {});
        doomed.wait_parked(point, STEP).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        doomed.kill();
        c.check(&mut Rng(round as u64));
    }
    c.ctl.set("stop", &true).unwrap();
    for reader in &mut readers {
        let reads: u64 = reader.wait_line("reads", STEP).unwrap().parse().unwrap();
        assert!(reads > 0, "the reader read while the writers ran");
        reader.wait_success(STEP);
    }
    manager.verify().unwrap();
    drop((c, manager));
    leaks.finish();
}

/// A list whose array block is freed and reused for an element holding `0xff..` bytes while
/// readers in other threads follow the old array: a torn view reads those bytes as an
/// element offset, which must fail validation (not overflow, not panic).
#[test]
fn torn_views_of_reused_blocks_never_panic() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let m = Manager::new().unwrap();
    let l = m.list::<[u8; 32]>("l").unwrap();
    l.extend([[1u8; 32], [2u8; 32]]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (l, stop) = (l.clone(), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if r == 0 {
                        let all = l.to_vec().unwrap();
                        assert!(all.len() == 2 || all.len() == 3);
                    } else {
                        let second = l.get(1).unwrap().expect("two elements at least");
                        assert!(second == [2u8; 32] || second == [0xff; 32] || second == [1; 32]);
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for _ in 0..iterations(20_000) {
        l.insert(0, &[3u8; 32]).unwrap();
        l.set(1, &[0xffu8; 32]).unwrap();
        l.remove(0).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().expect("a reader panicked") > 0);
    }
    m.verify().unwrap();
}
