//! RELIABILITY.md row 23: a writer SIGKILLed in the middle of a mutation leaves every
//! container and the allocator in the old or the new state, never a torn one.
//!
//! Each round spawns a writer process that runs a deterministic sequence of operations
//! (derived from a seed and the current state, so the parent can replay it on a model):
//!
//! * four rounds in five park the writer at a commit moment of its first operation
//!   (journal written but unpublished; published; half applied; fully applied) and kill it
//!   there: the parent then demands exactly the old state (before publication) or exactly
//!   the new state (after it);
//! * every fifth round kills the writer at a random moment of a 3000-operation run: the
//!   state must equal the model after some prefix of those operations.
//!
//! In half of the rounds killed after publication, a second process that starts
//! recovering is killed half-way through replaying the journal; the next lock holder
//! replays it again.
//!
//! After every kill, `Manager::verify` checks the whole heap (every block live exactly once
//! or free exactly once, counts, findability), and the next round mutates again.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Rng, STEP, shared_env};
use shm_manager::{Manager, SharedDict, SharedList, SharedValue};
use test_support::{
    ShmLeakCheck, Watchdog, child_builder, child_role, iterations, signal_parent, test_name,
    unique_name, wait_parent_line,
};

struct Containers {
    d: SharedDict<u16, Vec<u16>>,
    pair: SharedDict<u8, i64>,
    l: SharedList<u32>,
    v: SharedValue<u64>,
}

impl Containers {
    fn open(m: &Manager) -> Self {
        Containers {
            d: m.dict("d").unwrap(),
            pair: m.dict("pair").unwrap(),
            l: m.list("l").unwrap(),
            v: m.value("v").unwrap(),
        }
    }

    fn state(&self) -> State {
        let pair = self.pair.get_many(&[0, 1]).unwrap();
        State {
            d: self.d.items().unwrap().into_iter().collect(),
            pair: (pair[0].unwrap_or(0), pair[1].unwrap_or(0)),
            l: self.l.to_vec().unwrap(),
            v: self.v.get().unwrap(),
        }
    }

    fn apply(&self, op: &Op) {
        match op {
            Op::Insert(k, n) => drop(self.d.insert(k, &vec![*k; *n]).unwrap()),
            Op::Remove(k) => assert!(self.d.remove(k).unwrap().is_some()),
            Op::Push(k) => self
                .d
                .update_with(k, |v| v.get_or_insert_with(Vec::new).push(*k))
                .unwrap(),
            Op::Many(ks) => {
                let items: Vec<_> = ks.iter().map(|&(k, n)| (k, vec![k; n])).collect();
                self.d.insert_many(&items).unwrap();
            }
            Op::Clear => self.d.clear().unwrap(),
            Op::Pair(x) => self.pair.insert_many(&[(0, *x), (1, -*x)]).unwrap(),
            Op::LPush(x) => self.l.push(x).unwrap(),
            Op::LPop => assert!(self.l.pop().unwrap().is_some()),
            Op::LInsert(i, x) => self.l.insert(*i, x).unwrap(),
            Op::LRemove(i) => drop(self.l.remove(*i).unwrap()),
            Op::LSet(i, x) => drop(self.l.set(*i, x).unwrap()),
            Op::LExtend(xs) => self.l.extend(xs.iter().copied()).unwrap(),
            Op::LTruncate(n) => self.l.truncate(*n).unwrap(),
            Op::VIncr => self.v.update_with(|v| *v.get_or_insert(0) += 1).unwrap(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct State {
    d: BTreeMap<u16, Vec<u16>>,
    pair: (i64, i64),
    l: Vec<u32>,
    v: Option<u64>,
}

impl State {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Insert(k, n) => drop(self.d.insert(*k, vec![*k; *n])),
            Op::Remove(k) => drop(self.d.remove(k)),
            Op::Push(k) => self.d.entry(*k).or_default().push(*k),
            Op::Many(ks) => ks
                .iter()
                .for_each(|&(k, n)| drop(self.d.insert(k, vec![k; n]))),
            Op::Clear => self.d.clear(),
            Op::Pair(x) => self.pair = (*x, -*x),
            Op::LPush(x) => self.l.push(*x),
            Op::LPop => drop(self.l.pop()),
            Op::LInsert(i, x) => self.l.insert(*i, *x),
            Op::LRemove(i) => drop(self.l.remove(*i)),
            Op::LSet(i, x) => self.l[*i] = *x,
            Op::LExtend(xs) => self.l.extend(xs),
            Op::LTruncate(n) => self.l.truncate(*n),
            Op::VIncr => *self.v.get_or_insert(0) += 1,
        }
    }

    /// Invariants that hold in every consistent state, whatever the history.
    fn check_invariants(&self) {
        for (k, v) in &self.d {
            assert!(v.iter().all(|x| x == k), "torn value for key {k}: {v:?}");
        }
        assert_eq!(self.pair.0, -self.pair.1, "the pair is written atomically");
    }
}

/// Operations that always change the state, so each one commits.
#[derive(Debug, Clone)]
enum Op {
    Insert(u16, usize),
    Remove(u16),
    Push(u16),
    Many(Vec<(u16, usize)>),
    Clear,
    Pair(i64),
    LPush(u32),
    LPop,
    LInsert(usize, u32),
    LRemove(usize),
    LSet(usize, u32),
    LExtend(Vec<u32>),
    LTruncate(usize),
    VIncr,
}

fn choose(rng: &mut Rng, s: &State) -> Op {
    let key = |rng: &mut Rng| rng.below(300) as u16;
    let size = |rng: &mut Rng| rng.below(12) as usize;
    loop {
        let op = match rng.below(100) {
            0..25 => Op::Insert(key(rng), size(rng)),
            25..37 if !s.d.is_empty() => {
                let i = rng.below(s.d.len() as u64) as usize;
                Op::Remove(*s.d.keys().nth(i).unwrap())
            }
            37..47 => Op::Push(key(rng)),
            47..55 => Op::Many(
                (0..1 + rng.below(6))
                    .map(|_| (key(rng), size(rng)))
                    .collect(),
            ),
            55 if !s.d.is_empty() && rng.below(4) == 0 => Op::Clear,
            56..62 => Op::Pair(rng.below(1 << 40) as i64 + 1),
            62..72 => Op::LPush(rng.next() as u32),
            72..77 if !s.l.is_empty() => Op::LPop,
            77..81 => Op::LInsert(rng.below(s.l.len() as u64 + 1) as usize, rng.next() as u32),
            81..85 if !s.l.is_empty() => Op::LRemove(rng.below(s.l.len() as u64) as usize),
            85..90 if !s.l.is_empty() => {
                Op::LSet(rng.below(s.l.len() as u64) as usize, rng.next() as u32)
            }
            90..94 => Op::LExtend((0..1 + rng.below(8)).map(|_| rng.next() as u32).collect()),
            94..96 if s.l.len() > 40 => Op::LTruncate(rng.below(s.l.len() as u64) as usize),
            96..100 => Op::VIncr,
            _ => continue,
        };
        if let Op::Pair(x) = op
            && s.pair.0 == x
        {
            continue;
        }
        return op;
    }
}

const POINTS: [&str; 4] = [
    "manager.commit.before_publish",
    "manager.commit.published",
    "manager.commit.half_applied",
    "manager.commit.applied",
];

const RECOVER_POINT: &str = "manager.recover.half_replayed";

/// The writer process: opens the manager, runs `STEPS` operations from `SEED`, and waits
/// to be killed.
fn writer(name: &str) {
    let manager = Manager::open(name).unwrap();
    let c = Containers::open(&manager);
    let seed: u64 = std::env::var("SEED").unwrap().parse().unwrap();
    let steps: usize = std::env::var("STEPS").unwrap().parse().unwrap();
    let mut rng = Rng(seed);
    let mut state = c.state();
    signal_parent("ready");
    for _ in 0..steps {
        let op = choose(&mut rng, &state);
        c.apply(&op);
        state.apply(&op);
    }
    signal_parent("done");
    let _ = wait_parent_line();
}

#[test]
fn sigkill_mid_mutation_leaves_old_or_new_state() {
    let name = shared_env("MGR_NAME", || unique_name("crash"));
    if let Some(role) = child_role() {
        child_builder(&test_name!(), &role).spawn(|| match role.as_str() {
            "writer" => writer(&name),
            // Reads the state, which makes it recover (and park there).
            _ => drop(Containers::open(&Manager::open(&name).unwrap()).state()),
        });
        unreachable!("the child exits in spawn");
    }
    let _wd = Watchdog::new(Duration::from_secs(900));
    let leaks = ShmLeakCheck::new(&name);
    let manager = Manager::builder().create(&name).unwrap();
    let c = Containers::open(&manager);
    c.pair.insert_many(&[(0, 0), (1, 0)]).unwrap();
    let mut rng = Rng(0x006d_616e_6167_6572);
    let rounds = iterations(500);
    let (mut old_seen, mut new_seen) = (0, 0);
    let mut prefixes = Vec::new();
    let mut recoveries_killed = 0;
    for round in 0..rounds {
        let before = c.state();
        let seed = rng.next();
        let builder = child_builder(&test_name!(), "writer")
            .env("MGR_NAME", &name)
            .env("SEED", seed.to_string());
        let point = POINTS.get(round % 5).copied();
        let after = if let Some(point) = point {
            let mut child = builder.env("STEPS", "1").park_at(point).spawn(|| {});
            child.wait_parked(point, STEP).unwrap();
            child.kill();
            child.wait_timeout(STEP).unwrap();
            if point != POINTS[0] && round % 10 < 5 {
                // The process that recovers dies half-way through replaying the journal:
                // the next one replays it again.
                let mut recoverer = child_builder(&test_name!(), "recoverer")
                    .env("MGR_NAME", &name)
                    .park_at(RECOVER_POINT)
                    .spawn(|| {});
                recoverer.wait_parked(RECOVER_POINT, STEP).unwrap();
                recoverer.kill();
                recoverer.wait_timeout(STEP).unwrap();
                recoveries_killed += 1;
            }
            let report = manager
                .verify()
                .unwrap_or_else(|e| panic!("round {round} at {point}: {e}"));
            assert_eq!(report.containers, 4);
            let after = c.state();
            let mut expected = before.clone();
            expected.apply(&choose(&mut Rng(seed), &before));
            if point == POINTS[0] {
                assert_eq!(
                    after, before,
                    "round {round}: killed before publishing, old state"
                );
                old_seen += 1;
            } else {
                assert_eq!(
                    after, expected,
                    "round {round}: killed at {point}, new state"
                );
                new_seen += 1;
            }
            after
        } else {
            let steps = 3000;
            let mut child = builder.env("STEPS", steps.to_string()).spawn(|| {});
            child.wait_line("ready", STEP).unwrap();
            std::thread::sleep(Duration::from_micros(rng.below(4000)));
            child.kill();
            child.wait_timeout(STEP).unwrap();
            manager
                .verify()
                .unwrap_or_else(|e| panic!("round {round} (random kill): {e}"));
            let after = c.state();
            let mut model = before.clone();
            let mut replay = Rng(seed);
            let mut found = model == after;
            for step in 0..steps {
                if found {
                    prefixes.push(step);
                    break;
                }
                let op = choose(&mut replay, &model);
                model.apply(&op);
                found = model == after;
            }
            assert!(
                found,
                "round {round}: the state after a random kill is no prefix state"
            );
            after
        };
        after.check_invariants();
    }
    eprintln!("random kills landed after these many completed operations: {prefixes:?}");
    // The manager keeps working after all those deaths.
    c.d.insert(&7, &vec![7]).unwrap();
    assert_eq!(c.d.get(&7).unwrap(), Some(vec![7]));
    manager.verify().unwrap();
    assert!(old_seen > 0 && new_seen > 0 && recoveries_killed > 0 || rounds < 5);
    drop((c, manager));
    leaks.finish();
}

/// Regression: a batch that replaces one key twice frees a block it allocated itself from
/// a free list; killed before publishing, that free list must be intact (no leaked block).
#[test]
fn batch_replacing_a_key_twice_killed_before_publish_keeps_the_free_lists() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let name = shared_env("MGR_NAME", || unique_name("crash-batch"));
    let point = POINTS[0];
    let mut child = child_builder(&test_name!(), "batch")
        .env("MGR_NAME", &name)
        .park_at(point)
        .spawn(|| {
            assert_eq!(wait_parent_line(), "go");
            let m = Manager::open(&name).unwrap();
            let d = m.dict::<u16, Vec<u16>>("d").unwrap();
            d.insert_many(&[(1, vec![1; 10]), (1, vec![1; 11]), (2, vec![2; 10])])
                .unwrap();
        });
    let leaks = ShmLeakCheck::new(&name);
    let manager = Manager::builder().create(&name).unwrap();
    let d = manager.dict::<u16, Vec<u16>>("d").unwrap();
    d.insert_many(&(10..30).map(|k| (k, vec![k; 10])).collect::<Vec<_>>())
        .unwrap();
    for k in 10..30 {
        d.remove(&k).unwrap();
    }
    let before = manager.verify().unwrap();
    assert!(before.free_blocks >= 20);
    child.send_line("go").unwrap();
    child.wait_parked(point, STEP).unwrap();
    child.kill();
    child.wait_timeout(STEP).unwrap();
    let after = manager.verify().unwrap();
    assert_eq!(
        after, before,
        "killed before publishing: the heap is unchanged"
    );
    assert!(d.is_empty().unwrap());
    d.insert_many(&[(1, vec![1; 10]), (1, vec![1; 11])])
        .unwrap();
    assert_eq!(d.get(&1).unwrap(), Some(vec![1; 11]));
    manager.verify().unwrap();
    drop((d, manager));
    leaks.finish();
}
