//! Validated names of named segments.

use std::fmt;

use crate::error::InvalidName;

/// Every named segment's OS name starts with this, so `multiproc ls` and `gc` find ours and
/// never touch anybody else's.
///
/// # Examples
///
/// ```
/// use shm_segment::SegmentName;
/// assert!(SegmentName::new("x").unwrap().file_name().starts_with(shm_segment::NAME_PREFIX));
/// ```
pub const NAME_PREFIX: &str = "multiproc.";

/// The longest name a user may give (the prefix is not counted).
///
/// # Examples
///
/// ```
/// use shm_segment::{SegmentName, MAX_NAME_LEN};
/// assert!(SegmentName::new(&"n".repeat(MAX_NAME_LEN)).is_ok());
/// assert!(SegmentName::new(&"n".repeat(MAX_NAME_LEN + 1)).is_err());
/// ```
pub const MAX_NAME_LEN: usize = 200;

/// A validated segment name: 1 to [`MAX_NAME_LEN`] bytes of ASCII letters, digits, `.`, `_`
/// and `-`. The segment itself is `/dev/shm/multiproc.<name>`.
///
/// # Examples
///
/// ```
/// use shm_segment::SegmentName;
/// let name = SegmentName::new("jobs-1").unwrap();
/// assert_eq!(name.as_str(), "jobs-1");
/// assert_eq!(name.file_name(), "multiproc.jobs-1");
/// assert!(SegmentName::new("a/b").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SegmentName(String);

impl SegmentName {
    /// Validates `name`.
    ///
    /// # Errors
    ///
    /// [`InvalidName`] when the name is empty, longer than [`MAX_NAME_LEN`] bytes, or holds a
    /// character other than ASCII letters, digits, `.`, `_` and `-`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::SegmentName;
    /// assert!(SegmentName::new("results.v2_final-1").is_ok());
    /// assert!(SegmentName::new("").is_err());
    /// ```
    pub fn new(name: &str) -> Result<Self, InvalidName> {
        let reason = if name.is_empty() {
            Some("it is empty".to_owned())
        } else if name.len() > MAX_NAME_LEN {
            Some(format!(
                "it is {} bytes long; the limit is {MAX_NAME_LEN}",
                name.len()
            ))
        } else {
            name.chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
                .map(|c| {
                    format!("it contains {c:?}; use only ASCII letters, digits, '.', '_' and '-'")
                })
        };
        match reason {
            Some(reason) => Err(InvalidName {
                name: name.to_owned(),
                reason,
            }),
            None => Ok(SegmentName(name.to_owned())),
        }
    }

    /// Recognises a `/dev/shm` file name of ours (`multiproc.<name>`).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_segment::SegmentName;
    /// assert_eq!(SegmentName::from_file_name("multiproc.jobs").unwrap().as_str(), "jobs");
    /// assert!(SegmentName::from_file_name("someone-else").is_none());
    /// ```
    pub fn from_file_name(file_name: &str) -> Option<Self> {
        file_name
            .strip_prefix(NAME_PREFIX)
            .and_then(|n| SegmentName::new(n).ok())
    }

    /// The name as the user gave it.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_segment::SegmentName::new("a").unwrap().as_str(), "a");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file's name under `/dev/shm`: `multiproc.<name>`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_segment::SegmentName::new("a").unwrap().file_name(), "multiproc.a");
    /// ```
    pub fn file_name(&self) -> String {
        format!("{NAME_PREFIX}{}", self.0)
    }

    /// The name passed to `shm_open`: `/multiproc.<name>`.
    pub(crate) fn os_name(&self) -> String {
        format!("/{NAME_PREFIX}{}", self.0)
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SegmentName({:?})", self.0)
    }
}

impl AsRef<str> for SegmentName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
