//! `Queue` across processes: P producers and C consumers move sequenced messages; every
//! message arrives exactly once and each producer's order is kept.

mod common;

use std::collections::BTreeMap;

use common::{QUEUE_ENV, WAIT, WATCHDOG, from_env, share};
use shm_queue::{GetError, Queue};
use test_support::{Watchdog, child_builder, iterations, signal_parent_with, test_name};

/// A message: producer id, its sequence number, and padding so sizes vary.
type Message = (u32, u64, Vec<u8>);

/// Per producer: how many messages a consumer got, their sum and sum of squares.
type Tally = BTreeMap<u32, (u64, u128, u128)>;

fn consume(q: &Queue<Message>) -> Tally {
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    let mut tally = Tally::new();
    loop {
        match q.get() {
            Ok((producer, seq, pad)) => {
                assert_eq!(pad.len() as u64, seq % 7, "payload damaged");
                if let Some(&previous) = last.get(&producer) {
                    assert!(
                        seq > previous,
                        "producer {producer}: {seq} after {previous}"
                    );
                }
                last.insert(producer, seq);
                let entry = tally.entry(producer).or_default();
                entry.0 += 1;
                entry.1 += u128::from(seq);
                entry.2 += u128::from(seq) * u128::from(seq);
            }
            Err(GetError::Closed) => return tally,
            Err(e) => panic!("get failed: {e}"),
        }
    }
}

fn run(name: &str, producers: u32, consumers: u32) {
    let _watchdog = Watchdog::new(WATCHDOG);
    let per_producer = (iterations(1_000_000) / producers as usize) as u64;
    let q = Queue::<Message>::builder()
        .capacity(64)
        .max_message_size(32)
        .create_anonymous()
        .unwrap();
    let token = share(&q);
    let mut children = Vec::new();
    for p in 0..producers {
        children.push(
            child_builder(name, &format!("producer-{p}"))
                .env(QUEUE_ENV, &token)
                .spawn(move || {
                    let q: Queue<Message> = from_env(QUEUE_ENV);
                    for seq in 0..per_producer {
                        q.put((p, seq, vec![0xAB; (seq % 7) as usize])).unwrap();
                    }
                }),
        );
    }
    let mut readers = Vec::new();
    for c in 0..consumers {
        readers.push(
            child_builder(name, &format!("consumer-{c}"))
                .env(QUEUE_ENV, &token)
                .spawn(|| {
                    let q: Queue<Message> = from_env(QUEUE_ENV);
                    let tally = consume(&q);
                    signal_parent_with("tally", serde_json::to_string(&tally).unwrap());
                }),
        );
    }
    for child in &mut children {
        child.wait_success(WAIT);
    }
    // Every producer is done: closing lets the consumers drain and stop.
    q.close();
    let mut total = Tally::new();
    for reader in &mut readers {
        let tally: Tally = serde_json::from_str(&reader.wait_line("tally", WAIT).unwrap()).unwrap();
        for (producer, (n, sum, squares)) in tally {
            let entry = total.entry(producer).or_default();
            entry.0 += n;
            entry.1 += sum;
            entry.2 += squares;
        }
        reader.wait_success(WAIT);
    }
    let n = u128::from(per_producer);
    let expected = (per_producer, n * (n - 1) / 2, (n - 1) * n * (2 * n - 1) / 6);
    for p in 0..producers {
        assert_eq!(
            total.get(&p),
            Some(&expected),
            "producer {p}: (count, sum, sum of squares)"
        );
    }
    assert!(q.is_empty());
}

#[test]
fn one_producer_one_consumer() {
    run(&test_name!(), 1, 1);
}

#[test]
fn one_producer_two_consumers() {
    run(&test_name!(), 1, 2);
}

#[test]
fn two_producers_one_consumer() {
    run(&test_name!(), 2, 1);
}

#[test]
fn two_producers_two_consumers() {
    run(&test_name!(), 2, 2);
}

#[test]
fn one_producer_four_consumers() {
    run(&test_name!(), 1, 4);
}

#[test]
fn four_producers_one_consumer() {
    run(&test_name!(), 4, 1);
}

#[test]
fn two_producers_four_consumers() {
    run(&test_name!(), 2, 4);
}

#[test]
fn four_producers_two_consumers() {
    run(&test_name!(), 4, 2);
}

#[test]
fn four_producers_four_consumers() {
    run(&test_name!(), 4, 4);
}

#[test]
fn threads_and_clones_share_a_queue() {
    let _watchdog = Watchdog::new(WATCHDOG);
    let q = Queue::<Message>::builder()
        .capacity(8)
        .max_message_size(32)
        .create_anonymous()
        .unwrap();
    let per_producer = iterations(10_000) as u64;
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let q = q.clone();
            std::thread::spawn(move || {
                for seq in 0..per_producer {
                    q.put((p, seq, vec![1; (seq % 7) as usize])).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || consume(&q))
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    q.close();
    let mut total = Tally::new();
    for c in consumers {
        for (producer, (n, sum, squares)) in c.join().unwrap() {
            let entry = total.entry(producer).or_default();
            entry.0 += n;
            entry.1 += sum;
            entry.2 += squares;
        }
    }
    let n = u128::from(per_producer);
    for p in 0..2 {
        assert_eq!(
            total[&p],
            (per_producer, n * (n - 1) / 2, (n - 1) * n * (2 * n - 1) / 6)
        );
    }
}
