//! A pipeline across processes: a producer feeds worker processes through one queue, the
//! workers send results to a collector process through another, and a shared dict of
//! statistics (a `Manager` dict, updated in place by every stage, a batch at a time) keeps
//! count. Prints the throughput.
//!
//! `cargo run --release --example pipeline [ITEMS] [WORKERS]`

use std::time::Instant;

use multiproc::{Manager, Process, Queue, SharedDict};
use serde::{Deserialize, Serialize};

/// How many items a stage counts locally before adding them to the shared statistics.
const FLUSH_EVERY: u64 = 1000;

/// Counts locally and adds to `stats[key]` every `FLUSH_EVERY` items and at the end.
struct Counter<'a> {
    stats: &'a SharedDict<String, u64>,
    key: &'static str,
    pending: u64,
}

impl Counter<'_> {
    fn add(&mut self) {
        self.pending += 1;
        if self.pending == FLUSH_EVERY {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let n = std::mem::take(&mut self.pending);
        self.stats
            .update_with(&self.key.to_owned(), |count| {
                *count = Some(count.unwrap_or(0) + n)
            })
            .expect("update statistics");
    }
}

#[derive(Serialize, Deserialize)]
struct Stage {
    jobs: Queue<Option<u64>>,
    results: Queue<Option<u64>>,
    stats: SharedDict<String, u64>,
    items: u64,
    workers: usize,
}

fn produce(stage: Stage) {
    let mut produced = Counter {
        stats: &stage.stats,
        key: "produced",
        pending: 0,
    };
    for item in 0..stage.items {
        stage.jobs.put(Some(item)).expect("put job");
        produced.add();
    }
    produced.flush();
    for _ in 0..stage.workers {
        stage.jobs.put(None).expect("put stop");
    }
}

fn work(stage: Stage) {
    let mut processed = Counter {
        stats: &stage.stats,
        key: "processed",
        pending: 0,
    };
    while let Some(item) = stage.jobs.get().expect("get job") {
        stage.results.put(Some(item * item)).expect("put result");
        processed.add();
    }
    processed.flush();
    stage.results.put(None).expect("put done");
}

fn collect(stage: Stage) -> u128 {
    let mut collected = Counter {
        stats: &stage.stats,
        key: "collected",
        pending: 0,
    };
    let (mut sum, mut finished) = (0u128, 0);
    while finished < stage.workers {
        match stage.results.get().expect("get result") {
            Some(square) => {
                sum += u128::from(square);
                collected.add();
            }
            None => finished += 1,
        }
    }
    collected.flush();
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
    let manager = Manager::new()?;
    let stats = manager.dict::<String, u64>("stats")?;
    // Every stage gets handles to the same queues and statistics.
    let stage = || Stage {
        jobs: jobs.clone(),
        results: results.clone(),
        stats: stats.clone(),
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
    let count = |key: &str| stats.get(&key.to_owned()).map(Option::unwrap_or_default);
    let counts = [count("produced")?, count("processed")?, count("collected")?];
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
