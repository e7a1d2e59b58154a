//! Starting processes (spawn + join, returning a value) and `Pool::map` over small items.
//!
//! Run with `cargo bench -p shm-process --bench spawn`. Python's `Process(...).start();
//! join()` with the spawn method costs about 30 ms on the project's machines; the
//! side-by-side figure is in `multiproc bench`.

use criterion::{Criterion, criterion_group};
use shm_process::Process;

fn echo(x: u64) -> u64 {
    x
}

fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("process");
    group.sample_size(20);
    group.bench_function("spawn+join", |b| {
        b.iter(|| {
            let mut p = Process::spawn(echo, 7).expect("spawn");
            p.join().expect("join")
        })
    });
    group.finish();
}

fn square(x: u64) -> u64 {
    x * x
}

fn pool_map(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool");
    let pool = shm_process::Pool::new(2).expect("pool");
    for items in [100u64, 10_000] {
        group.throughput(criterion::Throughput::Elements(items));
        group.bench_function(format!("map squares x{items}"), |b| {
            b.iter(|| pool.map(square, 0..items).expect("map"))
        });
    }
    group.finish();
}

criterion_group!(benches, spawn_join, pool_map);

fn main() {
    // A spawned child is this bench binary again: run its function and exit.
    shm_process::init();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
