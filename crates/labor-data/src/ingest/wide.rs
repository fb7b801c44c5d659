//! The wide layouts: NLS Investigator CSV (NLSY79, NLSY97) and PSID fixed-width files.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::mapping::{IdSpec, SpecialValue, WideMapping, map_education};
use super::{Format, IngestReport, OnError};
use crate::error::{Error, Location, Result};
use crate::io::map_value;
use crate::io::parse_int;
use crate::panel::{Worker, YearRecord};
use crate::taxonomy::Taxonomy;
use crate::vocab::{Education, Ethnicity, Gender, Region};

/// One respondent's row: variable name → raw value.
struct Row<'a> {
    file: &'a str,
    line: u64,
    values: HashMap<&'a str, String>,
    /// Column description of each variable for error messages (PSID: its byte range).
    columns: &'a HashMap<&'a str, String>,
}

impl Row<'_> {
    fn get(&self, var: &str) -> Option<&str> {
        self.values
            .get(var)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    fn at(&self, var: &str) -> Location {
        Location::new(
            self.file,
            self.line,
            self.columns
                .get(var)
                .cloned()
                .unwrap_or_else(|| var.to_string()),
        )
    }

    fn int(&self, var: &str) -> Result<Option<i64>> {
        match self.get(var) {
            None => Ok(None),
            Some(s) => parse_int(s, self.at(var)).map(Some),
        }
    }
}

pub(super) fn read(
    path: &Path,
    format: Format,
    m: &WideMapping,
    taxonomy: &Taxonomy,
    policy: OnError,
    report: &mut IngestReport,
) -> Result<Vec<Worker>> {
    let file = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let vars = m.variables();
    let mut workers = Vec::new();
    let mut ids = std::collections::HashSet::new();
    if format == Format::Psid {
        let layout = m.layout.as_ref().ok_or_else(|| Error::Mapping {
            file: m.file.clone(),
            detail: "missing [layout]".into(),
        })?;
        let columns: HashMap<&str, String> = vars
            .iter()
            .map(|v| {
                let (a, b) = layout.get(*v).copied().unwrap_or((0, 0));
                (*v, format!("{v} (columns {a}-{b})"))
            })
            .collect();
        for (i, line) in BufReader::new(f).lines().enumerate() {
            let line_no = i as u64 + 1;
            let text = line.map_err(|e| Error::io(path, e))?;
            if text.trim().is_empty() {
                continue;
            }
            report.rows_read += 1;
            let mut values = HashMap::new();
            let mut short = None;
            for v in &vars {
                let (a, b) = layout.get(*v).copied().unwrap_or((1, 1));
                match text.get(a - 1..b) {
                    Some(s) => {
                        values.insert(*v, s.to_string());
                    }
                    None => short = Some(*v),
                }
            }
            let row = Row {
                file: &file,
                line: line_no,
                values,
                columns: &columns,
            };
            if let Some(v) = short {
                report.handle(
                    policy,
                    Error::Malformed {
                        location: row.at(v),
                        detail: format!(
                            "record has {} characters, too short for this variable",
                            text.len()
                        ),
                    },
                )?;
                continue;
            }
            respondent(&row, m, taxonomy, policy, report, &mut workers, &mut ids)?;
        }
    } else {
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(f);
        let headers = rdr
            .headers()
            .map_err(|e| Error::Malformed {
                location: Location::new(&file, 1, ""),
                detail: e.to_string(),
            })?
            .clone();
        let mut index = HashMap::new();
        for v in &vars {
            let Some(j) = headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(v))
            else {
                return Err(Error::MissingColumn {
                    file,
                    column: v.to_string(),
                });
            };
            index.insert(*v, j);
        }
        let columns: HashMap<&str, String> = vars.iter().map(|v| (*v, v.to_string())).collect();
        let mut record = csv::StringRecord::new();
        while let Some(line) =
            super::next_csv_record(&mut rdr, &mut record, headers.len(), &file, policy, report)?
        {
            let values = index
                .iter()
                .map(|(v, j)| (*v, record.get(*j).unwrap_or("").to_string()))
                .collect();
            let row = Row {
                file: &file,
                line,
                values,
                columns: &columns,
            };
            respondent(&row, m, taxonomy, policy, report, &mut workers, &mut ids)?;
        }
    }
    Ok(workers)
}

/// Reads a static attribute: negative codes are unknown, other values go through the table.
fn attribute<T: Default>(
    row: &Row<'_>,
    var: &Option<String>,
    table: &Option<std::collections::BTreeMap<String, String>>,
    parse: impl Fn(&str) -> Option<T>,
    vocabulary: &'static str,
) -> Result<T> {
    let Some(var) = var else {
        return Ok(T::default());
    };
    match row.get(var) {
        None => Ok(T::default()),
        Some(v) if v.starts_with('-') && v[1..].bytes().all(|b| b.is_ascii_digit()) => {
            Ok(T::default())
        }
        Some(v) => map_value(v, table, parse, vocabulary, || row.at(var)),
    }
}

fn respondent(
    row: &Row<'_>,
    m: &WideMapping,
    taxonomy: &Taxonomy,
    policy: OnError,
    report: &mut IngestReport,
    workers: &mut Vec<Worker>,
    ids: &mut std::collections::HashSet<String>,
) -> Result<()> {
    let worker = match person(row, m, ids) {
        Ok(w) => w,
        Err(e) => return report.handle(policy, e),
    };
    let mut w = worker;
    let mut last_education: Option<Education> = None;
    for (wave, scheme) in &m.years {
        match person_year(row, m, taxonomy, wave, scheme, &mut last_education, report) {
            Ok(Some((rec, region))) => {
                if w.region == Region::Unknown {
                    w.region = region;
                }
                w.records.push(rec);
            }
            Ok(None) => {}
            Err(e) => report.handle(policy, e)?,
        }
    }
    if w.records.is_empty() {
        report.workers_without_records += 1;
    } else {
        ids.insert(w.id.clone());
        workers.push(w);
    }
    Ok(())
}

fn person(
    row: &Row<'_>,
    m: &WideMapping,
    ids: &std::collections::HashSet<String>,
) -> Result<Worker> {
    let id = match &m.worker_id {
        IdSpec::One(v) => row
            .get(v)
            .ok_or_else(|| Error::MissingValue {
                location: row.at(v),
            })?
            .to_string(),
        IdSpec::Psid { interview, person } => {
            let a = row.int(interview)?.ok_or_else(|| Error::MissingValue {
                location: row.at(interview),
            })?;
            let b = row.int(person)?.ok_or_else(|| Error::MissingValue {
                location: row.at(person),
            })?;
            // ER30001 x 1000 + ER30002; numbers no survey holds are a located error, not an
            // overflow.
            match a.checked_mul(1000).and_then(|x| x.checked_add(b)) {
                Some(id) => id.to_string(),
                None => {
                    return Err(Error::Malformed {
                        location: row.at(interview),
                        detail: format!(
                            "person id {a} x 1000 + {b} is out of range (a PSID interview number has at most 4 digits)"
                        ),
                    });
                }
            }
        }
    };
    if ids.contains(&id) {
        let var = match &m.worker_id {
            IdSpec::One(v) => v.as_str(),
            IdSpec::Psid { interview, .. } => interview.as_str(),
        };
        return Err(Error::InconsistentWorker {
            location: row.at(var),
            worker_id: id,
            attribute: "id",
            expected: "a unique respondent".into(),
            found: "a second row".into(),
        });
    }
    let mut w = Worker::new(id, m.dataset.clone());
    w.gender = attribute(
        row,
        &m.gender,
        &m.values.gender,
        Gender::from_key,
        Gender::VOCABULARY,
    )?;
    w.ethnicity = attribute(
        row,
        &m.ethnicity,
        &m.values.ethnicity,
        Ethnicity::from_key,
        Ethnicity::VOCABULARY,
    )?;
    w.region = attribute(
        row,
        &m.region,
        &m.values.region,
        Region::from_key,
        Region::VOCABULARY,
    )?;
    if let Some(v) = &m.birth_year {
        w.birth_year = row
            .int(v)?
            .filter(|b| *b >= 0)
            .map(|b| b as i32 + m.birth_year_offset);
    }
    if let Some(v) = &m.weight {
        w.weight = match row.get(v) {
            None => None,
            Some(s) => {
                let x: f64 = s.parse().map_err(|_| Error::Malformed {
                    location: row.at(v),
                    detail: format!("weight `{s}` is not a number"),
                })?;
                (x >= 0.0).then_some(x)
            }
        };
    }
    Ok(w)
}

/// One wave of one respondent: a record, or `None` for a gap (counted in the report).
fn person_year(
    row: &Row<'_>,
    m: &WideMapping,
    taxonomy: &Taxonomy,
    wave: &super::mapping::WaveVars,
    scheme: &crate::taxonomy::Scheme,
    last_education: &mut Option<Education>,
    report: &mut IngestReport,
) -> Result<Option<(YearRecord, Region)>> {
    let code_of = |var: &Option<String>| -> Result<Option<i64>> {
        match var {
            Some(v) => match row.get(v) {
                Some(s) if s.starts_with('-') => parse_int(s, row.at(v)).map(Some),
                _ => Ok(None),
            },
            None => Ok(None),
        }
    };
    let occ_neg = code_of(&wave.occupation)?;
    let status_neg = code_of(&wave.status)?;
    if [occ_neg, status_neg]
        .iter()
        .flatten()
        .any(|c| m.non_interview_codes.contains(c))
    {
        report.gap("non_interview");
        return Ok(None);
    }
    // The status variable decides for special states; otherwise the occupation code does.
    let status = wave
        .status
        .as_ref()
        .and_then(|v| row.get(v).map(|s| (v, s)))
        .filter(|(_, s)| !s.starts_with('-'));
    let from_status = match status {
        Some((v, s)) => match m.status.get(s) {
            Some(sv) => Some(*sv),
            None => {
                return Err(Error::UnmappedValue {
                    location: row.at(v),
                    value: s.to_string(),
                    vocabulary: "status",
                });
            }
        },
        None => None,
    };
    let state = match from_status {
        Some(SpecialValue::State(s)) => s,
        Some(SpecialValue::Missing) => {
            report.gap("missing_state");
            return Ok(None);
        }
        Some(SpecialValue::Employed) | None => {
            let Some(var) = &wave.occupation else {
                report.gap("missing_state");
                return Ok(None);
            };
            match (row.get(var), occ_neg) {
                (_, Some(c)) => {
                    let reason = if m.valid_skip_codes.contains(&c) {
                        "no_job_no_status"
                    } else if m.missing_codes.contains(&c) {
                        "missing_occupation"
                    } else {
                        "negative_occupation_code"
                    };
                    report.gap(reason);
                    return Ok(None);
                }
                (None, None) => {
                    report.gap("missing_occupation");
                    return Ok(None);
                }
                (Some(code), None) => {
                    let unknown = || Error::UnknownOccupation {
                        location: row.at(var),
                        code: code.to_string(),
                        scheme: scheme.to_string(),
                    };
                    let scaled = match wave.code_divisor {
                        None | Some(1) => code.to_string(),
                        Some(d) => match code.parse::<u32>() {
                            Ok(c) if c % d == 0 => (c / d).to_string(),
                            _ => return Err(unknown()),
                        },
                    };
                    taxonomy.resolve(scheme, &scaled).ok_or_else(unknown)?
                }
            }
        }
    };
    let education = match wave
        .education
        .as_ref()
        .and_then(|v| row.get(v).map(|s| (v, s)))
    {
        Some((v, s)) if !s.starts_with('-') => {
            let e = map_education(s, m.education_coding, &m.values.education, || row.at(v))?;
            // Education only rises; a lower later report is read as a reporting error.
            let e = match *last_education {
                Some(prev) if prev.level() > e.level() => prev,
                _ => e,
            };
            *last_education = Some(e);
            e
        }
        _ => match *last_education {
            Some(e) => {
                report.imputed("education_carried_forward");
                e
            }
            None => {
                report.imputed("education_unknown");
                Education::Unknown
            }
        },
    };
    let region = match &wave.region {
        Some(v) => match row.get(v) {
            Some(s) if !s.starts_with('-') => map_value(
                s,
                &m.values.region,
                Region::from_key,
                Region::VOCABULARY,
                || row.at(v),
            )?,
            _ => Region::Unknown,
        },
        None => Region::Unknown,
    };
    Ok(Some((YearRecord::new(wave.year, state, education), region)))
}
