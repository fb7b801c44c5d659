//! Training loss curves, as the trainers write them: CSV with the header
//! `step,epoch,tokens,train_loss,valid_loss,learning_rate` (columns in any order, extra columns
//! ignored; `valid_loss` and `learning_rate` may be empty on steps without a validation pass).
//!
//! ```
//! use labor_eval::LossCurve;
//! let csv = "step,epoch,tokens,train_loss,valid_loss,learning_rate\n\
//!            10,0.5,2560,3.2,,0.001\n\
//!            20,1.0,5120,2.9,3.0,0.001\n";
//! let c = LossCurve::from_csv_str("career", csv).unwrap();
//! assert_eq!(c.points.len(), 2);
//! assert_eq!(c.points[0].valid_loss, None);
//! assert_eq!(c.points[1].valid_loss, Some(3.0));
//! ```

use serde::Serialize;

use crate::error::{Error, Result};

/// One logged step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LossPoint {
    /// Optimiser step.
    pub step: u64,
    /// Epoch (fractional), when logged.
    pub epoch: Option<f64>,
    /// Tokens seen, when logged.
    pub tokens: Option<u64>,
    /// Training loss (nats per token), when logged.
    pub train_loss: Option<f64>,
    /// Validation loss, on steps with a validation pass.
    pub valid_loss: Option<f64>,
    /// Learning rate, when logged.
    pub learning_rate: Option<f64>,
}

/// A named training run's losses, in file order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossCurve {
    /// The run's name (legend entry).
    pub name: String,
    /// The logged steps.
    pub points: Vec<LossPoint>,
}

impl LossCurve {
    /// Reads the CSV file at `path` (see [`LossCurve::from_csv_str`]) as the run `name`.
    ///
    /// # Errors
    /// [`Error::Read`] naming the file, else as [`LossCurve::from_csv_str`].
    pub fn from_csv_path(name: &str, path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_csv_str(name, &text)
    }

    /// Parses the CSV text of a run called `name`.
    ///
    /// # Errors
    /// [`Error::Malformed`] for a missing `step` column, a line with too few fields, or a value
    /// that is not a number.
    pub fn from_csv_str(name: &str, text: &str) -> Result<Self> {
        let bad = |line: u64, detail: String| Error::Malformed {
            what: format!("loss curve `{name}`"),
            line: line as usize,
            detail,
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let header = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
        if header.is_empty() {
            return Err(bad(0, "empty file".into()));
        }
        let column = |c: &str| header.iter().position(|h| h == c);
        let Some(c_step) = column("step") else {
            let names: Vec<&str> = header.iter().collect();
            return Err(bad(1, format!("no `step` column in `{}`", names.join(","))));
        };
        let mut points = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, csv::Position::line);
                bad(line, e.to_string())
            })?;
            let line = record.position().map_or(0, csv::Position::line);
            let get = |c: &str| -> Result<Option<f64>> {
                match column(c).and_then(|i| record.get(i)) {
                    None | Some("") => Ok(None),
                    Some(v) => v
                        .parse::<f64>()
                        .map(Some)
                        .map_err(|_| bad(line, format!("`{c}` = `{v}` is not a number"))),
                }
            };
            let step = record
                .get(c_step)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| bad(line, "`step` is not a whole number".into()))?;
            points.push(LossPoint {
                step,
                epoch: get("epoch")?,
                tokens: get("tokens")?.map(|t| t as u64),
                train_loss: get("train_loss")?,
                valid_loss: get("valid_loss")?,
                learning_rate: get("learning_rate")?,
            });
        }
        Ok(Self {
            name: name.to_string(),
            points,
        })
    }
}
