//! How many CPUs this machine has (Python: `multiprocessing.cpu_count()`).

fn main() {
    println!("Number of cpu : {}", multiproc::cpu_count());
}
