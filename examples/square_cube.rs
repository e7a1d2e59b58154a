//! Square and cube of a number in two processes, started together, then "Done!".

use multiproc::Process;

fn print_square(num: i64) {
    println!("Square: {}", num * num);
}

fn print_cube(num: i64) {
    println!("Cube: {}", num * num * num);
}

fn main() {
    multiproc::init();
    let mut p1 = Process::new(print_square, 5);
    let mut p2 = Process::new(print_cube, 5);
    p1.start().expect("start p1");
    p2.start().expect("start p2");
    p1.join().expect("join p1");
    p2.join().expect("join p2");
    println!("Done!");
}
