//! Fruits through a Queue: one process puts them, the main process gets them in order.

use multiproc::{Process, Queue};

fn producer(queue: Queue<String>) {
    for fruit in ["apple", "banana", "cherry", "durian"] {
        queue.put(fruit.to_owned()).expect("put");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    multiproc::init();
    let queue = Queue::<String>::new()?;
    let mut p = Process::spawn(producer, queue.clone())?;
    for _ in 0..4 {
        println!("{}", queue.get()?);
    }
    p.join()?;
    Ok(())
}
