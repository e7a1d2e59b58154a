//! Loop counts that CI can shrink (or stress runs can grow).

use crate::env::env_scale;

/// Environment variable multiplying the counts returned by [`iterations`] (a float, default
/// 1.0).
pub const ITERATIONS_SCALE_ENV: &str = "MULTIPROC_TEST_ITERATIONS_SCALE";

/// `default` multiplied by [`ITERATIONS_SCALE_ENV`], at least 1.
///
/// ```
/// for _ in 0..test_support::iterations(10_000) {
///     // one round of a stress loop
/// }
/// ```
///
/// # Panics
///
/// If the variable is set to something other than a finite number above zero.
pub fn iterations(default: usize) -> usize {
    scale_count(default, env_scale(ITERATIONS_SCALE_ENV))
}

fn scale_count(default: usize, scale: f64) -> usize {
    // `as` saturates for floats too large for usize.
    ((default as f64 * scale).round() as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::scale_count;

    #[test]
    fn scales_and_clamps() {
        assert_eq!(scale_count(1000, 1.0), 1000);
        assert_eq!(scale_count(1000, 0.1), 100);
        assert_eq!(scale_count(1000, 2.0), 2000);
        assert_eq!(scale_count(10, 0.001), 1);
        assert_eq!(scale_count(0, 1.0), 1);
        assert_eq!(scale_count(usize::MAX, 1e30), usize::MAX);
    }
}
