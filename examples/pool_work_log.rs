//! A Pool of two workers running four jobs that wait (Python's `work_log` example, with
//! tenths of a second instead of seconds).

use std::time::Duration;

use multiproc::Pool;

fn work_log((name, tenths): (String, u64)) {
    println!(" Process {name} waiting {tenths} tenths of a second");
    std::thread::sleep(Duration::from_millis(100 * tenths));
    println!(" Process {name} Finished.");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    multiproc::init();
    let work = [("A", 5), ("B", 2), ("C", 1), ("D", 3)].map(|(n, t)| (n.to_owned(), t));
    let pool = Pool::new(2)?;
    pool.map_chunked(work_log, work, 1)?;
    Ok(())
}
