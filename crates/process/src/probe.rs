//! Tells, through serde alone, whether a function's result is a `Result::Err`, and if so
//! what its message is: a child whose function returns `Err` exits with code 1, as a Python
//! process that raised does, while the caller still gets the `Err` value itself.

use std::fmt;

use serde::ser::{self, Impossible, Serialize, Serializer};

/// If `value` serialises as `Result::Err(e)`, the message of `e` (its text for strings and
/// numbers, a generic phrase otherwise).
pub(crate) fn error_message<T: Serialize + ?Sized>(value: &T) -> Option<String> {
    match value.serialize(ErrProbe) {
        Err(Found::Err(message)) => Some(message),
        _ => None,
    }
}

#[derive(Debug)]
enum Found {
    Err(String),
    Other,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probe")
    }
}

impl std::error::Error for Found {}

impl ser::Error for Found {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Found::Other
    }
}

/// Stops at the first thing serialised: anything but `Result::Err` is `Found::Other`.
struct ErrProbe;

/// Turns the `Err` payload into text.
struct Message;

macro_rules! other {
    ($($name:ident($($arg:ty),*);)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<Self::Ok, Self::Error> { Err(Found::Other) })*
    };
}

macro_rules! text {
    ($($name:ident($arg:ty);)*) => {
        $(fn $name(self, v: $arg) -> Result<Self::Ok, Self::Error> { Err(Found::Err(v.to_string())) })*
    };
}

macro_rules! compound_other {
    () => {
        type SerializeSeq = Impossible<(), Found>;
        type SerializeTuple = Impossible<(), Found>;
        type SerializeTupleStruct = Impossible<(), Found>;
        type SerializeTupleVariant = Impossible<(), Found>;
        type SerializeMap = Impossible<(), Found>;
        type SerializeStruct = Impossible<(), Found>;
        type SerializeStructVariant = Impossible<(), Found>;

        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Found> {
            Err(self.fallback())
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Found> {
            Err(self.fallback())
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Found> {
            Err(self.fallback())
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Found> {
            Err(self.fallback())
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Found> {
            Err(self.fallback())
        }
        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, Found> {
            Err(self.fallback())
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Found> {
            Err(self.fallback())
        }
    };
}

impl ErrProbe {
    fn fallback(&self) -> Found {
        Found::Other
    }
}

impl Message {
    fn fallback(&self) -> Found {
        Found::Err("the function returned an error".to_owned())
    }
}

impl Serializer for ErrProbe {
    type Ok = ();
    type Error = Found;
    compound_other!();
    other! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_u8(u8); serialize_u16(u16); serialize_u32(u32);
        serialize_u64(u64); serialize_f32(f32); serialize_f64(f64); serialize_char(char);
        serialize_str(&str); serialize_bytes(&[u8]); serialize_none(); serialize_unit();
        serialize_unit_struct(&'static str); serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), Found> {
        Err(Found::Other)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Found> {
        Err(Found::Other)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Found> {
        if name == "Result" && variant == "Err" {
            Err(match value.serialize(Message) {
                Err(found @ Found::Err(_)) => found,
                _ => Message.fallback(),
            })
        } else {
            Err(Found::Other)
        }
    }
}

impl Serializer for Message {
    type Ok = ();
    type Error = Found;
    compound_other!();
    text! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_u8(u8); serialize_u16(u16); serialize_u32(u32);
        serialize_u64(u64); serialize_f32(f32); serialize_f64(f64); serialize_char(char);
        serialize_str(&str);
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<(), Found> {
        Err(self.fallback())
    }
    fn serialize_none(self) -> Result<(), Found> {
        Err(self.fallback())
    }
    fn serialize_unit(self) -> Result<(), Found> {
        Err(self.fallback())
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<(), Found> {
        Err(Found::Err(name.to_owned()))
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Found> {
        Err(Found::Err(format!("{name}::{variant}")))
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Found> {
        value.serialize(self)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Found> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Found> {
        Err(match value.serialize(Message) {
            Err(Found::Err(inner)) => Found::Err(format!("{name}::{variant}({inner})")),
            _ => Found::Err(format!("{name}::{variant}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::error_message;

    #[test]
    fn finds_err_and_its_message() {
        assert_eq!(
            error_message(&Err::<u8, _>("disk full")),
            Some("disk full".to_owned())
        );
        assert_eq!(error_message(&Err::<u8, _>(42)), Some("42".to_owned()));
        assert_eq!(
            error_message(&Err::<u8, _>(vec![1, 2])),
            Some("the function returned an error".to_owned())
        );
        assert_eq!(error_message(&Ok::<u8, String>(1)), None);
        assert_eq!(error_message(&5u32), None);
        assert_eq!(error_message(&"text"), None);
        assert_eq!(
            error_message(&Some(Err::<u8, u8>(1))),
            None,
            "only a top-level Err counts"
        );
    }
}
