//! A batch's rows sent to PostgreSQL as one array per column, read back with `unnest`.
//!
//! The set-based writes are written for `json_to_recordset($1::json) AS x(col type, …)`: the
//! rows as one JSON text. That text must be escaped here (an event's data, an order's items and
//! an idempotent answer are JSON texts inside it), then PostgreSQL lexes it twice (the cast to
//! `json` checks it, then `json_to_recordset` reads it). For a batch of table orders that was
//! about 170 KB and most of the batch statement's time. Arrays in the binary protocol are
//! copied, not parsed.
//!
//! [`rewrite`] turns such a statement into one that reads `unnest($k::type[], …) AS x(col, …)`
//! from parameters numbered from `$k`; [`Columns`] collects rows (any `Serialize` struct or map
//! of fields, as [`super::Tx::write_rows`] takes) into those arrays, by field name, as
//! `json_to_recordset` would read their JSON: a field with no column is skipped, a column with
//! no field is NULL, a number or boolean in a text column is its JSON text, and so is an array
//! or object. It is stricter where PostgreSQL would convert: text in a bigint or boolean column,
//! a number in a boolean column, any float, and an integer beyond `i64` are refused (an error
//! before anything is sent), since the program's rows never hold them.

use super::Value;
use super::fields::{Fields, each_field, impossible_all, refuse, refuse_compound, see_through};
use serde::Serialize;
use serde::ser;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

/// A column's type, as `json_to_recordset` declared it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    BigInt,
    Bool,
}

impl Kind {
    fn parse(t: &str) -> Option<Kind> {
        match t {
            "text" => Some(Kind::Text),
            "bigint" => Some(Kind::BigInt),
            "boolean" => Some(Kind::Bool),
            _ => None,
        }
    }

    fn array_type(self) -> &'static str {
        match self {
            Kind::Text => "text[]",
            Kind::BigInt => "bigint[]",
            Kind::Bool => "boolean[]",
        }
    }
}

/// A statement rewritten by [`rewrite`]: its text and the columns its arrays hold, in the order
/// of its parameters.
#[derive(Debug)]
pub struct Unnest {
    pub sql: String,
    pub columns: Vec<(String, Kind)>,
}

const READER: &str = "json_to_recordset($1::json) AS ";

/// Rewrites a statement that reads its rows with `json_to_recordset($1::json) AS a(col type, …)`
/// (types `text`, `bigint` or `boolean`) to read them from one array per column, numbered from
/// `$first`. Fails, naming why, for any other shape: the statements are the program's own, so
/// a failure is a bug that the tests meet at once.
pub fn rewrite(sql: &str, first: usize) -> Result<Unnest, String> {
    let at = sql
        .find(READER)
        .ok_or_else(|| format!("no `{READER}` in: {sql}"))?;
    let rest = &sql[at + READER.len()..];
    let open = rest
        .find('(')
        .ok_or_else(|| format!("no column list in: {sql}"))?;
    let alias = rest[..open].trim();
    if alias.is_empty() || !alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("no alias before the column list in: {sql}"));
    }
    let close = rest[open..]
        .find(')')
        .map(|i| open + i)
        .ok_or_else(|| format!("an unclosed column list in: {sql}"))?;
    let mut columns = Vec::new();
    for def in rest[open + 1..close].split(',') {
        let mut words = def.split_whitespace();
        let (Some(name), Some(kind), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("`{def}` is not `name type` in: {sql}"));
        };
        let kind = Kind::parse(kind).ok_or_else(|| format!("unknown type `{kind}` in: {sql}"))?;
        columns.push((name.to_owned(), kind));
    }
    let after = &rest[close + 1..];
    if sql[..at].contains("$1") || after.contains("$1") {
        return Err(format!("`$1` is read twice in: {sql}"));
    }
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| format!("${}::{}", first + i, kind.array_type()))
        .collect();
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    Ok(Unnest {
        sql: format!(
            "{}unnest({}) AS {alias}({}){after}",
            &sql[..at],
            arrays.join(", "),
            names.join(", ")
        ),
        columns,
    })
}

/// [`rewrite`] of one of the program's own statements (a `&'static str`), from `$1`: made once
/// per statement and kept for the life of the process (there are a handful).
pub fn statement(sql: &'static str) -> Result<&'static Unnest, String> {
    static MADE: LazyLock<Mutex<HashMap<&'static str, &'static Unnest>>> =
        LazyLock::new(Default::default);
    let mut made = MADE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(u) = made.get(sql) {
        return Ok(u);
    }
    let u: &'static Unnest = Box::leak(Box::new(rewrite(sql, 1)?));
    made.insert(sql, u);
    Ok(u)
}

/// One column's values.
#[derive(Debug)]
enum Column {
    Text(Vec<Option<String>>),
    BigInt(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
}

impl Column {
    fn push_null(&mut self) {
        match self {
            Column::Text(v) => v.push(None),
            Column::BigInt(v) => v.push(None),
            Column::Bool(v) => v.push(None),
        }
    }
}

/// Rows collected as one array per column (see the module's notes).
#[derive(Debug)]
pub struct Columns<'s> {
    /// The statement's columns (names and types), borrowed: a batch copies no names.
    columns: &'s [(String, Kind)],
    data: Vec<Column>,
    /// Which columns the row being pushed has set.
    set: Vec<bool>,
    rows: usize,
}

/// Why a row could not be collected.
#[derive(Debug)]
pub struct ColumnsError(String);

impl std::fmt::Display for ColumnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ColumnsError {}

impl ser::Error for ColumnsError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        ColumnsError(msg.to_string())
    }
}

impl<'s> Columns<'s> {
    pub fn new(columns: &'s [(String, Kind)]) -> Columns<'s> {
        Columns {
            columns,
            data: columns
                .iter()
                .map(|(_, k)| match k {
                    Kind::Text => Column::Text(Vec::new()),
                    Kind::BigInt => Column::BigInt(Vec::new()),
                    Kind::Bool => Column::Bool(Vec::new()),
                })
                .collect(),
            set: vec![false; columns.len()],
            rows: 0,
        }
    }

    /// Adds one row; on failure nothing of it stays.
    pub fn push<T: Serialize + ?Sized>(&mut self, row: &T) -> Result<(), ColumnsError> {
        self.set.iter_mut().for_each(|s| *s = false);
        let result = each_field(row, self);
        for (col, set) in self.data.iter_mut().zip(&self.set) {
            if !set {
                col.push_null();
            }
        }
        self.rows += 1;
        if let Err(e) = result {
            self.pop();
            return Err(e);
        }
        Ok(())
    }

    /// Removes the last row (each column holds one value per row once a push has ended).
    fn pop(&mut self) {
        for col in &mut self.data {
            match col {
                Column::Text(v) => drop(v.pop()),
                Column::BigInt(v) => drop(v.pop()),
                Column::Bool(v) => drop(v.pop()),
            }
        }
        self.rows -= 1;
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The arrays, in the order of the statement's parameters.
    pub fn into_values(self) -> Vec<Value> {
        self.data
            .into_iter()
            .map(|c| match c {
                Column::Text(v) => Value::TextArray(v),
                Column::BigInt(v) => Value::I64Array(v),
                Column::Bool(v) => Value::BoolArray(v),
            })
            .collect()
    }
}

impl Fields for Columns<'_> {
    type Error = ColumnsError;

    /// Stores `value` in the column named `field`, if there is one.
    fn field<T: Serialize + ?Sized>(&mut self, field: &str, value: &T) -> Result<(), ColumnsError> {
        let Some(i) = self.columns.iter().position(|(n, _)| n == field) else {
            return Ok(());
        };
        if self.set[i] {
            return Err(ColumnsError(format!("the field `{field}` appears twice")));
        }
        let cell = match value.serialize(CellSer) {
            Err(ColumnsError(m)) if m == NESTED => {
                Cell::Json(serde_json::to_string(value).map_err(|e| ColumnsError(e.to_string()))?)
            }
            other => other?,
        };
        match (&mut self.data[i], cell) {
            (col, Cell::Null) => col.push_null(),
            (Column::Text(v), Cell::Text(s) | Cell::Json(s)) => v.push(Some(s)),
            (Column::Text(v), Cell::Int(n)) => v.push(Some(n.to_string())),
            (Column::Text(v), Cell::Bool(b)) => v.push(Some(b.to_string())),
            (Column::BigInt(v), Cell::Int(n)) => v.push(Some(n)),
            (Column::Bool(v), Cell::Bool(b)) => v.push(Some(b)),
            (_, cell) => {
                return Err(ColumnsError(format!(
                    "the field `{field}` holds {cell:?}, not its column's type"
                )));
            }
        }
        self.set[i] = true;
        Ok(())
    }
}

/// One field's value, as its column will hold it.
#[derive(Debug)]
enum Cell {
    Null,
    Text(String),
    /// An array or object, as its JSON text.
    Json(String),
    Int(i64),
    Bool(bool),
}

/// What [`CellSer`] answers for an array or object (which is then written as JSON).
const NESTED: &str = "nested";

fn nested<T>() -> Result<T, ColumnsError> {
    Err(ColumnsError(NESTED.into()))
}

/// Reads one field's value into a [`Cell`]; arrays and objects answer [`NESTED`].
struct CellSer;

fn nested_of<T>(_: &str) -> Result<T, ColumnsError> {
    nested()
}

/// Numbers that fit an `i64` are read as one.
macro_rules! widen {
    ($($method:ident($from:ty);)*) => {
        $(fn $method(self, v: $from) -> Result<Cell, ColumnsError> {
            Ok(Cell::Int(v.into()))
        })*
    };
}

impl ser::Serializer for CellSer {
    type Ok = Cell;
    type Error = ColumnsError;
    impossible_all! { Cell, ColumnsError }

    fn serialize_bool(self, v: bool) -> Result<Cell, ColumnsError> {
        Ok(Cell::Bool(v))
    }
    widen! {
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
    }
    fn serialize_u64(self, v: u64) -> Result<Cell, ColumnsError> {
        i64::try_from(v)
            .map(Cell::Int)
            .map_err(|_| ColumnsError(format!("{v} does not fit a bigint")))
    }
    fn serialize_f32(self, v: f32) -> Result<Cell, ColumnsError> {
        Err(ColumnsError(format!("{v}: no column holds a float")))
    }
    fn serialize_f64(self, v: f64) -> Result<Cell, ColumnsError> {
        Err(ColumnsError(format!("{v}: no column holds a float")))
    }
    fn serialize_char(self, v: char) -> Result<Cell, ColumnsError> {
        Ok(Cell::Text(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Cell, ColumnsError> {
        Ok(Cell::Text(v.to_owned()))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Cell, ColumnsError> {
        nested()
    }
    fn serialize_none(self) -> Result<Cell, ColumnsError> {
        Ok(Cell::Null)
    }
    fn serialize_unit(self) -> Result<Cell, ColumnsError> {
        Ok(Cell::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Cell, ColumnsError> {
        Ok(Cell::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Cell, ColumnsError> {
        Ok(Cell::Text(variant.to_owned()))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Cell, ColumnsError> {
        nested()
    }
    refuse_compound! { nested_of }
    see_through! { Cell }
    refuse! { nested_of;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_reader_becomes_arrays_numbered_from_the_first() {
        let u = rewrite(
            "UPDATE t AS sp SET n = sp.n + j.d FROM json_to_recordset($1::json) AS j(s text, d bigint, b boolean) \
             WHERE sp.s = j.s",
            4,
        )
        .unwrap();
        assert_eq!(
            u.sql,
            "UPDATE t AS sp SET n = sp.n + j.d FROM unnest($4::text[], $5::bigint[], $6::boolean[]) AS j(s, d, b) \
             WHERE sp.s = j.s"
        );
        assert_eq!(
            u.columns,
            vec![
                ("s".to_owned(), Kind::Text),
                ("d".to_owned(), Kind::BigInt),
                ("b".to_owned(), Kind::Bool)
            ]
        );
    }

    #[test]
    fn other_shapes_are_refused() {
        assert!(rewrite("SELECT 1", 1).is_err());
        assert!(rewrite("SELECT * FROM json_to_recordset($1::json) AS x(a jsonb)", 1).is_err());
        assert!(rewrite("SELECT $1 FROM json_to_recordset($1::json) AS x(a text)", 1).is_err());
        assert!(rewrite("SELECT * FROM json_to_recordset($1::json) AS x(a)", 1).is_err());
    }

    #[derive(Serialize)]
    struct Inner {
        n: i64,
    }

    #[derive(Serialize)]
    struct Row<'a> {
        id: &'a str,
        amount: i64,
        flag: bool,
        note: Option<&'a str>,
        extra: &'a str,
        nested: Vec<u8>,
        #[serde(flatten)]
        inner: Inner,
    }

    fn cols() -> Vec<(String, Kind)> {
        [
            ("id", Kind::Text),
            ("amount", Kind::BigInt),
            ("flag", Kind::Bool),
            ("note", Kind::Text),
            ("nested", Kind::Text),
            ("n", Kind::BigInt),
            ("missing", Kind::Text),
        ]
        .into_iter()
        .map(|(n, k)| (n.to_owned(), k))
        .collect()
    }

    #[test]
    fn rows_fill_their_columns_by_name_as_json_would_read_them() {
        let cols = cols();
        let mut c = Columns::new(&cols);
        for (id, note) in [("a", Some("x")), ("b", None)] {
            c.push(&Row {
                id,
                amount: 7,
                flag: true,
                note,
                extra: "ignored",
                nested: vec![1, 2],
                inner: Inner { n: 3 },
            })
            .unwrap();
        }
        c.push(&serde_json::json!({"id": "c", "amount": 1, "n": 2, "note": 5}))
            .unwrap();
        assert_eq!(c.len(), 3);
        let v = c.into_values();
        let texts = |i: usize| match &v[i] {
            Value::TextArray(t) => t.clone(),
            other => panic!("{other:?}"),
        };
        let ints = |i: usize| match &v[i] {
            Value::I64Array(t) => t.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            texts(0),
            [Some("a".into()), Some("b".into()), Some("c".into())]
        );
        assert_eq!(ints(1), [Some(7), Some(7), Some(1)]);
        assert!(matches!(&v[2], Value::BoolArray(b) if *b == [Some(true), Some(true), None]));
        assert_eq!(texts(3), [Some("x".into()), None, Some("5".into())]);
        assert_eq!(texts(4), [Some("[1,2]".into()), Some("[1,2]".into()), None]);
        assert_eq!(ints(5), [Some(3), Some(3), Some(2)]);
        assert_eq!(texts(6), [None, None, None]);
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_and_leaves_nothing() {
        let cols = cols();
        let mut c = Columns::new(&cols);
        c.push(&serde_json::json!({"id": "a", "amount": 1}))
            .unwrap();
        assert!(
            c.push(&serde_json::json!({"id": "b", "amount": "many"}))
                .is_err()
        );
        assert!(c.push(&serde_json::json!({"id": "b", "flag": 1})).is_err());
        assert!(c.push(&[1, 2]).is_err());
        assert_eq!(c.len(), 1);
        let v = c.into_values();
        assert!(v.iter().all(|a| match a {
            Value::TextArray(x) => x.len() == 1,
            Value::I64Array(x) => x.len() == 1,
            Value::BoolArray(x) => x.len() == 1,
            _ => false,
        }));
    }
}
