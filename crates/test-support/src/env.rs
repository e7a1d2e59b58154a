//! Facts about the test environment, skipping tests, and the time-scale knob.

use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

/// Environment variable multiplying every limit and timeout of this crate (a float, default
/// 1.0): raise it on slow or heavily loaded machines.
pub const TIME_SCALE_ENV: &str = "MULTIPROC_TEST_TIME_SCALE";

/// Whether the process runs with effective user id 0.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether `name` is an executable program: a path when it contains `/`, otherwise searched
/// in the directories of `PATH`.
pub fn have_program(name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    if name.contains('/') {
        return is_executable(Path::new(name));
    }
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".").to_path_buf()
        } else {
            dir
        };
        is_executable(&dir.join(OsStr::new(name)))
    })
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Reports loudly that the calling test is skipped; the test should `return` right after.
///
/// The line `SKIPPED: <reason>` goes straight to the process's stderr, bypassing libtest's
/// output capture, so it shows even for a passing test.
///
/// ```
/// if !test_support::have_program("setpriv") {
///     test_support::skip("setpriv is not installed");
///     return;
/// }
/// ```
pub fn skip(reason: &str) {
    let name = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    // Written to the stream itself: `eprintln!` would be captured and hidden by libtest.
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {reason} (test {name})");
}

/// The factor from [`TIME_SCALE_ENV`] (default 1.0).
///
/// # Panics
///
/// If the variable is set to something other than a finite number above zero.
pub fn time_scale() -> f64 {
    env_scale(TIME_SCALE_ENV)
}

/// `duration` multiplied by [`time_scale`].
///
/// ```
/// use std::time::Duration;
/// let limit = test_support::scaled(Duration::from_secs(5));
/// assert!(limit > Duration::ZERO);
/// ```
pub fn scaled(duration: Duration) -> Duration {
    duration.mul_f64(time_scale())
}

/// Reads a scale factor from environment variable `var`: unset or empty means 1.0.
pub(crate) fn env_scale(var: &str) -> f64 {
    let value = std::env::var(var).unwrap_or_default();
    parse_scale(&value).unwrap_or_else(|| {
        panic!("{var}={value:?} is not a valid scale: expected a finite number above zero")
    })
}

fn parse_scale(value: &str) -> Option<f64> {
    let value = value.trim();
    if value.is_empty() {
        return Some(1.0);
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|scale| scale.is_finite() && *scale > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scales() {
        assert_eq!(parse_scale(""), Some(1.0));
        assert_eq!(parse_scale(" 2.5 "), Some(2.5));
        assert_eq!(parse_scale("0"), None);
        assert_eq!(parse_scale("-1"), None);
        assert_eq!(parse_scale("inf"), None);
        assert_eq!(parse_scale("fast"), None);
    }

    #[test]
    fn finds_programs() {
        assert!(have_program("sh"));
        assert!(have_program("/bin/sh"));
        assert!(!have_program("multiproc-no-such-program"));
        assert!(!have_program(""));
    }
}
