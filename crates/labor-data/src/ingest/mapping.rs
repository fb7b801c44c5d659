//! The TOML mapping files of the `long` layout and the variable maps of the wide layouts.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Location, Result};
use crate::io::map_value;
use crate::taxonomy::{Scheme, SpecialState, StateId, Taxonomy};
use crate::vocab::{Education, Ethnicity, Gender, Region};

/// Value tables mapping raw survey values onto canonical keys, per vocabulary. Without a table
/// the raw values must already be canonical keys or labels (`female`, `some college`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValueMaps {
    #[serde(default)]
    pub gender: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub ethnicity: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub region: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub education: Option<BTreeMap<String, String>>,
}

/// How education values are read.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EducationCoding {
    /// Canonical keys, or values mapped by `[values.education]`.
    #[default]
    Categories,
    /// Completed years of schooling, harmonised by `Education::from_years_of_schooling`.
    YearsOfSchooling,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct YearRange {
    pub min: Option<i32>,
    pub max: Option<i32>,
}

/// What an occupation (or status) value stands for when it is not an occupation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpecialValue {
    State(StateId),
    /// Not observed: the year becomes a gap.
    Missing,
    /// Employed: the occupation variable decides.
    Employed,
}

fn special_value(s: &str, taxonomy: &Taxonomy) -> Option<SpecialValue> {
    match s.trim().to_ascii_lowercase().as_str() {
        "missing" | "gap" => Some(SpecialValue::Missing),
        "employed" | "working" => Some(SpecialValue::Employed),
        other => SpecialState::from_code(other).map(|st| SpecialValue::State(taxonomy.special(st))),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLongColumns {
    worker_id: String,
    year: String,
    occupation: String,
    dataset: Option<String>,
    education: Option<String>,
    gender: Option<String>,
    ethnicity: Option<String>,
    region: Option<String>,
    birth_year: Option<String>,
    weight: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOccupation {
    scheme: String,
    #[serde(default)]
    special: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLong {
    dataset: Option<String>,
    columns: RawLongColumns,
    occupation: RawOccupation,
    #[serde(default)]
    values: ValueMaps,
    #[serde(default)]
    education_coding: EducationCoding,
    #[serde(default)]
    years: YearRange,
}

/// A checked mapping of the `long` layout.
#[derive(Debug, Clone)]
pub struct LongMapping {
    pub(crate) dataset: String,
    pub(crate) worker_id: String,
    pub(crate) year: String,
    pub(crate) occupation: String,
    pub(crate) dataset_column: Option<String>,
    pub(crate) education: Option<String>,
    pub(crate) gender: Option<String>,
    pub(crate) ethnicity: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) birth_year: Option<String>,
    pub(crate) weight: Option<String>,
    pub(crate) scheme: Scheme,
    pub(crate) special: BTreeMap<String, SpecialValue>,
    pub(crate) values: ValueMaps,
    pub(crate) education_coding: EducationCoding,
    pub(crate) years: (i32, i32),
}

fn mapping_err(file: &str, detail: impl Into<String>) -> Error {
    Error::Mapping {
        file: file.to_string(),
        detail: detail.into(),
    }
}

fn check_values(file: &str, values: &ValueMaps) -> Result<()> {
    fn check(
        file: &str,
        table: &Option<BTreeMap<String, String>>,
        vocab: &str,
        ok: impl Fn(&str) -> bool,
    ) -> Result<()> {
        for (raw, canon) in table.iter().flatten() {
            if !ok(canon) {
                return Err(mapping_err(
                    file,
                    format!(
                        "[values.{vocab}] maps `{raw}` to `{canon}`, which is not a {vocab} category"
                    ),
                ));
            }
        }
        Ok(())
    }
    check(file, &values.gender, "gender", |s| {
        Gender::from_key(s).is_some()
    })?;
    check(file, &values.ethnicity, "ethnicity", |s| {
        Ethnicity::from_key(s).is_some()
    })?;
    check(file, &values.region, "region", |s| {
        Region::from_key(s).is_some()
    })?;
    check(file, &values.education, "education", |s| {
        Education::from_key(s).is_some()
    })
}

fn check_scheme(file: &str, scheme: &str, taxonomy: &Taxonomy) -> Result<Scheme> {
    let s: Scheme = scheme
        .parse()
        .map_err(|_| mapping_err(file, "empty occupation scheme"))?;
    if !taxonomy.supports(&s) {
        let known: Vec<&str> = taxonomy.schemes().collect();
        return Err(mapping_err(
            file,
            format!(
                "occupation scheme `{scheme}` has no crosswalk in taxonomy `{}` (known: native, title, {})",
                taxonomy.name(),
                known.join(", ")
            ),
        ));
    }
    Ok(s)
}

fn parse_special(
    file: &str,
    table: &BTreeMap<String, String>,
    taxonomy: &Taxonomy,
    what: &str,
) -> Result<BTreeMap<String, SpecialValue>> {
    table
        .iter()
        .map(|(raw, v)| {
            special_value(v, taxonomy)
                .map(|sv| (raw.trim().to_string(), sv))
                .ok_or_else(|| {
                    mapping_err(
                        file,
                        format!("{what} maps `{raw}` to `{v}`; expected education, unemployed, not_in_labor_force, employed or missing"),
                    )
                })
        })
        .collect()
}

impl LongMapping {
    pub(crate) fn parse(text: &str, file: &str, taxonomy: &Taxonomy) -> Result<Self> {
        let raw: RawLong = toml::from_str(text).map_err(|e| mapping_err(file, e.to_string()))?;
        check_values(file, &raw.values)?;
        let scheme = check_scheme(file, &raw.occupation.scheme, taxonomy)?;
        let special = parse_special(
            file,
            &raw.occupation.special,
            taxonomy,
            "[occupation.special]",
        )?;
        if raw.dataset.is_none() && raw.columns.dataset.is_none() {
            return Err(mapping_err(
                file,
                "give `dataset = \"name\"` or a `dataset` column",
            ));
        }
        Ok(Self {
            dataset: raw.dataset.unwrap_or_default(),
            worker_id: raw.columns.worker_id,
            year: raw.columns.year,
            occupation: raw.columns.occupation,
            dataset_column: raw.columns.dataset,
            education: raw.columns.education,
            gender: raw.columns.gender,
            ethnicity: raw.columns.ethnicity,
            region: raw.columns.region,
            birth_year: raw.columns.birth_year,
            weight: raw.columns.weight,
            scheme,
            special,
            values: raw.values,
            education_coding: raw.education_coding,
            years: (raw.years.min.unwrap_or(1900), raw.years.max.unwrap_or(2100)),
        })
    }
}

/// The worker id of a wide file: one variable, or PSID's interview and person numbers.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum IdSpec {
    One(String),
    Psid { interview: String, person: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaveVars {
    pub year: i32,
    pub occupation: Option<String>,
    pub scheme: Option<String>,
    pub education: Option<String>,
    pub status: Option<String>,
    pub region: Option<String>,
    /// Occupation codes are stored multiplied by this (NLSY97 writes 2000-Census codes × 10).
    pub code_divisor: Option<u32>,
}

fn default_missing() -> Vec<i64> {
    vec![-1, -2, -3]
}
fn default_non_interview() -> Vec<i64> {
    vec![-5]
}
fn default_valid_skip() -> Vec<i64> {
    vec![-4]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWide {
    dataset: String,
    worker_id: IdSpec,
    gender: Option<String>,
    ethnicity: Option<String>,
    region: Option<String>,
    birth_year: Option<String>,
    #[serde(default)]
    birth_year_offset: i32,
    weight: Option<String>,
    #[serde(default)]
    values: ValueMaps,
    #[serde(default)]
    education_coding: EducationCoding,
    #[serde(default)]
    status: BTreeMap<String, String>,
    #[serde(default = "default_missing")]
    missing_codes: Vec<i64>,
    #[serde(default = "default_non_interview")]
    non_interview_codes: Vec<i64>,
    #[serde(default = "default_valid_skip")]
    valid_skip_codes: Vec<i64>,
    scheme: Option<String>,
    layout: Option<BTreeMap<String, [usize; 2]>>,
    years: Vec<WaveVars>,
}

/// A checked variable map of the NLSY or PSID layouts.
#[derive(Debug, Clone)]
pub struct WideMapping {
    pub(crate) file: String,
    pub(crate) dataset: String,
    pub(crate) worker_id: IdSpec,
    pub(crate) gender: Option<String>,
    pub(crate) ethnicity: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) birth_year: Option<String>,
    pub(crate) birth_year_offset: i32,
    pub(crate) weight: Option<String>,
    pub(crate) values: ValueMaps,
    pub(crate) education_coding: EducationCoding,
    pub(crate) status: BTreeMap<String, SpecialValue>,
    pub(crate) missing_codes: Vec<i64>,
    pub(crate) non_interview_codes: Vec<i64>,
    pub(crate) valid_skip_codes: Vec<i64>,
    pub(crate) layout: Option<BTreeMap<String, (usize, usize)>>,
    pub(crate) years: Vec<(WaveVars, Scheme)>,
}

impl WideMapping {
    pub(crate) fn parse(text: &str, file: &str, taxonomy: &Taxonomy) -> Result<Self> {
        let raw: RawWide = toml::from_str(text).map_err(|e| mapping_err(file, e.to_string()))?;
        check_values(file, &raw.values)?;
        let status = parse_special(file, &raw.status, taxonomy, "[status]")?;
        if raw.years.is_empty() {
            return Err(mapping_err(file, "no [[years]] entries"));
        }
        let mut years = Vec::with_capacity(raw.years.len());
        let mut seen = std::collections::HashSet::new();
        for w in raw.years {
            if !seen.insert(w.year) {
                return Err(mapping_err(
                    file,
                    format!("year {} appears twice in [[years]]", w.year),
                ));
            }
            if w.occupation.is_none() && w.status.is_none() {
                return Err(mapping_err(
                    file,
                    format!("year {} names neither `occupation` nor `status`", w.year),
                ));
            }
            let scheme_name = w
                .scheme
                .clone()
                .or_else(|| raw.scheme.clone())
                .unwrap_or_else(|| "native".into());
            let scheme = check_scheme(file, &scheme_name, taxonomy)?;
            if w.code_divisor == Some(0) {
                return Err(mapping_err(
                    file,
                    format!("year {}: code_divisor must be positive", w.year),
                ));
            }
            years.push((w, scheme));
        }
        years.sort_by_key(|(w, _)| w.year);
        let layout = match raw.layout {
            None => None,
            Some(l) => {
                let mut out = BTreeMap::new();
                for (name, [a, b]) in l {
                    if a == 0 || b < a {
                        return Err(mapping_err(
                            file,
                            format!(
                                "[layout] {name} = [{a}, {b}] is not a 1-based inclusive column range"
                            ),
                        ));
                    }
                    out.insert(name, (a, b));
                }
                Some(out)
            }
        };
        let m = Self {
            file: file.to_string(),
            dataset: raw.dataset,
            worker_id: raw.worker_id,
            gender: raw.gender,
            ethnicity: raw.ethnicity,
            region: raw.region,
            birth_year: raw.birth_year,
            birth_year_offset: raw.birth_year_offset,
            weight: raw.weight,
            values: raw.values,
            education_coding: raw.education_coding,
            status,
            missing_codes: raw.missing_codes,
            non_interview_codes: raw.non_interview_codes,
            valid_skip_codes: raw.valid_skip_codes,
            layout,
            years,
        };
        if let Some(layout) = &m.layout {
            for v in m.variables() {
                if !layout.contains_key(v) {
                    return Err(mapping_err(
                        file,
                        format!("variable `{v}` has no column range in [layout]"),
                    ));
                }
            }
        }
        Ok(m)
    }

    /// Every variable the map reads.
    pub(crate) fn variables(&self) -> Vec<&str> {
        let mut v: Vec<&str> = match &self.worker_id {
            IdSpec::One(s) => vec![s.as_str()],
            IdSpec::Psid { interview, person } => vec![interview.as_str(), person.as_str()],
        };
        for s in [
            &self.gender,
            &self.ethnicity,
            &self.region,
            &self.birth_year,
            &self.weight,
        ]
        .into_iter()
        .flatten()
        {
            v.push(s);
        }
        for (w, _) in &self.years {
            for s in [&w.occupation, &w.education, &w.status, &w.region]
                .into_iter()
                .flatten()
            {
                v.push(s);
            }
        }
        v
    }
}

/// Reads an education value under `coding`.
pub(crate) fn map_education(
    raw: &str,
    coding: EducationCoding,
    table: &Option<BTreeMap<String, String>>,
    location: impl FnOnce() -> Location,
) -> Result<Education> {
    match coding {
        EducationCoding::Categories => map_value(
            raw,
            table,
            Education::from_key,
            Education::VOCABULARY,
            location,
        ),
        EducationCoding::YearsOfSchooling => match raw.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Education::from_years_of_schooling(x.floor() as i64)),
            _ => Err(Error::Malformed {
                location: location(),
                detail: format!("`{raw}` is not a number of years of schooling"),
            }),
        },
    }
}
