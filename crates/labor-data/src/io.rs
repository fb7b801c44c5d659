//! Reading and writing panels: Arrow record batches, Parquet and JSON Lines.
//!
//! The Arrow/Parquet layout is long: one row per worker-year, columns
//! `worker_id, dataset, gender, ethnicity, region, birth_year, weight, year, state_code,
//! state_id, education` (see [`panel_schema`]). Rows of a worker are contiguous and sorted by
//! year. The schema metadata names the taxonomy (`labor.taxonomy`); a user taxonomy travels
//! inside the file (`labor.taxonomy.csv`), so a panel file is self-describing.
//!
//! JSON Lines has one worker per line with its records nested, states written as taxonomy codes.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use labor_data::{io, SynthBuilder, Preset};
//! let panel = SynthBuilder::new(Preset::Nlsy79).with_workers(20).with_seed(1).build()?.generate().panel;
//! let dir = std::env::temp_dir().join(format!("labor-doc-io-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! io::write_parquet(&panel, dir.join("p.parquet"))?;
//! assert_eq!(io::read_parquet(dir.join("p.parquet"))?, panel);
//! io::write_jsonl(&panel, dir.join("p.jsonl"))?;
//! assert_eq!(io::read_jsonl(dir.join("p.jsonl"), panel.taxonomy().clone())?, panel);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray, UInt16Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::atomic::AtomicFile;

use crate::error::panic_message;
use crate::error::{Error, Location, Result};
use crate::panel::{Panel, Worker, YearRecord};
use crate::taxonomy::{StateId, Taxonomy};
use crate::vocab::{Education, Ethnicity, Gender, Region};

/// Schema metadata key naming the taxonomy.
pub const META_TAXONOMY: &str = "labor.taxonomy";
/// Schema metadata key holding a user taxonomy's CSV.
pub const META_TAXONOMY_CSV: &str = "labor.taxonomy.csv";
/// Schema metadata key with the layout version.
pub const META_VERSION: &str = "labor.panel.version";

const ROWS_PER_BATCH: usize = 64 * 1024;

/// The Arrow schema of the long panel layout, with metadata for `taxonomy`.
pub fn panel_schema(taxonomy: &Taxonomy) -> SchemaRef {
    let fields = vec![
        Field::new("worker_id", DataType::Utf8, false),
        Field::new("dataset", DataType::Utf8, false),
        Field::new("gender", DataType::Utf8, false),
        Field::new("ethnicity", DataType::Utf8, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("birth_year", DataType::Int32, true),
        Field::new("weight", DataType::Float64, true),
        Field::new("year", DataType::Int32, false),
        Field::new("state_code", DataType::Utf8, false),
        Field::new("state_id", DataType::UInt16, false),
        Field::new("education", DataType::Utf8, false),
    ];
    let mut meta = HashMap::new();
    meta.insert(META_TAXONOMY.to_string(), taxonomy.name().to_string());
    meta.insert(META_VERSION.to_string(), "1".to_string());
    if !taxonomy.is_builtin() {
        meta.insert(META_TAXONOMY_CSV.to_string(), taxonomy.to_csv_string());
    }
    Arc::new(Schema::new_with_metadata(fields, meta))
}

/// The panel as record batches of at most 65,536 rows.
///
/// # Errors
/// [`Error::Arrow`] (not expected for a valid panel).
pub fn to_record_batches(panel: &Panel) -> Result<Vec<RecordBatch>> {
    let schema = panel_schema(panel.taxonomy());
    let tax = panel.taxonomy();
    let rows: Vec<(&Worker, &YearRecord)> = panel
        .workers()
        .iter()
        .flat_map(|w| w.records.iter().map(move |r| (w, r)))
        .collect();
    let mut out = Vec::new();
    for chunk in rows.chunks(ROWS_PER_BATCH) {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|(w, _)| w.id.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|(w, _)| w.dataset.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|(w, _)| w.gender.key()),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|(w, _)| w.ethnicity.key()),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|(w, _)| w.region.key()),
            )),
            Arc::new(Int32Array::from_iter(
                chunk.iter().map(|(w, _)| w.birth_year),
            )),
            Arc::new(Float64Array::from_iter(chunk.iter().map(|(w, _)| w.weight))),
            Arc::new(Int32Array::from_iter_values(
                chunk.iter().map(|(_, r)| r.year),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|(_, r)| tax.code(r.state)),
            )),
            Arc::new(UInt16Array::from_iter_values(
                chunk.iter().map(|(_, r)| r.state.0),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|(_, r)| r.education.key()),
            )),
        ];
        out.push(RecordBatch::try_new(Arc::clone(&schema), cols)?);
    }
    Ok(out)
}

/// Writes the panel as Parquet (Snappy-compressed), atomically (a temporary file renamed).
///
/// # Errors
/// [`Error::Io`] or [`Error::Parquet`] naming the file.
pub fn write_parquet(panel: &Panel, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let pq = |source| Error::Parquet {
        path: path.display().to_string(),
        source,
    };
    let file = AtomicFile::create(path)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer =
        ArrowWriter::try_new(file, panel_schema(panel.taxonomy()), Some(props)).map_err(pq)?;
    for batch in to_record_batches(panel)? {
        writer.write(&batch).map_err(pq)?;
    }
    writer.into_inner().map_err(pq)?.commit()
}

/// Writes the panel as JSON Lines when `path` ends in `.jsonl`, else as Parquet, creating the
/// parent directory if needed; atomically, like [`write_parquet`].
///
/// # Errors
/// As [`write_parquet`] and [`write_jsonl`]; [`Error::Io`] for a directory that cannot be made.
pub fn write_panel(panel: &Panel, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    if path.extension().is_some_and(|e| e == "jsonl") {
        write_jsonl(panel, path)
    } else {
        write_parquet(panel, path)
    }
}

/// Reads a panel written by [`write_parquet`], with the taxonomy its metadata names (the
/// built-in one, or the user taxonomy embedded in the file).
///
/// # Errors
/// [`Error::Io`], [`Error::Parquet`], [`Error::MissingColumn`], [`Error::ColumnType`], or a
/// row-level error naming the file, row and column (unknown state code, repeated worker-year,
/// inconsistent worker attributes).
pub fn read_parquet(path: impl AsRef<Path>) -> Result<Panel> {
    read_parquet_impl(path.as_ref(), None)
}

/// Reads a panel, resolving state codes with `taxonomy` instead of the file's own.
///
/// # Errors
/// As [`read_parquet`].
pub fn read_parquet_with_taxonomy(
    path: impl AsRef<Path>,
    taxonomy: Arc<Taxonomy>,
) -> Result<Panel> {
    read_parquet_impl(path.as_ref(), Some(taxonomy))
}

/// Opens a Parquet file for reading record batches (used by readers of user files too).
/// The record batches of a Parquet file, read with the `parquet` crate's reader, which panics
/// on some corrupt files (a missing dictionary page, a zero divisor, an out-of-bounds offset,
/// all found by fuzzing): such a panic becomes an error and ends the iteration.
pub(crate) struct Batches {
    inner: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    failed: bool,
}

impl Iterator for Batches {
    type Item = std::result::Result<RecordBatch, arrow_schema::ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let inner = &mut self.inner;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.next())) {
            Ok(next) => next,
            Err(p) => {
                self.failed = true;
                Some(Err(arrow_schema::ArrowError::ParquetError(
                    reader_panicked(p.as_ref()),
                )))
            }
        }
    }
}

/// The error message for a panic of the `parquet` crate's reader.
fn reader_panicked(payload: &(dyn std::any::Any + Send)) -> String {
    format!(
        "corrupt file (the parquet reader failed: {})",
        panic_message(payload)
    )
}

pub(crate) fn open_parquet(path: &Path) -> Result<(SchemaRef, Batches)> {
    let pq = |source| Error::Parquet {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let opened = std::panic::catch_unwind(|| {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
        let schema = Arc::clone(builder.schema());
        let reader = builder.with_batch_size(ROWS_PER_BATCH).build()?;
        Ok((schema, reader))
    })
    .map_err(|p| {
        pq(parquet::errors::ParquetError::General(reader_panicked(
            p.as_ref(),
        )))
    })?;
    let (schema, inner) = opened.map_err(pq)?;
    Ok((
        schema,
        Batches {
            inner,
            failed: false,
        },
    ))
}

pub(crate) fn taxonomy_from_meta(path: &Path, schema: &Schema) -> Result<Taxonomy> {
    let meta = schema.metadata();
    match (meta.get(META_TAXONOMY), meta.get(META_TAXONOMY_CSV)) {
        (_, Some(csv)) => Taxonomy::from_csv_reader(
            meta.get(META_TAXONOMY).map_or("custom", String::as_str),
            csv.as_bytes(),
        ),
        (Some(name), None) if name == "occ1990dd" => Ok(Taxonomy::occ1990dd()),
        (Some(name), None) => Err(Error::Mapping {
            file: path.display().to_string(),
            detail: format!("taxonomy `{name}` is not built in and the file does not embed it"),
        }),
        (None, None) => Ok(Taxonomy::occ1990dd()),
    }
}

/// Reads cell `row` of any primitive or string column as text (`None` for null).
pub(crate) fn cell_text(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row).to_string(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row).to_string(),
        DataType::Utf8View => array.as_string_view().value(row).to_string(),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).to_string(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).to_string(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row).to_string(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).to_string(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).to_string(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).to_string(),
        DataType::Float32 => fmt_float(array.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Float64 => fmt_float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        _ => return None,
    })
}

/// `true` if [`cell_text`] can read columns of this type.
pub(crate) fn readable_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Boolean
    )
}

fn fmt_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

/// Builds workers row by row, checking repeated years and conflicting static attributes.
pub(crate) struct WorkerAssembler {
    workers: Vec<Worker>,
    index: HashMap<String, usize>,
}

impl WorkerAssembler {
    pub(crate) fn new() -> Self {
        Self {
            workers: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Adds a record for the worker described by `proto` (its `records` are ignored).
    pub(crate) fn push(&mut self, proto: &Worker, record: YearRecord, at: &Location) -> Result<()> {
        let i = match self.index.get(&proto.id) {
            Some(&i) => {
                let w = &self.workers[i];
                let conflict = |attribute: &'static str, expected: String, found: String| {
                    Err(Error::InconsistentWorker {
                        location: at.clone(),
                        worker_id: proto.id.clone(),
                        attribute,
                        expected,
                        found,
                    })
                };
                if w.dataset != proto.dataset {
                    return conflict("dataset", w.dataset.clone(), proto.dataset.clone());
                }
                if w.gender != proto.gender {
                    return conflict("gender", w.gender.to_string(), proto.gender.to_string());
                }
                if w.ethnicity != proto.ethnicity {
                    return conflict(
                        "ethnicity",
                        w.ethnicity.to_string(),
                        proto.ethnicity.to_string(),
                    );
                }
                if w.birth_year != proto.birth_year {
                    return conflict(
                        "birth_year",
                        format!("{:?}", w.birth_year),
                        format!("{:?}", proto.birth_year),
                    );
                }
                if w.records.iter().any(|r| r.year == record.year) {
                    return Err(Error::DuplicateWorkerYear {
                        location: at.clone(),
                        worker_id: proto.id.clone(),
                        year: record.year,
                    });
                }
                i
            }
            None => {
                let mut w = proto.clone();
                w.records.clear();
                self.workers.push(w);
                self.index.insert(proto.id.clone(), self.workers.len() - 1);
                self.workers.len() - 1
            }
        };
        self.workers[i].records.push(record);
        Ok(())
    }

    /// The workers with records sorted by year, dropping workers without records.
    pub(crate) fn finish(mut self) -> Vec<Worker> {
        self.workers.retain(|w| !w.records.is_empty());
        for w in &mut self.workers {
            w.records.sort_by_key(|r| r.year);
        }
        self.workers
    }
}

fn read_parquet_impl(path: &Path, taxonomy: Option<Arc<Taxonomy>>) -> Result<Panel> {
    let file = path.display().to_string();
    let (schema, reader) = open_parquet(path)?;
    let taxonomy = match taxonomy {
        Some(t) => t,
        None => Arc::new(taxonomy_from_meta(path, &schema)?),
    };
    let required = [
        "worker_id",
        "dataset",
        "gender",
        "ethnicity",
        "region",
        "birth_year",
        "weight",
        "year",
        "state_code",
        "education",
    ];
    let mut index = [0usize; 10];
    for (slot, c) in index.iter_mut().zip(required) {
        let Ok(i) = schema.index_of(c) else {
            return Err(Error::MissingColumn {
                file: file.clone(),
                column: c.to_string(),
            });
        };
        *slot = i;
        let field = schema.field(i);
        if !readable_type(field.data_type()) {
            return Err(Error::ColumnType {
                file: file.clone(),
                column: c.to_string(),
                expected: "string or number",
                found: field.data_type().to_string(),
            });
        }
    }
    let mut asm = WorkerAssembler::new();
    let mut row0 = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| Error::Parquet {
            path: file.clone(),
            source: e.into(),
        })?;
        let cols: Vec<&dyn Array> = index.iter().map(|i| batch.column(*i).as_ref()).collect();
        for row in 0..batch.num_rows() {
            let line = row0 + row as u64 + 1;
            let at = |c: &str| Location::new(&file, line, c);
            let text = |i: usize| cell_text(cols[i], row);
            let need = |i: usize| {
                text(i).ok_or_else(|| Error::MissingValue {
                    location: at(required[i]),
                })
            };
            let mut w = Worker::new(need(0)?, need(1)?);
            w.gender = map_value(
                &need(2)?,
                &None,
                Gender::from_key,
                Gender::VOCABULARY,
                || at(required[2]),
            )?;
            w.ethnicity = map_value(
                &need(3)?,
                &None,
                Ethnicity::from_key,
                Ethnicity::VOCABULARY,
                || at(required[3]),
            )?;
            w.region = map_value(
                &need(4)?,
                &None,
                Region::from_key,
                Region::VOCABULARY,
                || at(required[4]),
            )?;
            w.birth_year = match text(5) {
                None => None,
                Some(s) => Some(parse_int(&s, at(required[5]))? as i32),
            };
            w.weight = match text(6) {
                None => None,
                Some(s) => Some(s.parse::<f64>().map_err(|_| Error::Malformed {
                    location: at(required[6]),
                    detail: format!("`{s}` is not a number"),
                })?),
            };
            let year = parse_int(&need(7)?, at(required[7]))? as i32;
            let code = need(8)?;
            let state = taxonomy
                .id_of_code(&code)
                .ok_or_else(|| Error::UnknownOccupation {
                    location: at(required[8]),
                    code: code.clone(),
                    scheme: taxonomy.name().to_string(),
                })?;
            let ed = need(9)?;
            let education = Education::from_key(&ed).ok_or_else(|| Error::UnmappedValue {
                location: at(required[9]),
                value: ed.clone(),
                vocabulary: Education::VOCABULARY,
            })?;
            asm.push(&w, YearRecord::new(year, state, education), &at(""))?;
        }
        row0 += batch.num_rows() as u64;
    }
    Panel::new(taxonomy, asm.finish())
}

pub(crate) fn parse_int(s: &str, location: Location) -> Result<i64> {
    let t = s.trim();
    t.parse::<i64>()
        .or_else(|_| match t.parse::<f64>() {
            Ok(x) if x.fract() == 0.0 && x.is_finite() => Ok(x as i64),
            _ => Err(()),
        })
        .map_err(|()| Error::Malformed {
            location,
            detail: format!("`{s}` is not an integer"),
        })
}

#[derive(Serialize, Deserialize)]
struct JsonRecord {
    year: i32,
    state: String,
    #[serde(default, skip_deserializing)]
    title: String,
    education: Education,
}

#[derive(Serialize, Deserialize)]
struct JsonWorker {
    id: String,
    dataset: String,
    gender: Gender,
    ethnicity: Ethnicity,
    region: Region,
    birth_year: Option<i32>,
    weight: Option<f64>,
    records: Vec<JsonRecord>,
}

/// Writes one JSON object per worker (`{"id", "dataset", ..., "records": [{"year", "state",
/// "title", "education"}]}`), states as taxonomy codes with their titles for readability;
/// atomically, like [`write_parquet`].
///
/// # Errors
/// [`Error::Io`].
pub fn write_jsonl(panel: &Panel, path: impl AsRef<Path>) -> Result<()> {
    let tax = panel.taxonomy();
    let workers = panel.workers().iter().map(|w| JsonWorker {
        id: w.id.clone(),
        dataset: w.dataset.clone(),
        gender: w.gender,
        ethnicity: w.ethnicity,
        region: w.region,
        birth_year: w.birth_year,
        weight: w.weight,
        records: w
            .records
            .iter()
            .map(|r| JsonRecord {
                year: r.year,
                state: tax.code(r.state).to_string(),
                title: tax.title(r.state).to_string(),
                education: r.education,
            })
            .collect(),
    });
    write_json_lines(path, workers).map(|_| ())
}

/// Writes one JSON object per item, one per line, atomically (a temporary file renamed into
/// place once every line is written); the counterpart of [`read_json_lines`]. Returns the number
/// of lines.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_json_lines<T: serde::Serialize>(
    path: impl AsRef<Path>,
    items: impl IntoIterator<Item = T>,
) -> Result<usize> {
    let path = path.as_ref();
    let mut out = AtomicFile::create(path)?;
    let mut n = 0;
    for item in items {
        serde_json::to_writer(&mut out, &item).map_err(|e| Error::io(path, e.into()))?;
        out.write_all(b"\n").map_err(|e| Error::io(path, e))?;
        n += 1;
    }
    out.commit()?;
    Ok(n)
}

/// Reads a panel written by [`write_jsonl`], resolving state codes with `taxonomy`.
///
/// # Errors
/// [`Error::Io`], [`Error::Json`] naming the line, [`Error::UnknownOccupation`] for a state
/// code outside the taxonomy, or an invalid worker.
pub fn read_jsonl(path: impl AsRef<Path>, taxonomy: Arc<Taxonomy>) -> Result<Panel> {
    let path = path.as_ref();
    let file_name = path.display().to_string();
    let mut workers = Vec::new();
    for (line, jw) in read_json_lines::<JsonWorker>(path)? {
        let mut records = Vec::with_capacity(jw.records.len());
        for r in jw.records {
            let state: StateId =
                taxonomy
                    .id_of_code(&r.state)
                    .ok_or_else(|| Error::UnknownOccupation {
                        location: Location::new(&file_name, line, "state"),
                        code: r.state.clone(),
                        scheme: taxonomy.name().to_string(),
                    })?;
            records.push(YearRecord::new(r.year, state, r.education));
        }
        workers.push(Worker {
            id: jw.id,
            dataset: jw.dataset,
            gender: jw.gender,
            ethnicity: jw.ethnicity,
            region: jw.region,
            birth_year: jw.birth_year,
            weight: jw.weight,
            records,
        });
    }
    Panel::new(taxonomy, workers)
}

/// Reads a JSON Lines file: one `T` per non-blank line, with its 1-based line number (rendered
/// texts, score inputs, panels).
///
/// # Errors
/// [`Error::Io`]; [`Error::Json`] naming the file and line of a line that is not a `T`.
pub fn read_json_lines<T: serde::de::DeserializeOwned>(
    path: impl AsRef<Path>,
) -> Result<Vec<(u64, T)>> {
    let path = path.as_ref();
    let file_name = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = i as u64 + 1;
        let value = serde_json::from_str(&line).map_err(|source| Error::Json {
            location: Location::new(&file_name, at, ""),
            source,
        })?;
        out.push((at, value));
    }
    Ok(out)
}

/// Maps a raw value through an optional table onto a vocabulary.
pub(crate) fn map_value<T>(
    raw: &str,
    table: &Option<BTreeMap<String, String>>,
    parse: impl Fn(&str) -> Option<T>,
    vocabulary: &'static str,
    location: impl FnOnce() -> Location,
) -> Result<T> {
    let key = raw.trim();
    let canon = match table {
        Some(t) => t.get(key).map(String::as_str),
        None => Some(key),
    };
    canon.and_then(parse).ok_or_else(|| Error::UnmappedValue {
        location: location(),
        value: raw.to_string(),
        vocabulary,
    })
}
