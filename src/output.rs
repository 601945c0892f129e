//! Writers: a frame to Parquet + CSV + JSON files, and small result tables to
//! stdout as a text table, JSON or CSV.
//!
//! CSV and JSON are rendered from the frame's own cells, following the
//! [`Kind`] declared in [`crate::frames`], so the three files agree row for row.
//!
//! Three guarantees live here so that every command gets them by writing
//! through this module:
//! - every file is written atomically ([`write_atomic`]): a temporary name in
//!   the same folder, fsync, rename, fsync of the folder, so a kill mid-write
//!   leaves the old file or the new one, and a symlink at the target is
//!   replaced, never written through;
//! - every CSV cell that a spreadsheet would run as a formula is neutralized
//!   ([`csv_safe`]); Parquet and JSON keep the raw value;
//! - every value printed for a person is stripped of terminal control
//!   sequences ([`display_safe`]).

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use polars::prelude::{
    CompatLevel, DataFrame, DataType, KeyValueMetadata, ParquetReader, ParquetWriter, SchemaExt,
    SerReader,
};
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

    write_parquet(&parquet, df)?;
    let rows = render_rows(df, schema)?;
    write_csv(&csv, schema, &rows)?;
    write_json(&json, schema, &rows)?;
    Ok(vec![parquet, csv, json])
}

/// Writes `df` as Parquet at the oldest Arrow compatibility level.
///
/// polars' `ParquetWriter` records the newest Arrow types (`string_view`,
/// `binary_view`) in the file's `ARROW:schema` metadata, which pyarrow before
/// 15, Spark and Athena's readers reject ("Unrecognized type: 24"). The
/// Parquet pages are the same either way (BYTE_ARRAY, UTF8), so the schema
/// written is the oldest level's: `large_string` and `large_list`.
pub fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<()> {
    let arrow = df.schema().to_arrow(CompatLevel::oldest());
    let key = polars_parquet::write::schema_to_metadata_key(&arrow);
    write_atomic(path, |w| {
        ParquetWriter::new(w)
            .with_key_value_metadata(Some(KeyValueMetadata::Static(vec![key])))
            .finish(df)?;
        Ok(())
    })
}

/// Opens a file for reading, refusing a symlink: evidence is read from the
/// folder it was handed in, never from wherever a link points.
pub fn open_no_follow(path: &Path) -> Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW);
    }
    match opts.open(path) {
        Ok(f) => Ok(f),
        Err(e) if is_symlink(path) => Err(crate::error::hinted(
            format!("{}: is a symbolic link; kmsrot does not follow links in evidence ({e})", path.display()),
            "replace the link with the file it points to, or run `kmsrot verify-bundle` to see every link",
        )),
        Err(e) => Err(anyhow!("{}: cannot open: {e}", path.display())),
    }
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Reads a whole file as text without following a symlink, as an I/O
/// result (a link gives "too many levels of symbolic links").
pub fn read_string_no_follow(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW);
    }
    let mut text = String::new();
    opts.open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// Reads a whole file as text without following a symlink.
pub fn read_text_no_follow(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut text = String::new();
    open_no_follow(path)?
        .read_to_string(&mut text)
        .map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    Ok(text)
}

/// Reads `<name>.parquet` from `dir` and checks its columns.
pub fn read_frame(dir: &Path, schema: &Schema) -> Result<DataFrame> {
    let path = dir.join(format!("{}.parquet", schema.name));
    let file = open_no_follow(&path)?;
    let df = ParquetReader::new(file)
        .finish()
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
    conform(df, schema).map_err(|e| {
        crate::error::hinted(
            format!("{}: {e:#}", path.display()),
            format!(
                "the file was written by another version of kmsrot; {}",
                if schema.name == crate::frames::FINDINGS.name {
                    "run `kmsrot assess` on the bundle again"
                } else {
                    "collect the bundle again with this version"
                }
            ),
        )
    })
}

/// A cell rendered once, then written to both CSV and JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    Null,
    Text(String),
    Bool(bool),
    Int(i64),
    /// The items, and how CSV joins them.
    List(Vec<String>, &'static str),
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
            Rendered::List(items, sep) => items.join(sep),
        }
    }

    fn json(&self) -> Value {
        match self {
            Rendered::Null => Value::Null,
            Rendered::Text(s) => Value::String(s.clone()),
            Rendered::Bool(b) => Value::Bool(*b),
            Rendered::Int(i) => Value::from(*i),
            Rendered::List(items, _) => {
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
                    row.push(Rendered::List(
                        items,
                        crate::frames::csv_list_separator(column.name),
                    ));
                }
            }
        }
    }
    Ok(out)
}

fn write_csv(path: &Path, schema: &Schema, rows: &[Vec<Rendered>]) -> Result<()> {
    write_atomic(path, |out| {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(schema.names())?;
        for row in rows {
            w.write_record(row.iter().map(|c| csv_safe(&c.csv()).into_owned()))?;
        }
        w.flush()?;
        Ok(())
    })
}

/// Writes CSV rows (a header first) to `path` atomically, every cell
/// neutralized with [`csv_safe`]: for the CSV files that are not frames.
pub fn write_csv_rows<R, C>(path: &Path, rows: impl IntoIterator<Item = R>) -> Result<()>
where
    R: IntoIterator<Item = C>,
    C: AsRef<str>,
{
    write_atomic(path, |out| {
        let mut w = csv::Writer::from_writer(out);
        for row in rows {
            w.write_record(row.into_iter().map(|c| csv_safe(c.as_ref()).into_owned()))?;
        }
        w.flush()?;
        Ok(())
    })
}

/// A cell a spreadsheet would evaluate as a formula (OWASP "CSV Injection":
/// a first character of `=`, `+`, `-`, `@`, tab or carriage return; the
/// full-width `＝＋－＠` that some locales treat alike; and a line feed, which
/// some importers strip before looking) gets a leading `'`, so Excel,
/// LibreOffice and Google Sheets show it as text. A key description
/// `=HYPERLINK(...)` or a CloudTrail userAgent is attacker-controlled.
pub fn csv_safe(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\n' | '＝' | '＋' | '－' | '＠') => {
            Cow::Owned(format!("'{cell}"))
        }
        _ => Cow::Borrowed(cell),
    }
}

/// A string from AWS, a log, a bundle, a plan or an approval, made safe to
/// print on a terminal: C0 and C1 control characters (escape sequences,
/// carriage returns, newlines, BEL) and the invisible Unicode controls that
/// reorder or hide text (bidi overrides and isolates, zero-width characters,
/// line and paragraph separators) are shown escaped as `\u{..}`, so a
/// hostile alias, principal or error message cannot retitle the terminal,
/// clear it, or redraw what a person reads.
pub fn display_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// [`display_safe`] for a multi-line message: each line is sanitized and the
/// line breaks kept.
pub fn display_safe_lines(s: &str) -> String {
    s.split('\n')
        .map(display_safe)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Refuses an output path that overlaps an input: the same folder, a path
/// inside it, or a folder that holds it. Writing a report into the bundle it
/// reads would truncate the evidence (`report B --out B` once emptied
/// `B/manifest.json`), and emptying a parent with `--force` would delete it.
pub fn refuse_overlap(out: &Path, inputs: &[&Path]) -> Result<()> {
    let o = resolved(out);
    for input in inputs {
        let i = resolved(input);
        let relation = if o == i {
            "is"
        } else if o.starts_with(&i) {
            "is inside"
        } else if i.starts_with(&o) {
            "holds"
        } else {
            continue;
        };
        return Err(crate::error::hinted(
            format!(
                "--out {} {relation} {}, which this command reads; refusing to write into the evidence",
                display_safe(&out.display().to_string()),
                display_safe(&input.display().to_string())
            ),
            "give an --out folder outside the bundle",
        ));
    }
    Ok(())
}

/// `path` made absolute with its existing part's links resolved, so that
/// `B`, `./B/`, `B/../B` and a link to `B` compare equal even when the tail
/// does not exist yet.
fn resolved(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let mut existing = abs.clone();
    let mut tail: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for part in tail.iter().rev() {
                match part.to_str() {
                    Some("..") => {
                        out.pop();
                    }
                    Some(".") => {}
                    _ => out.push(part),
                }
            }
            return out;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                tail.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return abs,
        }
    }
}

/// Makes `out` ready to receive a command's files: it must not overlap the
/// command's `inputs`; it is created when absent; an existing folder must be
/// empty, unless `force`, which empties it first (entries are removed, links
/// are removed and never followed). `--force` never empties `/`, the home
/// folder, or the current folder or one of its parents.
pub fn prepare_out_dir(out: &Path, force: bool, inputs: &[&Path]) -> Result<()> {
    refuse_overlap(out, inputs)?;
    let shown = display_safe(&out.display().to_string());
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("{shown}: cannot read: {e}"),
        Ok(_) if !out.is_dir() => bail!("{shown}: --out must be a folder, and this is a file"),
        Ok(_) => {
            let mut entries = std::fs::read_dir(out)
                .with_context(|| format!("{shown}: cannot read"))?
                .peekable();
            if entries.peek().is_some() {
                if !force {
                    return Err(crate::error::hinted(
                        format!("{shown}: the --out folder is not empty"),
                        "give a new or empty folder, or pass --force to empty it first; mixing two runs' files would leave stale evidence beside new",
                    ));
                }
                let real = resolved(out);
                let home = std::env::var_os("HOME").map(|h| resolved(Path::new(&h)));
                let cwd = std::env::current_dir().map(|d| resolved(&d)).ok();
                if real.parent().is_none()
                    || home.as_ref() == Some(&real)
                    || cwd.as_ref().is_some_and(|c| c.starts_with(&real))
                {
                    bail!("{shown}: --force will not empty the root, home or current folder (or a parent of it); give a dedicated --out folder");
                }
                for entry in entries {
                    let entry = entry.with_context(|| format!("{shown}: cannot read"))?;
                    let path = entry.path();
                    let removed = if entry.file_type()?.is_dir() {
                        std::fs::remove_dir_all(&path)
                    } else {
                        std::fs::remove_file(&path)
                    };
                    removed.with_context(|| {
                        format!(
                            "--force: cannot remove {}",
                            display_safe(&path.display().to_string())
                        )
                    })?;
                }
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {shown}"))?;
    Ok(())
}

/// Removes `dir` if it is an empty folder; anything else is left alone.
/// `remove_dir` refuses a folder with entries, so a file written meanwhile
/// is never lost.
pub fn remove_if_empty(dir: &Path) {
    let _ = std::fs::remove_dir(dir);
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes a file atomically: `fill` writes into a new temporary file beside
/// `path` (created exclusively, so a planted link at that name is not
/// followed), which is fsynced and renamed over `path`; then the folder is
/// fsynced so the rename survives a crash. A reader, or a kill at any point,
/// sees the old file or the new one, never half of one. Renaming replaces a
/// symlink at `path` instead of writing through it.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> Result<()> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let mut w = BufWriter::new(file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow!("{}: cannot write: {e:#}", path.display())
    })
}

/// Writes bytes to `path` atomically ([`write_atomic`]).
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| Ok(w.write_all(bytes)?))
}

/// Makes a rename inside `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Standard output that a closed pipe cannot turn into an error: after the
/// reader goes away (`kmsrot verify-bundle B | head -1`), what is left to
/// print is dropped, and the command still finishes, prints its summary on
/// stderr and exits with its own code. A failed verification must not read
/// as success under `set -o pipefail`, and a panic is never acceptable.
pub struct Stdout {
    inner: std::io::StdoutLock<'static>,
    closed: bool,
}

/// The process's standard output, wrapped in [`Stdout`].
pub fn stdout() -> Stdout {
    Stdout {
        inner: std::io::stdout().lock(),
        closed: false,
    }
}

impl Stdout {
    /// True once the reader has closed the pipe.
    pub fn closed(&self) -> bool {
        self.closed
    }

    fn swallow(&mut self, r: std::io::Result<()>) -> std::io::Result<()> {
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush();
        self.swallow(r)
    }
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
    write_atomic(path, |w| {
        // One object per line inside the array: diffable and still one JSON document.
        w.write_all(b"[")?;
        for (i, value) in json_rows(schema, rows).into_iter().enumerate() {
            w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            serde_json::to_writer(&mut *w, &value)?;
        }
        w.write_all(b"\n]\n")?;
        Ok(())
    })
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

/// Writes a JSON value to a file, pretty-printed, ending in a newline,
/// atomically ([`write_atomic`]).
pub fn write_json_file(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value)?;
        w.write_all(b"\n")?;
        Ok(())
    })
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
    /// Prints to stdout; a reader that closed the pipe ends the output
    /// quietly, never the command ([`Stdout`]).
    pub fn print_stdout(&self, format: Format) -> Result<()> {
        let mut out = stdout();
        self.print(format, &mut out)?;
        out.flush().context("writing to stdout")?;
        Ok(())
    }

    pub fn print(&self, format: Format, out: &mut impl Write) -> Result<()> {
        match format {
            Format::Table => self.print_text(out),
            Format::Csv => {
                // Printed rows go to terminals and spreadsheets alike.
                let cell = |c: &String| csv_safe(&display_safe(c)).into_owned();
                let mut w = csv::Writer::from_writer(out);
                w.write_record(self.headers.iter().map(cell))?;
                for row in &self.rows {
                    w.write_record(row.iter().map(cell))?;
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
                            // Counts print as numbers so scripts need not parse them;
                            // an identifier with a leading zero (an account id
                            // such as 075474548211) stays text, or the zero is lost.
                            let leading_zero = cell.len() > 1 && cell.starts_with('0');
                            let v = cell
                                .parse::<i64>()
                                .ok()
                                .filter(|_| !leading_zero)
                                .map_or_else(|| Value::String(cell.clone()), Value::from);
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
        let headers: Vec<String> = self.headers.iter().map(|h| display_safe(h)).collect();
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| display_safe(c)).collect())
            .collect();
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
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
        writeln!(out, "{}", line(&headers))?;
        for row in &rows {
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
    fn formula_cells_are_neutralized_in_csv_only() {
        for bad in [
            "=HYPERLINK(\"http://evil\",\"x\")",
            "+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "＝1",
        ] {
            assert!(csv_safe(bad).starts_with('\''), "{bad:?}");
        }
        assert_eq!(csv_safe("alias/ok"), "alias/ok");
        assert_eq!(csv_safe(""), "");

        let dir = tempfile::tempdir().unwrap();
        let mut b = FrameBuilder::new(ROTATIONS);
        let cells = [
            Cell::str("=1+1"),
            Cell::str("@region"),
            Cell::str("-k"),
            Cell::str("+arn"),
            Cell::Time(None),
            Cell::str("\tAUTOMATIC"),
        ];
        b.push(ROTATIONS.names().into_iter().zip(cells).collect())
            .unwrap();
        let mut df = b.finish().unwrap();
        write_frame(dir.path(), &ROTATIONS, &mut df).unwrap();
        let text = std::fs::read_to_string(dir.path().join("rotations.csv")).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        for row in r.records() {
            for cell in row.unwrap().iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{cell:?} in {text}"
                );
            }
        }
        // JSON and Parquet keep the value as AWS gave it.
        let json: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("rotations.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(json[0]["account_id"], "=1+1");
        let back = read_frame(dir.path(), &ROTATIONS).unwrap();
        assert_eq!(
            back.column("account_id").unwrap().str().unwrap().get(0),
            Some("=1+1")
        );
    }

    #[test]
    fn json_tables_keep_the_leading_zero_of_an_account_id() {
        let mut t = Table::new(["account", "keys"]);
        t.row(["075474548211", "0"]);
        t.row(["111122223333", "12"]);
        let mut out = Vec::new();
        t.print(Format::Json, &mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["account"], "075474548211");
        assert_eq!(v[0]["keys"], 0);
        assert_eq!(v[1]["keys"], 12);
    }

    #[test]
    fn printed_tables_escape_terminal_controls_and_formulas() {
        let mut t = Table::new(["key", "error"]);
        t.row(["alias/\u{1b}]0;pwned\u{7}", "\u{1b}[2J=cmd|' /C calc'!A0"]);
        t.row(["\u{202e}gnp.exe", "ok"]);
        let mut text = Vec::new();
        t.print(Format::Table, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{202e}'),
            "{text}"
        );
        assert!(text.contains("\\u{1b}]0;pwned"), "{text}");
        let mut csv_out = Vec::new();
        t.print(Format::Csv, &mut csv_out).unwrap();
        let csv_out = String::from_utf8(csv_out).unwrap();
        assert!(!csv_out.contains('\u{1b}'), "{csv_out}");
    }

    #[test]
    fn parquet_declares_no_view_types() {
        // pyarrow < 15 rejects string_view/binary_view in ARROW:schema.
        let dir = tempfile::tempdir().unwrap();
        let cells: Vec<(&str, Cell)> = crate::frames::FINDINGS
            .columns
            .iter()
            .map(|c| {
                let cell = match c.kind {
                    Kind::Str | Kind::Json => Cell::str("x"),
                    Kind::Bool => Cell::Bool(Some(true)),
                    Kind::Int => Cell::Int(Some(1)),
                    Kind::Time => Cell::Time(Some(Utc::now())),
                    Kind::StrList => Cell::StrList(vec!["a".into()]),
                };
                (c.name, cell)
            })
            .collect();
        let mut b = FrameBuilder::new(crate::frames::FINDINGS);
        b.push(cells).unwrap();
        let mut df = b.finish().unwrap();
        let path = dir.path().join("f.parquet");
        write_parquet(&path, &mut df).unwrap();
        let meta = polars_parquet::read::_read_metadata(&mut File::open(&path).unwrap()).unwrap();
        let written: Vec<_> = meta
            .key_value_metadata
            .unwrap_or_default()
            .into_iter()
            .filter(|kv| kv.key == "ARROW:schema")
            .collect();
        assert_eq!(written.len(), 1);
        let level =
            |c| polars_parquet::write::schema_to_metadata_key(&df.schema().to_arrow(c)).value;
        // polars' own writer records the newest level (string_view, list of
        // string_view); ours records the oldest (large_string, large_list).
        assert_ne!(level(CompatLevel::newest()), level(CompatLevel::oldest()));
        assert_eq!(written[0].value, level(CompatLevel::oldest()));
        assert_eq!(read_frame_at(&path).height(), 1);
    }

    fn read_frame_at(path: &Path) -> DataFrame {
        ParquetReader::new(File::open(path).unwrap())
            .finish()
            .unwrap()
    }

    #[cfg(unix)]
    #[test]
    fn atomic_writes_replace_a_symlink_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "keep").unwrap();
        let inside = dir.path().join("bundle");
        std::fs::create_dir(&inside).unwrap();
        let target = inside.join("findings.csv");
        std::os::unix::fs::symlink(&outside, &target).unwrap();
        write_bytes_atomic(&target, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert!(!std::fs::symlink_metadata(&target)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&inside).unwrap().count(), 1);
        // Reading refuses links.
        std::fs::remove_file(&target).unwrap();
        std::os::unix::fs::symlink(&outside, &target).unwrap();
        assert!(read_text_no_follow(&target).is_err());
    }

    #[test]
    fn out_folders_never_overlap_their_input_and_are_not_mixed() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("B");
        std::fs::create_dir(&bundle).unwrap();
        std::fs::write(bundle.join("manifest.json"), "{}").unwrap();
        for out in [
            bundle.clone(),
            bundle.join("report"),
            dir.path().to_path_buf(),
            bundle.join("../B/."),
        ] {
            let err = prepare_out_dir(&out, true, &[&bundle])
                .unwrap_err()
                .to_string();
            assert!(err.contains("refusing to write into the evidence"), "{err}");
        }
        assert_eq!(
            std::fs::read_to_string(bundle.join("manifest.json")).unwrap(),
            "{}"
        );

        let out = dir.path().join("R");
        prepare_out_dir(&out, false, &[&bundle]).unwrap();
        std::fs::write(out.join("old.csv"), "x").unwrap();
        std::fs::create_dir(out.join("asff")).unwrap();
        let err = prepare_out_dir(&out, false, &[&bundle])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not empty"), "{err}");
        prepare_out_dir(&out, true, &[&bundle]).unwrap();
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    }

    #[test]
    fn only_an_empty_folder_is_removed_after_a_failed_run() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        remove_if_empty(&empty);
        assert!(!empty.exists());
        let used = dir.path().join("used");
        std::fs::create_dir(&used).unwrap();
        std::fs::write(used.join("keys.csv"), "x").unwrap();
        remove_if_empty(&used);
        assert!(used.join("keys.csv").exists());
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        remove_if_empty(&file);
        assert!(file.exists());
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
