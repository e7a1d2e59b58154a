//! Hello from a child process (Python: `Process(target=f, args=('bob',)).start()`).

use multiproc::Process;

fn f(name: String) {
    println!("hello {name}");
}

fn main() {
    multiproc::init();
    let mut p = Process::new(f, "bob".to_owned());
    p.start().expect("start");
    p.join().expect("join");
}
