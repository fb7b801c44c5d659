//! Reading survey files into the canonical [`crate::Panel`].
//!
//! Three layouts, one policy:
//! - [`Format::Long`]: any CSV or Parquet with one row per worker-year, plus a TOML mapping that
//!   names the columns and maps their values onto the canonical vocabularies
//!   (see `fixtures/long/mapping.toml`).
//! - [`Format::Nlsy79`] / [`Format::Nlsy97`]: the wide CSV that NLS Investigator exports
//!   (reference-number columns such as `R0000100`, negative codes -1 refused, -2 don't know,
//!   -3 invalid skip, -4 valid skip, -5 non-interview), plus a variable map saying which
//!   reference number holds which variable in which year.
//! - [`Format::Psid`]: PSID's fixed-width files, with the variable map giving each variable's
//!   columns; the person id is `ER30001 × 1000 + ER30002`.
//!
//! A bad row never panics and is never lost silently: with [`OnError::Fail`] the first problem
//! stops ingestion with an error naming file, line and column; with [`OnError::Drop`] the row
//! (or person-year) is dropped and counted by reason in the [`IngestReport`]. Person-years that
//! the survey did not observe (non-interview, missing answers) become gap years, also counted.
//!
//! ```
//! # fn main() -> Result<(), labor_data::Error> {
//! use labor_data::ingest::{Format, IngestBuilder, OnError};
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/long");
//! let out = IngestBuilder::new(Format::Long, dir.join("panel.csv"), dir.join("mapping.toml"))
//!     .with_on_error(OnError::Drop)
//!     .build()?
//!     .run()?;
//! assert!(out.panel.len() > 0);
//! assert!(out.report.dropped.values().sum::<u64>() > 0); // the fixture has bad rows on purpose
//! # Ok(()) }
//! ```

mod long;
pub(crate) mod mapping;
mod wide;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, Issue, Result};
use crate::panel::Panel;
use crate::taxonomy::Taxonomy;

pub use mapping::{LongMapping, WideMapping};

/// Input layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// One row per worker-year (CSV or Parquet, chosen by extension).
    Long,
    /// NLS Investigator wide CSV of NLSY79.
    Nlsy79,
    /// NLS Investigator wide CSV of NLSY97.
    Nlsy97,
    /// PSID fixed-width file.
    Psid,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "long" => Ok(Format::Long),
            "nlsy79" => Ok(Format::Nlsy79),
            "nlsy97" => Ok(Format::Nlsy97),
            "psid" => Ok(Format::Psid),
            other => Err(Error::InvalidArgument {
                name: "format",
                detail: format!("unknown format `{other}` (long, nlsy79, nlsy97, psid)"),
            }),
        }
    }
}

/// What to do with a bad row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Stop at the first problem with an error naming file, line and column.
    #[default]
    Fail,
    /// Drop the row (or person-year) and count it in the report.
    Drop,
}

impl std::str::FromStr for OnError {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fail" => Ok(OnError::Fail),
            "drop" => Ok(OnError::Drop),
            other => Err(Error::InvalidArgument {
                name: "on-error",
                detail: format!("unknown policy `{other}` (fail, drop)"),
            }),
        }
    }
}

/// What ingestion read, kept, dropped and left as gaps (written as JSON by `labor ingest --report`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IngestReport {
    /// The input file.
    pub input: String,
    /// The layout.
    pub format: String,
    /// Data rows read (CSV lines, Parquet rows, fixed-width records).
    pub rows_read: u64,
    /// Workers in the resulting panel.
    pub workers: u64,
    /// Worker-years in the resulting panel.
    pub worker_years: u64,
    /// Rows or person-years dropped, by reason.
    pub dropped: BTreeMap<String, u64>,
    /// Person-years left as gaps, by reason (non-interview, missing state).
    pub gaps: BTreeMap<String, u64>,
    /// Values filled in by a documented rule (education carried forward), by rule.
    pub imputed: BTreeMap<String, u64>,
    /// Workers dropped because no year of theirs could be kept.
    pub workers_without_records: u64,
    /// The first problems, as messages naming file, line and column (at most 20).
    pub examples: Vec<String>,
}

/// `N rows: W workers, Y worker-years`, then a line per reason rows were dropped or years left
/// as gaps.
impl std::fmt::Display for IngestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows: {} workers, {} worker-years",
            self.rows_read, self.workers, self.worker_years
        )?;
        for (k, v) in &self.dropped {
            write!(f, "\n  dropped {v} ({k})")?;
        }
        for (k, v) in &self.gaps {
            write!(f, "\n  gap years {v} ({k})")?;
        }
        Ok(())
    }
}

impl IngestReport {
    /// Why the panel is empty, when it is: the input had no data rows, or every row was
    /// dropped.
    pub fn empty_panel_warning(&self) -> Option<String> {
        if self.rows_read == 0 {
            Some(format!(
                "{} has no data rows; the panel is empty",
                self.input
            ))
        } else if self.workers == 0 {
            Some(format!(
                "every row of {} was dropped; the panel is empty",
                self.input
            ))
        } else {
            None
        }
    }

    fn new(input: &Path, format: Format) -> Self {
        Self {
            input: input.display().to_string(),
            format: format!("{format:?}").to_ascii_lowercase(),
            ..Self::default()
        }
    }

    /// Applies the policy to a row-level error: `Err` under [`OnError::Fail`] (or for errors
    /// that are not about one row), else counts it and returns `Ok`.
    pub(crate) fn handle(&mut self, policy: OnError, err: Error) -> Result<()> {
        match (policy, err.issue()) {
            (OnError::Drop, Some(issue)) => {
                self.count_drop(issue);
                if self.examples.len() < 20 {
                    self.examples.push(err.to_string());
                }
                Ok(())
            }
            _ => Err(err),
        }
    }

    fn count_drop(&mut self, issue: Issue) {
        *self.dropped.entry(issue.as_str().to_string()).or_insert(0) += 1;
    }

    pub(crate) fn gap(&mut self, reason: &str) {
        *self.gaps.entry(reason.to_string()).or_insert(0) += 1;
    }

    pub(crate) fn imputed(&mut self, rule: &str) {
        *self.imputed.entry(rule.to_string()).or_insert(0) += 1;
    }
}

/// Reads the next well-formed CSV record into `record` and returns its line, or `None` at the
/// end. Rows that do not parse or do not have `n_fields` fields go through the policy (counted
/// as malformed under [`OnError::Drop`]).
pub(crate) fn next_csv_record<R: std::io::Read>(
    rdr: &mut csv::Reader<R>,
    record: &mut csv::StringRecord,
    n_fields: usize,
    file: &str,
    policy: OnError,
    report: &mut IngestReport,
) -> Result<Option<u64>> {
    loop {
        let line = rdr.position().line();
        let read = rdr.read_record(record);
        report.rows_read += u64::from(!matches!(read, Ok(false)));
        let detail = match read {
            Ok(false) => return Ok(None),
            Ok(true) if record.len() == n_fields => {
                return Ok(Some(record.position().map_or(line, |p| p.line())));
            }
            Ok(true) => format!("{} fields, the header has {n_fields}", record.len()),
            Err(e) => e.to_string(),
        };
        let line = record.position().map_or(line, |p| p.line());
        report.handle(
            policy,
            Error::Malformed {
                location: crate::error::Location::new(file, line, ""),
                detail,
            },
        )?;
    }
}

/// A panel and its ingestion report.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// The panel.
    pub panel: Panel,
    /// What happened to every row.
    pub report: IngestReport,
}

/// Configures an ingestion.
#[derive(Debug, Clone)]
pub struct IngestBuilder {
    format: Format,
    input: PathBuf,
    mapping: PathBuf,
    on_error: OnError,
    taxonomy: Option<Arc<Taxonomy>>,
}

impl IngestBuilder {
    /// Reads `input` in `format` with the mapping (or variable map) file `mapping`.
    pub fn new(format: Format, input: impl Into<PathBuf>, mapping: impl Into<PathBuf>) -> Self {
        Self {
            format,
            input: input.into(),
            mapping: mapping.into(),
            on_error: OnError::Fail,
            taxonomy: None,
        }
    }

    /// The bad-row policy (default [`OnError::Fail`]).
    #[must_use]
    pub fn with_on_error(mut self, policy: OnError) -> Self {
        self.on_error = policy;
        self
    }

    /// The taxonomy to map occupations onto (default: built-in occ1990dd).
    #[must_use]
    pub fn with_taxonomy(mut self, taxonomy: Arc<Taxonomy>) -> Self {
        self.taxonomy = Some(taxonomy);
        self
    }

    /// Reads and checks the mapping file against the taxonomy.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Mapping`] naming the mapping file (TOML syntax, unknown keys,
    /// an occupation scheme the taxonomy has no crosswalk for, an unknown canonical value).
    pub fn build(self) -> Result<Ingest> {
        let taxonomy = self
            .taxonomy
            .unwrap_or_else(|| Arc::new(Taxonomy::occ1990dd()));
        let text =
            std::fs::read_to_string(&self.mapping).map_err(|e| Error::io(&self.mapping, e))?;
        let file = self.mapping.display().to_string();
        let spec = match self.format {
            Format::Long => Spec::Long(LongMapping::parse(&text, &file, &taxonomy)?),
            Format::Nlsy79 | Format::Nlsy97 | Format::Psid => {
                let m = WideMapping::parse(&text, &file, &taxonomy)?;
                if self.format == Format::Psid && m.layout.is_none() {
                    return Err(Error::Mapping {
                        file,
                        detail: "a psid variable map needs a [layout] table of column ranges"
                            .into(),
                    });
                }
                Spec::Wide(m)
            }
        };
        Ok(Ingest {
            format: self.format,
            input: self.input,
            on_error: self.on_error,
            taxonomy,
            spec,
        })
    }
}

#[derive(Debug, Clone)]
enum Spec {
    Long(LongMapping),
    Wide(WideMapping),
}

/// A configured ingestion, ready to [`run`](Ingest::run).
#[derive(Debug, Clone)]
pub struct Ingest {
    format: Format,
    input: PathBuf,
    on_error: OnError,
    taxonomy: Arc<Taxonomy>,
    spec: Spec,
}

impl Ingest {
    /// Reads the input.
    ///
    /// # Errors
    /// [`Error::Io`] for an unreadable input, [`Error::MissingColumn`] for a mapped column the
    /// file lacks, and under [`OnError::Fail`] the first row-level error (naming file, line and
    /// column).
    pub fn run(&self) -> Result<Ingested> {
        let mut report = IngestReport::new(&self.input, self.format);
        let workers = match &self.spec {
            Spec::Long(m) => {
                long::read(&self.input, m, &self.taxonomy, self.on_error, &mut report)?
            }
            Spec::Wide(m) => wide::read(
                &self.input,
                self.format,
                m,
                &self.taxonomy,
                self.on_error,
                &mut report,
            )?,
        };
        let panel = Panel::new(Arc::clone(&self.taxonomy), workers)?;
        report.workers = panel.len() as u64;
        report.worker_years = panel.n_worker_years() as u64;
        Ok(Ingested { panel, report })
    }
}
