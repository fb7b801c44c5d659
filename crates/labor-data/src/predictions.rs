//! Model predictions for a panel: one row per worker-year with the log-probability the model gave
//! the observed state and, optionally, its whole distribution over the taxonomy.
//!
//! This is the hand-off between the models (`labor predict`, `labor score`, the synthetic truth)
//! and the evaluation (`labor eval`). On disk it is Parquet with the columns `worker_id, year,
//! position, state_code, previous_code, log_prob`, plus `weight` when known and `probs` (a
//! fixed-size list of `f32` indexed by state id) when the full distribution was computed, and
//! the model's name and the taxonomy in the schema metadata.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, UInt32Type};
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int32Array, RecordBatch,
    StringArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::atomic::AtomicFile;
use crate::error::{Error, Location, Result};
use crate::io::{META_TAXONOMY, META_TAXONOMY_CSV, open_parquet, taxonomy_from_meta};
use crate::taxonomy::{StateId, Taxonomy};

/// Schema metadata key holding the model's name.
pub const META_MODEL: &str = "labor.predictions.model";

/// One worker-year's prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The worker.
    pub worker_id: String,
    /// The year predicted.
    pub year: i32,
    /// Index of this record in the worker's career (0 = first observed year).
    pub position: u32,
    /// The observed state.
    pub state: StateId,
    /// The state of the worker's previous record (`None` for the first record, or when unknown):
    /// what makes a worker-year a move or a stay without the panel at hand.
    pub previous: Option<StateId>,
    /// Natural log of the probability the model gave the observed state.
    pub log_prob: f64,
    /// Survey weight of the worker, when known.
    pub weight: Option<f64>,
    /// The model's probability of every outcome, indexed by state id (when computed).
    pub probs: Option<Vec<f32>>,
}

/// A model's predictions for a panel, in panel order.
#[derive(Debug, Clone)]
pub struct Predictions {
    model: String,
    taxonomy: Arc<Taxonomy>,
    rows: Vec<Prediction>,
}

impl Predictions {
    /// Empty predictions of `model` over `taxonomy`.
    pub fn new(model: impl Into<String>, taxonomy: Arc<Taxonomy>) -> Self {
        Self {
            model: model.into(),
            taxonomy,
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    ///
    /// # Errors
    /// [`Error::StateOutOfRange`] for a state outside the taxonomy, [`Error::InvalidArgument`]
    /// naming the model, worker and year for a log-probability that is NaN, infinite or
    /// positive (a model that gives an observed outcome no probability at all, or computes
    /// NaN, is broken, and its perplexity would be meaningless), or a distribution of the
    /// wrong length.
    pub fn push(&mut self, row: Prediction) -> Result<()> {
        self.taxonomy.check(row.state)?;
        if !row.log_prob.is_finite() || row.log_prob > 1e-6 {
            return Err(Error::InvalidArgument {
                name: "log_prob",
                detail: format!(
                    "model `{}`, worker `{}` year {}: {} is not a log-probability",
                    self.model, row.worker_id, row.year, row.log_prob
                ),
            });
        }
        if let Some(p) = &row.probs
            && p.len() != self.taxonomy.len()
        {
            return Err(Error::InvalidArgument {
                name: "probs",
                detail: format!(
                    "worker `{}` year {}: {} probabilities for {} outcomes",
                    row.worker_id,
                    row.year,
                    p.len(),
                    self.taxonomy.len()
                ),
            });
        }
        self.rows.push(row);
        Ok(())
    }

    /// Appends the rows of `other` (predictions of the same model over the same taxonomy, e.g.
    /// a shard of the workers scored elsewhere), in order.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the taxonomies differ; as [`Predictions::push`].
    pub fn append(&mut self, other: Predictions) -> Result<()> {
        if !Arc::ptr_eq(&self.taxonomy, &other.taxonomy) && *self.taxonomy != *other.taxonomy {
            return Err(Error::InvalidArgument {
                name: "predictions",
                detail: format!(
                    "{} over taxonomy {} cannot take rows over {}",
                    self.model,
                    self.taxonomy.name(),
                    other.taxonomy.name()
                ),
            });
        }
        self.rows.reserve(other.rows.len());
        for row in other.rows {
            self.push(row)?;
        }
        Ok(())
    }

    /// The model's name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Perplexity of the rows: `exp` of the mean negative log-probability (unweighted, every
    /// row; 1 without rows). `labor-eval` gives it with standard errors, weights and target
    /// rules.
    pub fn perplexity(&self) -> f64 {
        let sum: f64 = self.rows.iter().map(|r| r.log_prob).sum();
        (-sum / self.rows.len().max(1) as f64).exp()
    }

    /// The same predictions under another model name (the name reports and tables show).
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// The taxonomy the states and distributions refer to.
    pub fn taxonomy(&self) -> &Arc<Taxonomy> {
        &self.taxonomy
    }

    /// The rows.
    pub fn rows(&self) -> &[Prediction] {
        &self.rows
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether every row carries the full distribution (false when empty).
    pub fn has_distribution(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|r| r.probs.is_some())
    }

    fn schema(&self, with_probs: bool) -> SchemaRef {
        let mut fields = vec![
            Field::new("worker_id", DataType::Utf8, false),
            Field::new("year", DataType::Int32, false),
            Field::new("position", DataType::UInt32, false),
            Field::new("state_code", DataType::Utf8, false),
            Field::new("previous_code", DataType::Utf8, true),
            Field::new("log_prob", DataType::Float64, false),
            Field::new("weight", DataType::Float64, true),
        ];
        if with_probs {
            fields.push(Field::new(
                "probs",
                DataType::FixedSizeList(probs_item(), self.taxonomy.len() as i32),
                false,
            ));
            fields.push(Field::new("valid_mass", DataType::Float64, false));
            fields.push(Field::new("top5", DataType::Utf8, false));
        }
        let mut meta = HashMap::new();
        meta.insert(META_MODEL.to_string(), self.model.clone());
        meta.insert(META_TAXONOMY.to_string(), self.taxonomy.name().to_string());
        if !self.taxonomy.is_builtin() {
            meta.insert(META_TAXONOMY_CSV.to_string(), self.taxonomy.to_csv_string());
        }
        Arc::new(Schema::new_with_metadata(fields, meta))
    }

    /// The `k` most probable outcomes of a distribution as `code:probability` separated by
    /// spaces, most probable first.
    fn top_codes(&self, probs: &[f32], k: usize) -> String {
        let mut idx: Vec<usize> = (0..probs.len()).collect();
        idx.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]).then(a.cmp(b)));
        idx.iter()
            .take(k)
            .map(|i| {
                let code = u16::try_from(*i).map_or("?", |i| self.taxonomy.code(StateId(i)));
                format!("{code}:{:.4}", probs[*i])
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Writes the predictions as Parquet, atomically (a temporary file renamed). When every row
    /// has a distribution, the file also has `probs`, `valid_mass` (the sum of `probs`: below 1
    /// for a language model that puts mass on text that is no title) and `top5` (the five most
    /// probable outcomes as `code:probability`).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Parquet`] naming the file.
    pub fn write_parquet(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let pq = |source| Error::Parquet {
            path: path.display().to_string(),
            source,
        };
        let with_probs = self.has_distribution();
        let schema = self.schema(with_probs);
        let file = AtomicFile::create(path)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let mut writer =
            ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).map_err(pq)?;
        let chunk_rows = if with_probs { 4096 } else { 64 * 1024 };
        for chunk in self.rows.chunks(chunk_rows) {
            let mut cols: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from_iter_values(
                    chunk.iter().map(|r| r.worker_id.as_str()),
                )),
                Arc::new(Int32Array::from_iter_values(chunk.iter().map(|r| r.year))),
                Arc::new(UInt32Array::from_iter_values(
                    chunk.iter().map(|r| r.position),
                )),
                Arc::new(StringArray::from_iter_values(
                    chunk.iter().map(|r| self.taxonomy.code(r.state)),
                )),
                Arc::new(StringArray::from_iter(
                    chunk
                        .iter()
                        .map(|r| r.previous.map(|p| self.taxonomy.code(p))),
                )),
                Arc::new(Float64Array::from_iter_values(
                    chunk.iter().map(|r| r.log_prob),
                )),
                Arc::new(Float64Array::from_iter(chunk.iter().map(|r| r.weight))),
            ];
            if with_probs {
                let flat: Float32Array = chunk
                    .iter()
                    .flat_map(|r| r.probs.iter().flatten().copied())
                    .collect();
                cols.push(Arc::new(FixedSizeListArray::try_new(
                    probs_item(),
                    self.taxonomy.len() as i32,
                    Arc::new(flat),
                    None,
                )?));
                let probs = || chunk.iter().map(|r| r.probs.as_deref().unwrap_or_default());
                cols.push(Arc::new(Float64Array::from_iter_values(
                    probs().map(|p| p.iter().map(|x| f64::from(*x)).sum::<f64>()),
                )));
                cols.push(Arc::new(StringArray::from_iter_values(
                    probs().map(|p| self.top_codes(p, 5)),
                )));
            }
            writer
                .write(&RecordBatch::try_new(Arc::clone(&schema), cols)?)
                .map_err(pq)?;
        }
        writer.into_inner().map_err(pq)?.commit()
    }

    /// Reads predictions written by [`Predictions::write_parquet`] (or by `labor synth --truth`).
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Parquet`], [`Error::MissingColumn`], [`Error::ColumnType`], or
    /// [`Error::UnknownCode`] naming the row of a state code outside the file's taxonomy.
    pub fn read_parquet(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file_name = path.display().to_string();
        let (schema, reader) = open_parquet(path)?;
        let taxonomy = Arc::new(taxonomy_from_meta(path, &schema)?);
        let model = schema
            .metadata()
            .get(META_MODEL)
            .cloned()
            .unwrap_or_else(|| {
                path.file_stem()
                    .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
            });
        let index = |name: &str| -> Result<Option<usize>> { Ok(schema.index_of(name).ok()) };
        let required = |name: &str| -> Result<usize> {
            index(name)?.ok_or_else(|| Error::MissingColumn {
                file: file_name.clone(),
                column: name.to_string(),
            })
        };
        let (c_worker, c_year, c_state, c_lp) = (
            required("worker_id")?,
            required("year")?,
            required("state_code")?,
            required("log_prob")?,
        );
        let (c_pos, c_prev, c_weight, c_probs) = (
            index("position")?,
            index("previous_code")?,
            index("weight")?,
            index("probs")?,
        );
        let check = |col: usize, expected: &'static str, ok: bool| -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(Error::ColumnType {
                    file: file_name.clone(),
                    column: schema.field(col).name().clone(),
                    expected,
                    found: schema.field(col).data_type().to_string(),
                })
            }
        };
        let f = |c: usize| schema.field(c).data_type();
        check(c_worker, "Utf8", f(c_worker) == &DataType::Utf8)?;
        check(c_year, "Int32", f(c_year) == &DataType::Int32)?;
        check(c_state, "Utf8", f(c_state) == &DataType::Utf8)?;
        check(c_lp, "Float64", f(c_lp) == &DataType::Float64)?;
        if let Some(c) = c_pos {
            check(c, "UInt32", f(c) == &DataType::UInt32)?;
        }
        if let Some(c) = c_prev {
            check(c, "Utf8", f(c) == &DataType::Utf8)?;
        }
        if let Some(c) = c_weight {
            check(c, "Float64", f(c) == &DataType::Float64)?;
        }
        if let Some(c) = c_probs {
            let ok = matches!(f(c), DataType::FixedSizeList(item, n)
                if item.data_type() == &DataType::Float32 && *n as usize == taxonomy.len());
            check(c, "FixedSizeList<Float32> over the taxonomy", ok)?;
        }
        let mut out = Predictions::new(model, Arc::clone(&taxonomy));
        let mut codes: HashMap<String, StateId> = HashMap::new();
        let mut row_no = 0u64;
        // Positions are recomputed from the row order when the column is absent.
        let mut last_worker: Option<String> = None;
        let mut next_pos = 0u32;
        for batch in reader {
            let batch = batch.map_err(|e| Error::Parquet {
                path: file_name.clone(),
                source: e.into(),
            })?;
            let workers = batch.column(c_worker).as_string::<i32>();
            let years = batch.column(c_year).as_primitive::<Int32Type>();
            let states = batch.column(c_state).as_string::<i32>();
            let lps = batch.column(c_lp).as_primitive::<Float64Type>();
            let pos = c_pos.map(|c| batch.column(c).as_primitive::<UInt32Type>().clone());
            let prevs = c_prev.map(|c| batch.column(c).as_string::<i32>().clone());
            let weights = c_weight.map(|c| batch.column(c).as_primitive::<Float64Type>().clone());
            let probs = c_probs.map(|c| batch.column(c).as_fixed_size_list().clone());
            for i in 0..batch.num_rows() {
                row_no += 1;
                let location = |column: &str| Location::new(&file_name, row_no, column);
                let worker_id = workers.value(i).to_string();
                let mut state_of = |code: &str, column: &str| -> Result<StateId> {
                    if let Some(s) = codes.get(code) {
                        return Ok(*s);
                    }
                    let s = taxonomy.id_of_code(code).ok_or_else(|| Error::Malformed {
                        location: location(column),
                        detail: format!("code `{code}` is not in taxonomy `{}`", taxonomy.name()),
                    })?;
                    codes.insert(code.to_string(), s);
                    Ok(s)
                };
                let state = state_of(states.value(i), "state_code")?;
                let previous = match &prevs {
                    Some(p) if !p.is_null(i) => Some(state_of(p.value(i), "previous_code")?),
                    _ => None,
                };
                if last_worker.as_deref() != Some(worker_id.as_str()) {
                    last_worker = Some(worker_id.clone());
                    next_pos = 0;
                }
                let position = pos.as_ref().map_or(next_pos, |p| p.value(i));
                next_pos = position + 1;
                let row = Prediction {
                    worker_id,
                    year: years.value(i),
                    position,
                    state,
                    previous,
                    log_prob: lps.value(i),
                    weight: weights
                        .as_ref()
                        .and_then(|w| (!w.is_null(i)).then(|| w.value(i))),
                    probs: probs
                        .as_ref()
                        .map(|p| p.value(i).as_primitive::<Float32Type>().values().to_vec()),
                };
                out.push(row).map_err(|e| match e {
                    Error::InvalidArgument { detail, .. } => Error::Malformed {
                        location: location("log_prob"),
                        detail,
                    },
                    other => other,
                })?;
            }
        }
        Ok(out)
    }
}

fn probs_item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Float32, false))
}
