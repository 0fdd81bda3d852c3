//! Reading a row of a statement stepped on a raw SQLite handle (see [`super::direct`]) into any
//! `Deserialize` type, the way sqlx's `FromRow` reads a `SqliteRow`: a struct takes the columns
//! of its fields' names (a column it has no field for is skipped, an `Option` field with no
//! column is `None`), a tuple takes the columns in order. Values keep their SQLite types:
//! INTEGER, REAL, TEXT, BLOB and NULL; a boolean is an INTEGER that is not 0, and a float may
//! be read from an INTEGER. Unlike sqlx, a struct's `Option` field with no column is `None`.

use libsqlite3_sys as ffi;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use std::ffi::{CStr, c_int};
use std::ptr::NonNull;

/// Why a row could not be read into the type asked for.
#[derive(Debug)]
pub struct RowError(String);

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RowError {}

impl de::Error for RowError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        RowError(msg.to_string())
    }
}

/// The current row of a statement that has just answered `SQLITE_ROW`.
pub(super) struct RowReader {
    stmt: NonNull<ffi::sqlite3_stmt>,
    columns: c_int,
}

impl RowReader {
    pub(super) fn new(stmt: NonNull<ffi::sqlite3_stmt>) -> RowReader {
        // SAFETY: a valid statement.
        let columns = unsafe { ffi::sqlite3_column_count(stmt.as_ptr()) };
        RowReader { stmt, columns }
    }

    fn name(&self, i: c_int) -> String {
        // SAFETY: a valid statement and column; the name is a NUL-terminated string it owns.
        let name = unsafe { ffi::sqlite3_column_name(self.stmt.as_ptr(), i) };
        if name.is_null() {
            return String::new();
        }
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    }

    fn column(&self, i: c_int) -> Column {
        Column { stmt: self.stmt, i }
    }
}

impl<'de> de::Deserializer<'de> for RowReader {
    type Error = RowError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_map(Columns { row: self, next: 0 })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, RowError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        visitor.visit_seq(Columns { row: self, next: 0 })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct enum identifier ignored_any
    }
}

/// The columns of a row, one after another: by name for a struct, in order for a tuple.
struct Columns {
    row: RowReader,
    next: c_int,
}

impl Columns {
    /// The next column and its index, if any are left.
    fn peek(&self) -> Option<c_int> {
        (self.next < self.row.columns).then_some(self.next)
    }

    fn take(&mut self) -> Column {
        let column = self.row.column(self.next);
        self.next += 1;
        column
    }
}

impl<'de> de::MapAccess<'de> for Columns {
    type Error = RowError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, RowError> {
        let Some(i) = self.peek() else {
            return Ok(None);
        };
        let name: de::value::StringDeserializer<RowError> = self.row.name(i).into_deserializer();
        seed.deserialize(name).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, RowError> {
        seed.deserialize(self.take())
    }
}

impl<'de> de::SeqAccess<'de> for Columns {
    type Error = RowError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, RowError> {
        if self.peek().is_none() {
            return Ok(None);
        }
        seed.deserialize(self.take()).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some((self.row.columns - self.next).max(0) as usize)
    }
}

/// One column's value in the current row.
struct Column {
    stmt: NonNull<ffi::sqlite3_stmt>,
    i: c_int,
}

impl Column {
    fn kind(&self) -> c_int {
        // SAFETY: a valid statement on a row, and a column within it.
        unsafe { ffi::sqlite3_column_type(self.stmt.as_ptr(), self.i) }
    }

    fn i64(&self) -> i64 {
        unsafe { ffi::sqlite3_column_int64(self.stmt.as_ptr(), self.i) }
    }

    fn f64(&self) -> f64 {
        unsafe { ffi::sqlite3_column_double(self.stmt.as_ptr(), self.i) }
    }

    /// The value as text (SQLite's conversion for numbers).
    fn text(&self) -> Result<String, RowError> {
        // SAFETY: the pointer and length are valid until the statement moves on; copied here.
        let bytes = unsafe {
            let p = ffi::sqlite3_column_text(self.stmt.as_ptr(), self.i);
            let n = ffi::sqlite3_column_bytes(self.stmt.as_ptr(), self.i);
            if p.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(p, n.max(0) as usize)
            }
        };
        String::from_utf8(bytes.to_vec()).map_err(|_| RowError("a text column is not UTF-8".into()))
    }

    fn blob(&self) -> Vec<u8> {
        // SAFETY: as in `text`.
        unsafe {
            let p = ffi::sqlite3_column_blob(self.stmt.as_ptr(), self.i);
            let n = ffi::sqlite3_column_bytes(self.stmt.as_ptr(), self.i);
            if p.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(p.cast::<u8>(), n.max(0) as usize).to_vec()
            }
        }
    }
}

impl<'de> de::Deserializer<'de> for Column {
    type Error = RowError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        match self.kind() {
            ffi::SQLITE_INTEGER => visitor.visit_i64(self.i64()),
            ffi::SQLITE_FLOAT => visitor.visit_f64(self.f64()),
            ffi::SQLITE_TEXT => visitor.visit_string(self.text()?),
            ffi::SQLITE_BLOB => visitor.visit_byte_buf(self.blob()),
            _ => visitor.visit_none(),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        if self.kind() == ffi::SQLITE_NULL {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        match self.kind() {
            ffi::SQLITE_INTEGER => visitor.visit_bool(self.i64() != 0),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        match self.kind() {
            ffi::SQLITE_INTEGER | ffi::SQLITE_FLOAT => visitor.visit_f64(self.f64()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        // Text only, as sqlx decodes a String: a number where text is expected is an error.
        self.deserialize_any(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RowError> {
        match self.kind() {
            // Bytes (`Vec<u8>`) read as a sequence of numbers.
            ffi::SQLITE_BLOB => {
                visitor.visit_seq(de::value::SeqDeserializer::new(self.blob().into_iter()))
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, RowError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, RowError> {
        let text: de::value::StringDeserializer<RowError> = self.text()?.into_deserializer();
        visitor.visit_enum(text)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char bytes byte_buf
        unit unit_struct tuple tuple_struct map struct identifier ignored_any
    }
}
