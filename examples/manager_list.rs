//! A Manager list shared with a child process, with slicing (Python:
//! `l = manager.list(range(10)); p = Process(target=f, args=(l,)); ... print(l[:]); print(l[2:5])`).

use multiproc::{Manager, Process, SharedList};

fn squares(list: SharedList<u64>) {
    for i in 0..10 {
        list.set(i, &(i as u64 * i as u64)).expect("set");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    multiproc::init();
    let manager = Manager::new()?;
    let list = manager.list::<u64>("numbers")?;
    list.extend(0..10)?;
    let mut p = Process::spawn(squares, list.clone())?;
    p.join()?;
    println!("{:?}", list.to_vec()?);
    println!("{:?}", list.range(2..5)?);
    Ok(())
}
