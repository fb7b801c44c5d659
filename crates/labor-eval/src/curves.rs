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

use std::collections::HashMap;

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
    /// Parses the CSV text of a run called `name`.
    ///
    /// # Errors
    /// [`Error::Malformed`] for a missing `step` column, a line with too few fields, or a value
    /// that is not a number.
    pub fn from_csv_str(name: &str, text: &str) -> Result<Self> {
        let bad = |line: usize, detail: String| Error::Malformed {
            what: format!("loss curve `{name}`"),
            line,
            detail,
        };
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            return Err(bad(0, "empty file".into()));
        };
        let cols: HashMap<&str, usize> = header
            .split(',')
            .enumerate()
            .map(|(i, c)| (c.trim(), i))
            .collect();
        let Some(&c_step) = cols.get("step") else {
            return Err(bad(1, format!("no `step` column in `{header}`")));
        };
        let mut points = Vec::new();
        for (no, line) in lines {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let get = |col: &str| -> Result<Option<f64>> {
                match cols.get(col).and_then(|&i| fields.get(i)) {
                    None | Some(&"") => Ok(None),
                    Some(v) => v
                        .parse::<f64>()
                        .map(Some)
                        .map_err(|_| bad(no + 1, format!("`{col}` = `{v}` is not a number"))),
                }
            };
            let step = fields
                .get(c_step)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| bad(no + 1, "`step` is not a whole number".into()))?;
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
