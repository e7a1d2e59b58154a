//! Eight tasks over a tasks queue and a results queue, served by three worker processes
//! that say which of them did each task (`current_process().name`).

use multiproc::{Process, Queue, current_process};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Queues {
    tasks: Queue<Option<u32>>,
    results: Queue<String>,
}

fn do_job(queues: Queues) {
    // `None` is the sentinel that tells a worker to stop.
    while let Some(task) = queues.tasks.get().expect("get") {
        let line = format!("Task no {task} is done by {}", current_process().name);
        queues.results.put(line).expect("put");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    multiproc::init();
    let tasks = Queue::<Option<u32>>::new()?;
    let results = Queue::<String>::new()?;
    for task in 0..8 {
        tasks.put(Some(task))?;
    }
    let mut workers = Vec::new();
    for _ in 0..3 {
        let queues = Queues {
            tasks: tasks.clone(),
            results: results.clone(),
        };
        workers.push(Process::spawn(do_job, queues)?);
        tasks.put(None)?;
    }
    for _ in 0..8 {
        println!("{}", results.get()?);
    }
    for worker in &mut workers {
        worker.join()?;
    }
    Ok(())
}
