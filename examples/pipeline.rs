//! A pipeline across processes: a producer feeds worker processes through one queue, the
//! workers send results to a collector process through another, and shared counters keep
//! statistics that every stage updates in place. Prints the throughput.
//!
//! `cargo run --release --example pipeline [ITEMS] [WORKERS]`

use std::time::Instant;

use multiproc::{Process, Queue, Value};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Stats {
    produced: Value<u64>,
    processed: Value<u64>,
    collected: Value<u64>,
}

#[derive(Serialize, Deserialize)]
struct Stage {
    jobs: Queue<Option<u64>>,
    results: Queue<Option<u64>>,
    stats: Stats,
    items: u64,
    workers: usize,
}

fn produce(stage: Stage) {
    for item in 0..stage.items {
        stage.jobs.put(Some(item)).expect("put job");
        stage.stats.produced.fetch_add(1);
    }
    for _ in 0..stage.workers {
        stage.jobs.put(None).expect("put stop");
    }
}

fn work(stage: Stage) {
    while let Some(item) = stage.jobs.get().expect("get job") {
        stage.results.put(Some(item * item)).expect("put result");
        stage.stats.processed.fetch_add(1);
    }
    stage.results.put(None).expect("put done");
}

fn collect(stage: Stage) -> u128 {
    let (mut sum, mut finished) = (0u128, 0);
    while finished < stage.workers {
        match stage.results.get().expect("get result") {
            Some(square) => {
                sum += u128::from(square);
                stage.stats.collected.fetch_add(1);
            }
            None => finished += 1,
        }
    }
    sum
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    multiproc::init();
    let mut args = std::env::args().skip(1);
    let items: u64 = args.next().map_or(Ok(200_000), |a| a.parse())?;
    let workers: usize = args.next().map_or(Ok(2), |a| a.parse())?;
    let jobs = Queue::<Option<u64>>::builder()
        .capacity(4096)
        .max_message_size(16)
        .create_anonymous()?;
    let results = Queue::<Option<u64>>::builder()
        .capacity(4096)
        .max_message_size(16)
        .create_anonymous()?;
    let shared = Stats {
        produced: Value::new(0)?,
        processed: Value::new(0)?,
        collected: Value::new(0)?,
    };
    // Every stage gets handles to the same queues and counters (clones share one mapping).
    let stage = || Stage {
        jobs: jobs.clone(),
        results: results.clone(),
        stats: Stats {
            produced: shared.produced.clone(),
            processed: shared.processed.clone(),
            collected: shared.collected.clone(),
        },
        items,
        workers,
    };

    let started = Instant::now();
    let mut collector = Process::spawn(collect, stage())?;
    let mut pool: Vec<Process<()>> = (0..workers)
        .map(|_| Process::spawn(work, stage()))
        .collect::<Result<_, _>>()?;
    let mut producer = Process::spawn(produce, stage())?;
    producer.join()?;
    for worker in &mut pool {
        worker.join()?;
    }
    let sum = collector.join()?;
    let elapsed = started.elapsed();

    let expected: u128 = (0..u128::from(items)).map(|x| x * x).sum();
    assert_eq!(sum, expected, "every item went through exactly once");
    let counts = [
        shared.produced.load(),
        shared.processed.load(),
        shared.collected.load(),
    ];
    println!("pipeline: {items} items, {workers} workers");
    println!(
        "stats: produced {} processed {} collected {}",
        counts[0], counts[1], counts[2]
    );
    println!("checksum: ok");
    println!(
        "throughput: {:.0} items/s ({:.1} ms)",
        items as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}
