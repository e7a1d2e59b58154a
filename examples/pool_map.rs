//! `Pool.map` of squares (Python: `with Pool(5) as p: print(p.map(f, [1, 2, 3]))`).

use multiproc::Pool;

fn f(x: u64) -> u64 {
    x * x
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    multiproc::init();
    let pool = Pool::new(5)?;
    println!("{:?}", pool.map(f, [1, 2, 3])?);
    Ok(())
}
