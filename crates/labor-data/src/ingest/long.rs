//! The `long` layout: one row per worker-year, CSV or Parquet.

use std::path::Path;

use arrow_array::Array;

use super::mapping::{LongMapping, SpecialValue, map_education};
use super::{IngestReport, OnError};
use crate::error::{Error, Location, Result};
use crate::io::map_value;
use crate::io::{WorkerAssembler, cell_text, open_parquet, parse_int, readable_type};
use crate::panel::{Worker, YearRecord};
use crate::taxonomy::Taxonomy;
use crate::vocab::{Education, Ethnicity, Gender, Region};

/// The mapped columns in a fixed order; index `i` of a row's values is `COLS[i]`.
const N_COLS: usize = 10;
const COLS: [&str; N_COLS] = [
    "worker_id",
    "year",
    "occupation",
    "dataset",
    "education",
    "gender",
    "ethnicity",
    "region",
    "birth_year",
    "weight",
];

fn mapped(m: &LongMapping) -> [Option<&str>; N_COLS] {
    [
        Some(m.worker_id.as_str()),
        Some(m.year.as_str()),
        Some(m.occupation.as_str()),
        m.dataset_column.as_deref(),
        m.education.as_deref(),
        m.gender.as_deref(),
        m.ethnicity.as_deref(),
        m.region.as_deref(),
        m.birth_year.as_deref(),
        m.weight.as_deref(),
    ]
}

pub(super) fn read(
    path: &Path,
    m: &LongMapping,
    taxonomy: &Taxonomy,
    policy: OnError,
    report: &mut IngestReport,
) -> Result<Vec<Worker>> {
    let file = path.display().to_string();
    let names = mapped(m);
    let mut asm = WorkerAssembler::new();
    let is_parquet = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"));
    if is_parquet {
        let (schema, reader) = open_parquet(path)?;
        let mut idx = [None; N_COLS];
        for (i, n) in names.iter().enumerate() {
            if let Some(n) = n {
                let Ok(j) = schema.index_of(n) else {
                    return Err(Error::MissingColumn {
                        file,
                        column: n.to_string(),
                    });
                };
                let dt = schema.field(j).data_type();
                if !readable_type(dt) {
                    return Err(Error::ColumnType {
                        file,
                        column: n.to_string(),
                        expected: "string or number",
                        found: dt.to_string(),
                    });
                }
                idx[i] = Some(j);
            }
        }
        let mut row0 = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| Error::Parquet {
                path: file.clone(),
                source: e.into(),
            })?;
            let cols: Vec<Option<&dyn Array>> = idx
                .iter()
                .map(|j| j.map(|j| batch.column(j).as_ref()))
                .collect();
            for row in 0..batch.num_rows() {
                report.rows_read += 1;
                let line = row0 + row as u64 + 1;
                let values: [Option<String>; N_COLS] =
                    std::array::from_fn(|i| cols[i].and_then(|c| cell_text(c, row)));
                let r =
                    one_row(&file, line, &values, &names, m, taxonomy, report).and_then(|rec| {
                        match rec {
                            Some((w, y, at)) => asm.push(&w, y, &at),
                            None => Ok(()),
                        }
                    });
                if let Err(e) = r {
                    report.handle(policy, e)?;
                }
            }
            row0 += batch.num_rows() as u64;
        }
    } else {
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(f);
        let headers = rdr
            .headers()
            .map_err(|e| Error::Malformed {
                location: Location::new(&file, 1, ""),
                detail: e.to_string(),
            })?
            .clone();
        let mut idx = [None; N_COLS];
        for (i, n) in names.iter().enumerate() {
            if let Some(n) = n {
                let Some(j) = headers.iter().position(|h| h.trim() == *n) else {
                    return Err(Error::MissingColumn {
                        file,
                        column: n.to_string(),
                    });
                };
                idx[i] = Some(j);
            }
        }
        let mut record = csv::StringRecord::new();
        while let Some(line) =
            super::next_csv_record(&mut rdr, &mut record, headers.len(), &file, policy, report)?
        {
            let values: [Option<String>; N_COLS] = std::array::from_fn(|i| {
                idx[i]
                    .and_then(|j| record.get(j))
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            });
            let r =
                one_row(&file, line, &values, &names, m, taxonomy, report).and_then(
                    |rec| match rec {
                        Some((w, y, at)) => asm.push(&w, y, &at),
                        None => Ok(()),
                    },
                );
            if let Err(e) = r {
                report.handle(policy, e)?;
            }
        }
    }
    Ok(asm.finish())
}

/// Parses one row; `Ok(None)` when the row is a gap year (counted in the report).
fn one_row(
    file: &str,
    line: u64,
    values: &[Option<String>; N_COLS],
    names: &[Option<&str>; N_COLS],
    m: &LongMapping,
    taxonomy: &Taxonomy,
    report: &mut IngestReport,
) -> Result<Option<(Worker, YearRecord, Location)>> {
    let at = |i: usize| Location::new(file, line, names[i].unwrap_or(COLS[i]));
    let need = |i: usize| {
        values[i]
            .as_deref()
            .ok_or_else(|| Error::MissingValue { location: at(i) })
    };
    let id = need(0)?;
    let year = parse_int(need(1)?, at(1))?;
    if year < i64::from(m.years.0) || year > i64::from(m.years.1) {
        return Err(Error::YearOutOfRange {
            location: at(1),
            year,
            min: m.years.0,
            max: m.years.1,
        });
    }
    let dataset = match &values[3] {
        Some(d) => d.clone(),
        None if m.dataset_column.is_some() => return Err(Error::MissingValue { location: at(3) }),
        None => m.dataset.clone(),
    };
    let mut w = Worker::new(id, dataset);
    if let Some(g) = &values[5] {
        w.gender = map_value(
            g,
            &m.values.gender,
            Gender::from_key,
            Gender::VOCABULARY,
            || at(5),
        )?;
    }
    if let Some(e) = &values[6] {
        w.ethnicity = map_value(
            e,
            &m.values.ethnicity,
            Ethnicity::from_key,
            Ethnicity::VOCABULARY,
            || at(6),
        )?;
    }
    if let Some(r) = &values[7] {
        w.region = map_value(
            r,
            &m.values.region,
            Region::from_key,
            Region::VOCABULARY,
            || at(7),
        )?;
    }
    if let Some(b) = &values[8] {
        w.birth_year = Some(parse_int(b, at(8))? as i32);
    }
    if let Some(x) = &values[9] {
        let v = x.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
        w.weight = Some(v.ok_or_else(|| Error::Malformed {
            location: at(9),
            detail: format!("weight `{x}` is not a non-negative number"),
        })?);
    }
    let education = match &values[4] {
        Some(e) => map_education(e, m.education_coding, &m.values.education, || at(4))?,
        None => Education::Unknown,
    };
    let occ = values[2].as_deref().unwrap_or("");
    let state = match m.special.get(occ.trim()) {
        Some(SpecialValue::State(s)) => *s,
        Some(SpecialValue::Missing | SpecialValue::Employed) => {
            report.gap("missing_state");
            return Ok(None);
        }
        None if occ.is_empty() => return Err(Error::MissingValue { location: at(2) }),
        None => taxonomy
            .resolve(&m.scheme, occ)
            .ok_or_else(|| Error::UnknownOccupation {
                location: at(2),
                code: occ.to_string(),
                scheme: m.scheme.to_string(),
            })?,
    };
    Ok(Some((
        w,
        YearRecord::new(year as i32, state, education),
        Location::new(file, line, ""),
    )))
}
