//! Writing the synthetic truth as Parquet.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::{
    ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int32Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema};
use labor_data::{CareerLaw, SynthOutput};
use parquet::arrow::ArrowWriter;

/// Writes one row per worker-year: `worker_id, year, state_code, log_prob`, and with `full` a
/// `probs` column holding the true distribution over every outcome (indexed by state id).
pub fn write(path: &Path, out: &SynthOutput, law: &CareerLaw, full: bool) -> Result<()> {
    let tax = out.panel.taxonomy();
    let mut ids = Vec::new();
    let mut years = Vec::new();
    let mut codes = Vec::new();
    let mut lps = Vec::new();
    let mut probs: Vec<f32> = Vec::new();
    for (w, lp) in out.panel.workers().iter().zip(&out.truth.log_probs) {
        for (k, r) in w.records.iter().enumerate() {
            ids.push(w.id.as_str());
            years.push(r.year);
            codes.push(tax.code(r.state));
            lps.push(lp[k]);
            if full {
                probs.extend(law.distribution(w, k).into_iter().map(|p| p as f32));
            }
        }
    }
    let mut fields = vec![
        Field::new("worker_id", DataType::Utf8, false),
        Field::new("year", DataType::Int32, false),
        Field::new("state_code", DataType::Utf8, false),
        Field::new("log_prob", DataType::Float64, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(Int32Array::from(years)),
        Arc::new(StringArray::from(codes)),
        Arc::new(Float64Array::from(lps)),
    ];
    if full {
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        let list = FixedSizeListArray::try_new(
            Arc::clone(&item),
            tax.len() as i32,
            Arc::new(Float32Array::from(probs)),
            None,
        )?;
        fields.push(Field::new(
            "probs",
            DataType::FixedSizeList(item, tax.len() as i32),
            false,
        ));
        cols.push(Arc::new(list));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), cols)?;
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = ArrowWriter::try_new(file, schema, None)?;
    w.write(&batch)?;
    w.close()?;
    Ok(())
}
