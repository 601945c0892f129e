//! Writers: a frame to Parquet + CSV + JSON files, and small result tables to
//! stdout as a text table, JSON or CSV.
//!
//! CSV and JSON are rendered from the frame's own cells, following the
//! [`Kind`] declared in [`crate::frames`], so the three files agree row for row.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use polars::prelude::{DataFrame, DataType, ParquetReader, ParquetWriter, SerReader};
use serde_json::{Map, Value};

use crate::frames::time::rfc3339;
use crate::frames::{check_columns, conform, Kind, Schema};

/// How rows printed to stdout are formatted (`--output`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Table, Format::Json, Format::Csv];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

fn millis_to_rfc3339(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(rfc3339)
}

/// The files [`write_frame`] produces for a schema inside `dir`.
pub fn frame_paths(dir: &Path, schema: &Schema) -> [PathBuf; 3] {
    [
        dir.join(format!("{}.parquet", schema.name)),
        dir.join(format!("{}.csv", schema.name)),
        dir.join(format!("{}.json", schema.name)),
    ]
}

/// Writes `df` as `<name>.parquet`, `<name>.csv` and `<name>.json` in `dir`.
pub fn write_frame(dir: &Path, schema: &Schema, df: &mut DataFrame) -> Result<Vec<PathBuf>> {
    check_columns(df, schema)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let [parquet, csv, json] = frame_paths(dir, schema);

    let file = File::create(&parquet).with_context(|| format!("creating {}", parquet.display()))?;
    ParquetWriter::new(file)
        .finish(df)
        .with_context(|| format!("writing {}", parquet.display()))?;

    let rows = render_rows(df, schema)?;
    write_csv(&csv, schema, &rows)?;
    write_json(&json, schema, &rows)?;
    Ok(vec![parquet, csv, json])
}

/// Like [`write_frame`], but a reader never sees a half-written file: the
/// three files are written and fsynced in a scratch folder inside `dir`, then
/// each is renamed over its final name (same file system, so each rename is
/// atomic).
pub fn write_frame_atomic(dir: &Path, schema: &Schema, df: &mut DataFrame) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let scratch = scratch_dir(dir)?;
    let result = (|| -> Result<Vec<PathBuf>> {
        let written = write_frame(&scratch, schema, df)?;
        let mut finals = Vec::with_capacity(written.len());
        for path in &written {
            sync_file(path)?;
            let name = path.file_name().unwrap_or_default();
            let target = dir.join(name);
            std::fs::rename(path, &target)
                .with_context(|| format!("moving {} into place", target.display()))?;
            finals.push(target);
        }
        sync_dir(dir);
        Ok(finals)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Writes `bytes` to `path` atomically: a temporary name beside it, fsync,
/// rename.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> Result<()> {
        let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("moving {} into place", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    sync_dir(&dir);
    result
}

fn scratch_dir(dir: &Path) -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let scratch = dir.join(format!(".kmsrot-{}-{nanos}.tmp", std::process::id()));
    std::fs::create_dir(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    Ok(scratch)
}

fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", path.display()))
}

/// Makes renames durable where the platform allows fsync on a folder; where
/// it does not, the rename is still atomic, only not yet durable.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Reads `<name>.parquet` from `dir` and checks its columns.
pub fn read_frame(dir: &Path, schema: &Schema) -> Result<DataFrame> {
    let path = dir.join(format!("{}.parquet", schema.name));
    let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let df = ParquetReader::new(file)
        .finish()
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
    conform(df, schema).with_context(|| format!("{}", path.display()))
}

/// A cell rendered once, then written to both CSV and JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    Null,
    Text(String),
    Bool(bool),
    Int(i64),
    List(Vec<String>),
    /// A JSON document (from a [`Kind::Json`] column).
    Json(String),
}

impl Rendered {
    fn csv(&self) -> String {
        match self {
            Rendered::Null => String::new(),
            Rendered::Text(s) | Rendered::Json(s) => s.clone(),
            Rendered::Bool(b) => b.to_string(),
            Rendered::Int(i) => i.to_string(),
            Rendered::List(items) => items.join(";"),
        }
    }

    fn json(&self) -> Value {
        match self {
            Rendered::Null => Value::Null,
            Rendered::Text(s) => Value::String(s.clone()),
            Rendered::Bool(b) => Value::Bool(*b),
            Rendered::Int(i) => Value::from(*i),
            Rendered::List(items) => {
                Value::Array(items.iter().cloned().map(Value::String).collect())
            }
            // A malformed document is kept as text rather than dropped.
            Rendered::Json(s) => {
                serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
            }
        }
    }
}

/// Renders every cell of `df` by its schema kind.
pub fn render_rows(df: &DataFrame, schema: &Schema) -> Result<Vec<Vec<Rendered>>> {
    let height = df.height();
    let mut out: Vec<Vec<Rendered>> = (0..height)
        .map(|_| Vec::with_capacity(schema.columns.len()))
        .collect();
    for column in schema.columns {
        let series = df
            .column(column.name)
            .with_context(|| format!("{} frame lacks {}", schema.name, column.name))?
            .as_materialized_series()
            .clone();
        match column.kind {
            Kind::Str | Kind::Json => {
                let ca = series.str()?;
                for (row, v) in out.iter_mut().zip(ca.iter()) {
                    row.push(match v {
                        None => Rendered::Null,
                        Some(s) if column.kind == Kind::Json => Rendered::Json(s.to_string()),
                        Some(s) => Rendered::Text(s.to_string()),
                    });
                }
            }
            Kind::Bool => {
                let ca = series.bool()?;
                for (row, v) in out.iter_mut().zip(ca.iter()) {
                    row.push(v.map_or(Rendered::Null, Rendered::Bool));
                }
            }
            Kind::Int => {
                let s = series.cast(&DataType::Int64)?;
                let ca = s.i64()?;
                for (row, v) in out.iter_mut().zip(ca.iter()) {
                    row.push(v.map_or(Rendered::Null, Rendered::Int));
                }
            }
            Kind::Time => {
                let s = series
                    .cast(&crate::frames::time_dtype())?
                    .cast(&DataType::Int64)?;
                let ca = s.i64()?;
                for (row, v) in out.iter_mut().zip(ca.iter()) {
                    row.push(
                        v.and_then(millis_to_rfc3339)
                            .map_or(Rendered::Null, Rendered::Text),
                    );
                }
            }
            Kind::StrList => {
                let ca = series.list()?;
                for (i, row) in out.iter_mut().enumerate() {
                    let items = match ca.get_as_series(i) {
                        None => Vec::new(),
                        Some(inner) => inner.str()?.iter().flatten().map(str::to_string).collect(),
                    };
                    row.push(Rendered::List(items));
                }
            }
        }
    }
    Ok(out)
}

fn write_csv(path: &Path, schema: &Schema, rows: &[Vec<Rendered>]) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = csv::Writer::from_writer(BufWriter::new(file));
    w.write_record(schema.names())?;
    for row in rows {
        w.write_record(row.iter().map(Rendered::csv))?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The JSON objects of a frame, keys in schema order.
pub fn json_rows(schema: &Schema, rows: &[Vec<Rendered>]) -> Vec<Value> {
    rows.iter()
        .map(|row| {
            let mut obj = Map::with_capacity(schema.columns.len());
            for (column, cell) in schema.columns.iter().zip(row) {
                obj.insert(column.name.to_string(), cell.json());
            }
            Value::Object(obj)
        })
        .collect()
}

fn write_json(path: &Path, schema: &Schema, rows: &[Vec<Rendered>]) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::new(file);
    // One object per line inside the array: diffable and still one JSON document.
    w.write_all(b"[")?;
    for (i, value) in json_rows(schema, rows).into_iter().enumerate() {
        w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut w, &value)?;
    }
    w.write_all(b"\n]\n")?;
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Reads a frame back into records, one per row: each column becomes the
/// field of the same name; JSON-kind columns arrive as their text.
pub fn frame_records<T: serde::de::DeserializeOwned>(
    df: &DataFrame,
    schema: &Schema,
) -> Result<Vec<T>> {
    let rows = render_rows(df, schema)?;
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let mut obj = Map::with_capacity(schema.columns.len());
            for (column, cell) in schema.columns.iter().zip(row) {
                let v = match cell {
                    Rendered::Json(text) => Value::String(text.clone()),
                    other => other.json(),
                };
                obj.insert(column.name.to_string(), v);
            }
            serde_json::from_value(Value::Object(obj))
                .with_context(|| format!("{} frame, row {}: unexpected values", schema.name, i + 1))
        })
        .collect()
}

/// Writes a JSON value to a file, pretty-printed, ending in a newline.
pub fn write_json_file(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, value)?;
    w.write_all(b"\n")?;
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A small table of results printed to stdout in the chosen format.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<S: ToString>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows
            .push(cells.into_iter().map(|c| c.to_string()).collect());
    }

    /// Prints to stdout, flushed, so a closed pipe surfaces here.
    pub fn print_stdout(&self, format: Format) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        self.print(format, &mut stdout)?;
        stdout.flush().context("writing to stdout")?;
        Ok(())
    }

    pub fn print(&self, format: Format, out: &mut impl Write) -> Result<()> {
        match format {
            Format::Table => self.print_text(out),
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(&self.headers)?;
                for row in &self.rows {
                    w.write_record(row)?;
                }
                w.flush()?;
                Ok(())
            }
            Format::Json => {
                let values: Vec<Value> = self
                    .rows
                    .iter()
                    .map(|row| {
                        let mut obj = Map::new();
                        for (h, cell) in self.headers.iter().zip(row) {
                            // Counts print as numbers so scripts need not parse them.
                            let v = cell
                                .parse::<i64>()
                                .map(Value::from)
                                .unwrap_or_else(|_| Value::String(cell.clone()));
                            obj.insert(h.clone(), v);
                        }
                        Value::Object(obj)
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut *out, &values)?;
                writeln!(out)?;
                Ok(())
            }
        }
    }

    fn print_text(&self, out: &mut impl Write) -> Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (cell, w))| {
                    // Text left, numbers right, like every accountant's table.
                    if i > 0 && cell.parse::<f64>().is_ok() {
                        format!("{cell:>w$}")
                    } else {
                        format!("{cell:<w$}")
                    }
                })
                .collect();
            parts.join("  ").trim_end().to_string()
        };
        writeln!(out, "{}", line(&self.headers))?;
        for row in &self.rows {
            writeln!(out, "{}", line(row))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{col, Cell, FrameBuilder, KEYS, ROTATIONS};
    use chrono::TimeZone;

    #[test]
    fn three_files_agree() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = FrameBuilder::new(ROTATIONS);
        let t = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
        b.push(vec![
            (col::ACCOUNT_ID, Cell::str("111122223333")),
            (col::REGION, Cell::str("us-east-1")),
            (col::KEY_ID, Cell::str("k1")),
            (
                col::KEY_ARN,
                Cell::str("arn:aws:kms:us-east-1:111122223333:key/k1"),
            ),
            (col::ROTATION_DATE, Cell::Time(Some(t))),
            (col::ROTATION_TYPE, Cell::str("AUTOMATIC")),
        ])
        .unwrap();
        let mut df = b.finish().unwrap();
        write_frame(dir.path(), &ROTATIONS, &mut df).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("rotations.csv")).unwrap();
        assert!(csv.contains("2025-03-01T12:00:00Z"), "{csv}");
        let json: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("rotations.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(json[0]["rotation_date"], "2025-03-01T12:00:00Z");
        let back = read_frame(dir.path(), &ROTATIONS).unwrap();
        assert_eq!(back.height(), 1);
    }

    #[test]
    fn lists_and_json_columns_render_per_format() {
        let mut cells: Vec<(&str, Cell)> = KEYS
            .columns
            .iter()
            .map(|c| {
                let cell = match c.kind {
                    Kind::Str => Cell::Str(None),
                    Kind::Json => Cell::Json(Some(r#"{"team":"pay"}"#.into())),
                    Kind::Bool => Cell::Bool(None),
                    Kind::Int => Cell::Int(None),
                    Kind::Time => Cell::Time(None),
                    Kind::StrList => Cell::StrList(vec!["alias/a".into(), "alias/b".into()]),
                };
                (c.name, cell)
            })
            .collect();
        cells[0].1 = Cell::str("1");
        let mut b = FrameBuilder::new(KEYS);
        b.push(cells).unwrap();
        let df = b.finish().unwrap();
        let rows = render_rows(&df, &KEYS).unwrap();
        let aliases = KEYS.names().iter().position(|n| *n == "aliases").unwrap();
        assert_eq!(rows[0][aliases].csv(), "alias/a;alias/b");
        let tags = KEYS.names().iter().position(|n| *n == "tags").unwrap();
        assert_eq!(rows[0][tags].json()["team"], "pay");
    }
}
