//! Walking a row's fields by name: a `Serialize` struct's fields, or a map's entries (a JSON
//! object, or a struct with `#[serde(flatten)]`, which serde writes as a map). SQLite's rows bind
//! each field to the parameter of its name ([`super::direct`]); PostgreSQL's collect it into the
//! array of its column ([`super::columns`]).

use serde::ser::{self, Serialize};
use std::marker::PhantomData;

/// What takes a row's fields, one at a time.
pub(super) trait Fields {
    type Error: ser::Error;
    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), Self::Error>;
}

/// Hands each field of `row` to `sink`; anything but a struct or a map of fields is refused.
pub(super) fn each_field<R: Serialize + ?Sized, F: Fields>(
    row: &R,
    sink: &mut F,
) -> Result<(), F::Error> {
    row.serialize(RowSer { sink })
}

/// Generates `Serializer` methods that answer `$err(name of the method)`.
macro_rules! refuse {
    ($err:ident; $($method:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ret, Self::Error> {
            $err(stringify!($method))
        })*
    };
}

/// The compound shapes (sequences, tuples, enum variants with fields), all answered by `$err`.
macro_rules! refuse_compound {
    ($err:ident) => {
        $crate::db::fields::refuse! { $err;
            serialize_seq(Option<usize>) -> Self::SerializeSeq;
            serialize_tuple(usize) -> Self::SerializeTuple;
            serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
            serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
            serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
        }
    };
}

/// An option's value and a newtype's inner value serialize as the value itself.
macro_rules! see_through {
    ($ok:ty) => {
        fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<$ok, Self::Error> {
            v.serialize(self)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            v: &T,
        ) -> Result<$ok, Self::Error> {
            v.serialize(self)
        }
    };
}

/// The `Serialize*` types a serializer never hands out, each `ser::Impossible<$ok, $err>`.
macro_rules! impossible {
    ($ok:ty, $err:ty; $($name:ident),*) => {
        $(type $name = serde::ser::Impossible<$ok, $err>;)*
    };
}

/// The `Serialize*` types of a serializer of one value (none of them is ever handed out).
macro_rules! impossible_all {
    ($ok:ty, $err:ty) => {
        $crate::db::fields::impossible! { $ok, $err; SerializeSeq, SerializeTuple,
        SerializeTupleStruct, SerializeTupleVariant, SerializeMap, SerializeStruct,
        SerializeStructVariant }
    };
}

pub(crate) use {impossible, impossible_all, refuse, refuse_compound, see_through};

fn not_a_row<T, E: ser::Error>(what: &str) -> Result<T, E> {
    Err(E::custom(format!(
        "a row must be a struct or a map of fields, not {what}"
    )))
}

/// A row: a struct's fields or a map's entries, each handed on by name.
struct RowSer<'f, F> {
    sink: &'f mut F,
}

/// A map's entries: the key read by [`KeyName`], then its value handed on.
struct MapSer<'f, F> {
    sink: &'f mut F,
    key: Option<String>,
}

impl<F: Fields> ser::SerializeStruct for RowSer<'_, F> {
    type Ok = ();
    type Error = F::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), F::Error> {
        self.sink.field(key, value)
    }
    fn end(self) -> Result<(), F::Error> {
        Ok(())
    }
}

impl<F: Fields> ser::SerializeMap for MapSer<'_, F> {
    type Ok = ();
    type Error = F::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), F::Error> {
        self.key = Some(key.serialize(KeyName(PhantomData))?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), F::Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ser::Error::custom("a map value without its key"))?;
        self.sink.field(&key, value)
    }
    fn end(self) -> Result<(), F::Error> {
        Ok(())
    }
}

impl<'f, F: Fields> ser::Serializer for RowSer<'f, F> {
    type Ok = ();
    type Error = F::Error;
    impossible! { (), F::Error; SerializeSeq, SerializeTuple, SerializeTupleStruct,
    SerializeTupleVariant, SerializeStructVariant }
    type SerializeMap = MapSer<'f, F>;
    type SerializeStruct = RowSer<'f, F>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<RowSer<'f, F>, F::Error> {
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapSer<'f, F>, F::Error> {
        Ok(MapSer {
            sink: self.sink,
            key: None,
        })
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), F::Error> {
        not_a_row("an enum")
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), F::Error> {
        not_a_row("an enum")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), F::Error> {
        not_a_row("a unit struct")
    }
    refuse_compound! { not_a_row }
    see_through! { () }
    refuse! { not_a_row;
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
    }
}

/// Reads a map key as a string.
struct KeyName<E>(PhantomData<E>);

fn not_a_key<T, E: ser::Error>(_: &str) -> Result<T, E> {
    Err(E::custom("a map key must be a string"))
}

impl<E: ser::Error> ser::Serializer for KeyName<E> {
    type Ok = String;
    type Error = E;
    impossible_all! { String, E }

    fn serialize_str(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    refuse_compound! { not_a_key }
    see_through! { String }
    refuse! { not_a_key;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_bool(bool) -> String;
        serialize_i8(i8) -> String;
        serialize_i16(i16) -> String;
        serialize_i32(i32) -> String;
        serialize_i64(i64) -> String;
        serialize_u8(u8) -> String;
        serialize_u16(u16) -> String;
        serialize_u32(u32) -> String;
        serialize_u64(u64) -> String;
        serialize_f32(f32) -> String;
        serialize_f64(f64) -> String;
        serialize_char(char) -> String;
        serialize_bytes(&[u8]) -> String;
        serialize_none() -> String;
        serialize_unit() -> String;
        serialize_unit_struct(&'static str) -> String;
        serialize_map(Option<usize>) -> Self::SerializeMap;
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, E> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, E> {
        not_a_key("variant")
    }
}
