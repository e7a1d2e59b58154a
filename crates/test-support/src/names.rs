//! Unique names for shared-memory objects, and a check that a test left none behind.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Prefix of every named segment multiproc creates in `/dev/shm`.
pub const SHM_NAME_PREFIX: &str = "multiproc.";

const SHM_DIR: &str = "/dev/shm";
const MAX_TAG_LEN: usize = 40;

/// A name no other call, test or process uses: `t-<tag>-<pid>-<counter>-<nanos hex>`.
///
/// Characters outside `[A-Za-z0-9._-]` in `tag` become `_`, and the tag is cut to 40 bytes,
/// so the result is a valid file name under 100 bytes.
///
/// ```
/// let name = test_support::unique_name("seg/a b");
/// assert!(name.starts_with("t-seg_a_b-"));
/// assert_ne!(name, test_support::unique_name("seg/a b"));
/// ```
pub fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_TAG_LEN)
        .collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("t-{tag}-{}-{counter}-{nanos:x}", std::process::id())
}

/// File names (not paths) of the `/dev/shm` entries starting with [`SHM_NAME_PREFIX`] followed
/// by `prefix`, sorted. Empty when `/dev/shm` cannot be read.
pub fn shm_entries(prefix: &str) -> Vec<String> {
    let full_prefix = format!("{SHM_NAME_PREFIX}{prefix}");
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with(&full_prefix))
        .collect();
    names.sort();
    names
}

/// Fails the test if shared-memory objects named with a prefix survive it.
///
/// Create it with the prefix of the names the test uses (typically a [`unique_name`]); at
/// [`finish`](Self::finish), or when dropped unless the thread is already panicking, it panics
/// listing the `/dev/shm` entries named [`SHM_NAME_PREFIX`]` + prefix…`. It removes them first,
/// so one leaking test does not make later runs fail.
///
/// ```no_run
/// let name = test_support::unique_name("leak");
/// let check = test_support::ShmLeakCheck::new(&name);
/// // ... create and remove segments whose names start with `name` ...
/// check.finish();
/// ```
#[derive(Debug)]
pub struct ShmLeakCheck {
    prefix: String,
    finished: bool,
}

impl ShmLeakCheck {
    /// Starts watching names beginning with [`SHM_NAME_PREFIX`] followed by `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            finished: false,
        }
    }

    /// Checks now.
    ///
    /// # Panics
    ///
    /// If matching entries exist in `/dev/shm` (they are removed first).
    pub fn finish(mut self) {
        self.finished = true;
        self.check();
    }

    fn check(&self) {
        let leaked = shm_entries(&self.prefix);
        if leaked.is_empty() {
            return;
        }
        for name in &leaked {
            let _ = std::fs::remove_file(Path::new(SHM_DIR).join(name));
        }
        panic!(
            "shared-memory leak: {} entr{} in {SHM_DIR} with prefix `{SHM_NAME_PREFIX}{}` \
             survived the test (now removed): {leaked:?}",
            leaked.len(),
            if leaked.len() == 1 { "y" } else { "ies" },
            self.prefix,
        );
    }
}

impl Drop for ShmLeakCheck {
    fn drop(&mut self) {
        if !self.finished && !std::thread::panicking() {
            self.finished = true;
            self.check();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_and_distinct() {
        let long_tag = "x/".repeat(200);
        let names = [
            unique_name("a"),
            unique_name("a"),
            unique_name("ünï cödé"),
            unique_name(&long_tag),
        ];
        for name in &names {
            assert!(name.len() < 100, "{name} is too long");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                "{name} has bad characters"
            );
            assert!(name.starts_with("t-"));
        }
        assert_ne!(names[0], names[1]);
    }

    #[test]
    fn leak_check_reports_and_removes() {
        if !Path::new(SHM_DIR).is_dir() {
            crate::skip("no /dev/shm");
            return;
        }
        let prefix = unique_name("leakcheck");
        ShmLeakCheck::new(&prefix).finish();

        let path = Path::new(SHM_DIR).join(format!("{SHM_NAME_PREFIX}{prefix}.seg"));
        std::fs::write(&path, b"").unwrap();
        assert_eq!(
            shm_entries(&prefix),
            [format!("{SHM_NAME_PREFIX}{prefix}.seg")]
        );
        let result = std::panic::catch_unwind(|| ShmLeakCheck::new(&prefix).finish());
        let message = result.expect_err("the leak was not reported");
        let message = message.downcast_ref::<String>().unwrap();
        assert!(message.contains(&prefix), "{message}");
        assert!(!path.exists(), "the leaked entry was not removed");
        assert!(shm_entries(&prefix).is_empty());
    }
}
