//! The outcome taxonomy: occupations plus the special states, with crosswalks from survey codes.
//!
//! The built-in taxonomy is **occ1990dd**, the harmonised 1990 Census occupation classification
//! of Autor and Dorn (2013) as maintained by David Dorn, with an English title per code, plus the
//! three special states of the paper: *in education*, *unemployed* and *not in labor force*.
//! Crosswalks map the Census occupation codes of 1970, 1980, 1990, 2000 and 2010 (the codes NLSY79,
//! NLSY97 and PSID use in different years) onto it; their provenance is in `data/crosswalk/`.
//!
//! Every outcome has a stable [`StateId`] (its row in the table), a code and a unique title, and
//! can be looked up both ways. A user taxonomy (a CSV of `code,title`) replaces the built-in one
//! for other surveys and countries; the special states are appended when it lacks them.
//!
//! ```
//! use labor_data::{Scheme, SpecialState, Taxonomy};
//! let tax = Taxonomy::occ1990dd();
//! let teachers = tax.id_of_code("156").unwrap();
//! assert_eq!(tax.id_of_title(tax.title(teachers)), Some(teachers));
//! assert_eq!(tax.special_of(tax.special(SpecialState::Unemployed)), Some(SpecialState::Unemployed));
//! // Census 2010 code 2310 (elementary and middle school teachers) is occ1990dd 156.
//! let scheme: Scheme = "census2010".parse().unwrap();
//! assert_eq!(tax.resolve(&scheme, "2310"), Some(teachers));
//! assert_eq!(tax.numbered(1).label(teachers).len(), "job_000".len());
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Location, Result};
use labor_rand::SeededRng;

/// Index of an outcome in its [`Taxonomy`]: stable for a given taxonomy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StateId(pub u16);

impl StateId {
    /// The id as an index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The non-occupation states of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecialState {
    /// In education (enrolled in school, college or training).
    InEducation,
    /// Unemployed (looking for work).
    Unemployed,
    /// Not in the labor force.
    NotInLaborForce,
}

impl SpecialState {
    /// All three, in taxonomy order.
    pub const ALL: [SpecialState; 3] = [
        SpecialState::InEducation,
        SpecialState::Unemployed,
        SpecialState::NotInLaborForce,
    ];

    /// The code of the state in every taxonomy (CAREER's token names).
    pub fn code(self) -> &'static str {
        match self {
            SpecialState::InEducation => "education",
            SpecialState::Unemployed => "unemployed",
            SpecialState::NotInLaborForce => "not_in_labor_force",
        }
    }

    /// The default English title.
    pub fn default_title(self) -> &'static str {
        match self {
            SpecialState::InEducation => "In education",
            SpecialState::Unemployed => "Unemployed",
            SpecialState::NotInLaborForce => "Not in labor force",
        }
    }

    /// Parses a code (`"unemployed"`), also accepting `"nilf"` and `"in_education"`.
    pub fn from_code(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "education" | "in_education" => Some(SpecialState::InEducation),
            "unemployed" => Some(SpecialState::Unemployed),
            "not_in_labor_force" | "nilf" | "oolf" => Some(SpecialState::NotInLaborForce),
            _ => None,
        }
    }
}

/// One outcome: an occupation or a special state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Code (occ1990dd code, or the special state's code).
    pub code: String,
    /// Unique English title.
    pub title: String,
    /// `Some` for the special states.
    pub special: Option<SpecialState>,
}

/// How an occupation value in an input file is to be read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scheme {
    /// Codes of the taxonomy itself (`occ1990dd` for the built-in one).
    Native,
    /// Free-text titles, matched to the taxonomy's titles ignoring case.
    Title,
    /// Codes of a crosswalked classification, e.g. `census1980`.
    Crosswalk(String),
}

impl FromStr for Scheme {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        Ok(match s.as_str() {
            "native" | "occ1990dd" => Scheme::Native,
            "title" | "titles" => Scheme::Title,
            "" => {
                return Err(Error::InvalidArgument {
                    name: "scheme",
                    detail: "empty scheme name".into(),
                });
            }
            _ => Scheme::Crosswalk(s),
        })
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scheme::Native => f.write_str("native"),
            Scheme::Title => f.write_str("title"),
            Scheme::Crosswalk(s) => f.write_str(s),
        }
    }
}

/// Normalises a code for lookup: trimmed; numeric codes lose leading zeros (`"0010"` → `"10"`);
/// other codes are lower-cased.
pub fn normalize_code(code: &str) -> String {
    let c = code.trim();
    if !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) {
        let stripped = c.trim_start_matches('0');
        if stripped.is_empty() {
            "0".to_string()
        } else {
            stripped.to_string()
        }
    } else {
        c.to_ascii_lowercase()
    }
}

/// A trimming CSV reader over a taxonomy or crosswalk table, with its header row.
fn table_reader<R: Read>(reader: R, file: &str) -> Result<(csv::Reader<R>, csv::StringRecord)> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = rdr
        .headers()
        .map_err(|e| Error::Taxonomy {
            location: Location::new(file, 1, ""),
            detail: e.to_string(),
        })?
        .clone();
    Ok((rdr, headers))
}

const BUILTIN_NAME: &str = "occ1990dd";
const OCC1990DD_CSV: &str = include_str!("../data/occ1990dd.csv");
const BUILTIN_CROSSWALKS: [(&str, &str); 5] = [
    (
        "census1970",
        include_str!("../data/crosswalk/census1970.csv"),
    ),
    (
        "census1980",
        include_str!("../data/crosswalk/census1980.csv"),
    ),
    (
        "census1990",
        include_str!("../data/crosswalk/census1990.csv"),
    ),
    (
        "census2000",
        include_str!("../data/crosswalk/census2000.csv"),
    ),
    (
        "census2010",
        include_str!("../data/crosswalk/census2010.csv"),
    ),
];

/// The outcome space: occupations plus special states, with lookups and crosswalks.
#[derive(Clone)]
pub struct Taxonomy {
    name: String,
    builtin: bool,
    outcomes: Vec<Outcome>,
    by_code: HashMap<String, StateId>,
    by_title: HashMap<String, StateId>,
    special: [StateId; 3],
    crosswalks: BTreeMap<String, HashMap<String, StateId>>,
}

impl fmt::Debug for Taxonomy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Taxonomy")
            .field("name", &self.name)
            .field("outcomes", &self.outcomes.len())
            .field("crosswalks", &self.crosswalks.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PartialEq for Taxonomy {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.outcomes == other.outcomes
    }
}

impl Taxonomy {
    /// The built-in occ1990dd taxonomy with the Census 1970-2010 crosswalks.
    pub fn occ1990dd() -> Self {
        // The embedded tables are checked by the test suite; failing to parse them is a bug of
        // this crate, not a user error.
        #[allow(clippy::expect_used)]
        let mut tax = Self::from_csv_reader(BUILTIN_NAME, OCC1990DD_CSV.as_bytes())
            .expect("embedded occ1990dd table is valid");
        tax.builtin = true;
        for (scheme, table) in BUILTIN_CROSSWALKS {
            #[allow(clippy::expect_used)]
            let t = tax
                .with_crosswalk_reader(scheme, table.as_bytes())
                .expect("embedded crosswalk is valid");
            tax = t;
        }
        tax
    }

    /// Reads a taxonomy from CSV with header `code,title` and an optional `kind` column
    /// (`occupation`, or a special state's code). Missing special states are appended.
    ///
    /// # Errors
    /// [`Error::Taxonomy`] naming the line for a missing column, an empty or duplicate code or
    /// title, or more than 65,535 outcomes.
    pub fn from_csv_reader(name: &str, reader: impl Read) -> Result<Self> {
        Self::from_csv_named(name, reader, format!("<taxonomy {name}>"))
    }

    fn from_csv_named(name: &str, reader: impl Read, file: String) -> Result<Self> {
        let (mut rdr, headers) = table_reader(reader, &file)?;
        let col = |n: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(n));
        let (Some(code_col), Some(title_col)) = (col("code"), col("title")) else {
            return Err(Error::Taxonomy {
                location: Location::new(&file, 1, ""),
                detail: "header must contain `code` and `title`".into(),
            });
        };
        let kind_col = col("kind");
        let mut outcomes = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| Error::Taxonomy {
                location: Location::new(&file, e.position().map_or(0, |p| p.line()), ""),
                detail: e.to_string(),
            })?;
            let line = rec.position().map_or(0, |p| p.line());
            let code = rec.get(code_col).unwrap_or("").to_string();
            let title = rec.get(title_col).unwrap_or("").to_string();
            let special = match kind_col.and_then(|k| rec.get(k)) {
                None | Some("") => None,
                Some(k) if k.eq_ignore_ascii_case("occupation") => None,
                Some(k) => Some(SpecialState::from_code(k).ok_or_else(|| Error::Taxonomy {
                    location: Location::new(&file, line, "kind"),
                    detail: format!("unknown kind `{k}`"),
                })?),
            };
            let special = special.or_else(|| SpecialState::from_code(&code));
            outcomes.push((
                line,
                Outcome {
                    code,
                    title,
                    special,
                },
            ));
        }
        for s in SpecialState::ALL {
            if !outcomes.iter().any(|(_, o)| o.special == Some(s)) {
                outcomes.push((
                    0,
                    Outcome {
                        code: s.code().to_string(),
                        title: s.default_title().to_string(),
                        special: Some(s),
                    },
                ));
            }
        }
        Self::from_outcomes(name, &file, outcomes)
    }

    /// Reads a taxonomy CSV file (see [`Taxonomy::from_csv_reader`]); its name is the file stem, and
    /// errors name the file.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, else as [`Taxonomy::from_csv_reader`].
    pub fn from_csv_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let name = path.file_stem().map_or_else(
            || "custom".to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        Self::from_csv_named(&name, file, path.display().to_string())
    }

    fn from_outcomes(name: &str, file: &str, outcomes: Vec<(u64, Outcome)>) -> Result<Self> {
        if outcomes.len() > u16::MAX as usize {
            return Err(Error::Taxonomy {
                location: Location::new(file, 0, ""),
                detail: format!("{} outcomes, at most {} allowed", outcomes.len(), u16::MAX),
            });
        }
        let mut by_code = HashMap::new();
        let mut by_title = HashMap::new();
        let mut special = [StateId(0); 3];
        let mut list = Vec::with_capacity(outcomes.len());
        for (i, (line, o)) in outcomes.into_iter().enumerate() {
            let id = StateId(i as u16);
            let err = |column: &str, detail: String| Error::Taxonomy {
                location: Location::new(file, line, column),
                detail,
            };
            if o.code.trim().is_empty() {
                return Err(err("code", "empty code".into()));
            }
            if o.title.trim().is_empty() || o.title.contains(['\n', '\r']) {
                return Err(err("title", format!("invalid title `{}`", o.title)));
            }
            if by_code.insert(normalize_code(&o.code), id).is_some() {
                return Err(err("code", format!("duplicate code `{}`", o.code)));
            }
            if by_title.insert(o.title.to_lowercase(), id).is_some() {
                return Err(err("title", format!("duplicate title `{}`", o.title)));
            }
            if let Some(s) = o.special {
                special[SpecialState::ALL.iter().position(|x| *x == s).unwrap_or(0)] = id;
            }
            list.push(o);
        }
        Ok(Self {
            name: name.to_string(),
            builtin: false,
            outcomes: list,
            by_code,
            by_title,
            special,
            crosswalks: BTreeMap::new(),
        })
    }

    /// Adds a crosswalk from the codes of `scheme` (e.g. `census1980`) onto this taxonomy's codes.
    /// The CSV needs a `source_code` column and a target column named `target_code`, `code` or
    /// the taxonomy's name (`occ1990dd`); other columns are ignored.
    ///
    /// # Errors
    /// [`Error::Taxonomy`] for a missing column, a repeated source code or a target code that is
    /// not in the taxonomy, naming the line.
    pub fn with_crosswalk_reader(self, scheme: &str, reader: impl Read) -> Result<Self> {
        self.crosswalk_from(scheme, reader, format!("<crosswalk {scheme}>"))
    }

    /// [`Taxonomy::with_crosswalk_reader`] on the file at `path`; errors name the file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, else as [`Taxonomy::with_crosswalk_reader`].
    pub fn with_crosswalk_path(self, scheme: &str, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        self.crosswalk_from(scheme, file, path.display().to_string())
    }

    /// The taxonomy of the CSV file at `path` (see [`Taxonomy::from_csv_path`]) with the
    /// crosswalks of `crosswalks` (scheme, CSV file; see [`Taxonomy::with_crosswalk_path`]), or
    /// the built-in [`Taxonomy::occ1990dd`] when no path is given: what a command's
    /// `--taxonomy FILE [--crosswalk SCHEME=FILE ...]` names.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for crosswalks without a taxonomy file, else as the two
    /// readers.
    pub fn from_files(path: Option<&Path>, crosswalks: &[(String, PathBuf)]) -> Result<Self> {
        let Some(path) = path else {
            if crosswalks.is_empty() {
                return Ok(Self::occ1990dd());
            }
            return Err(Error::InvalidArgument {
                name: "crosswalk",
                detail: "a crosswalk maps onto a taxonomy file; give one".into(),
            });
        };
        crosswalks
            .iter()
            .try_fold(Self::from_csv_path(path)?, |tax, (scheme, file)| {
                tax.with_crosswalk_path(scheme, file)
            })
    }

    fn crosswalk_from(mut self, scheme: &str, reader: impl Read, file: String) -> Result<Self> {
        let (mut rdr, headers) = table_reader(reader, &file)?;
        let col = |n: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(n));
        let src = col("source_code");
        let dst = col("target_code")
            .or_else(|| col(&self.name))
            .or_else(|| col("code"));
        let (Some(src), Some(dst)) = (src, dst) else {
            return Err(Error::Taxonomy {
                location: Location::new(&file, 1, ""),
                detail: format!(
                    "header must contain `source_code` and `target_code` (or `{}`)",
                    self.name
                ),
            });
        };
        let mut map = HashMap::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| Error::Taxonomy {
                location: Location::new(&file, e.position().map_or(0, |p| p.line()), ""),
                detail: e.to_string(),
            })?;
            let line = rec.position().map_or(0, |p| p.line());
            let s = normalize_code(rec.get(src).unwrap_or(""));
            let t = rec.get(dst).unwrap_or("");
            let id = self.id_of_code(t).ok_or_else(|| Error::Taxonomy {
                location: Location::new(&file, line, headers.get(dst).unwrap_or("target_code")),
                detail: format!("target code `{t}` is not in taxonomy `{}`", self.name),
            })?;
            if map.insert(s.clone(), id).is_some() {
                return Err(Error::Taxonomy {
                    location: Location::new(&file, line, "source_code"),
                    detail: format!("duplicate source code `{s}`"),
                });
            }
        }
        self.crosswalks
            .insert(scheme.trim().to_ascii_lowercase(), map);
        Ok(self)
    }

    /// The taxonomy's name (`occ1990dd` for the built-in one).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `true` for [`Taxonomy::occ1990dd`].
    pub fn is_builtin(&self) -> bool {
        self.builtin
    }

    /// Number of outcomes, special states included.
    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    /// `true` if there are no outcomes (never for a valid taxonomy).
    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    /// All outcomes with their ids.
    pub fn outcomes(&self) -> impl ExactSizeIterator<Item = (StateId, &Outcome)> + '_ {
        self.outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| (StateId(i as u16), o))
    }

    /// The outcome of `id`, or `None` past the end.
    pub fn get(&self, id: StateId) -> Option<&Outcome> {
        self.outcomes.get(id.index())
    }

    /// Checks that `id` belongs to this taxonomy.
    ///
    /// # Errors
    /// [`Error::StateOutOfRange`].
    pub fn check(&self, id: StateId) -> Result<()> {
        if id.index() < self.outcomes.len() {
            Ok(())
        } else {
            Err(Error::StateOutOfRange {
                id: id.0,
                taxonomy: self.name.clone(),
                len: self.outcomes.len(),
            })
        }
    }

    /// The title of `id` (empty for an id outside the taxonomy).
    pub fn title(&self, id: StateId) -> &str {
        self.get(id).map_or("", |o| o.title.as_str())
    }

    /// The code of `id` (empty for an id outside the taxonomy).
    pub fn code(&self, id: StateId) -> &str {
        self.get(id).map_or("", |o| o.code.as_str())
    }

    /// Looks up a code of this taxonomy (`"0156"` and `"156"` are the same code).
    pub fn id_of_code(&self, code: &str) -> Option<StateId> {
        self.by_code.get(&normalize_code(code)).copied()
    }

    /// Looks up a title, ignoring case and surrounding space.
    pub fn id_of_title(&self, title: &str) -> Option<StateId> {
        self.by_title.get(&title.trim().to_lowercase()).copied()
    }

    /// The id of a special state.
    pub fn special(&self, state: SpecialState) -> StateId {
        self.special[SpecialState::ALL
            .iter()
            .position(|s| *s == state)
            .unwrap_or(0)]
    }

    /// The special state of `id`, `None` for occupations.
    pub fn special_of(&self, id: StateId) -> Option<SpecialState> {
        self.get(id).and_then(|o| o.special)
    }

    /// `true` if `id` is an occupation (not a special state).
    pub fn is_occupation(&self, id: StateId) -> bool {
        self.get(id).is_some_and(|o| o.special.is_none())
    }

    /// Ids of the occupations, in table order.
    pub fn occupation_ids(&self) -> Vec<StateId> {
        self.outcomes()
            .filter(|(_, o)| o.special.is_none())
            .map(|(id, _)| id)
            .collect()
    }

    /// Names of the crosswalked schemes (`census1970`, ... for the built-in taxonomy).
    pub fn schemes(&self) -> impl Iterator<Item = &str> + '_ {
        self.crosswalks.keys().map(String::as_str)
    }

    /// The crosswalk of `scheme` as (normalised source code, outcome) pairs, sorted by code.
    pub fn crosswalk(&self, scheme: &str) -> Option<Vec<(&str, StateId)>> {
        self.crosswalks.get(scheme).map(|m| {
            let mut v: Vec<_> = m.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            v.sort_by_key(|(k, _)| (k.len(), *k));
            v
        })
    }

    /// `true` if values of `scheme` can be resolved (native and title always can).
    pub fn supports(&self, scheme: &Scheme) -> bool {
        match scheme {
            Scheme::Native | Scheme::Title => true,
            Scheme::Crosswalk(s) => self.crosswalks.contains_key(s),
        }
    }

    /// Resolves an occupation value of `scheme` to an outcome; special-state codes
    /// (`unemployed`, ...) resolve in every scheme.
    pub fn resolve(&self, scheme: &Scheme, value: &str) -> Option<StateId> {
        if let Some(s) = SpecialState::from_code(value) {
            return Some(self.special(s));
        }
        match scheme {
            Scheme::Native => self.id_of_code(value),
            Scheme::Title => self.id_of_title(value),
            Scheme::Crosswalk(s) => self
                .crosswalks
                .get(s)
                .and_then(|m| m.get(&normalize_code(value)).copied()),
        }
    }

    /// The table as CSV (`code,title,kind`), readable by [`Taxonomy::from_csv_reader`].
    pub fn to_csv_string(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut out = Ok(());
        out = out.and(w.write_record(["code", "title", "kind"]));
        for o in &self.outcomes {
            let kind = o.special.map_or("occupation", SpecialState::code);
            out = out.and(w.write_record([o.code.as_str(), o.title.as_str(), kind]));
        }
        // Writing to a Vec cannot fail.
        debug_assert!(out.is_ok());
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// The numbered-title view: every outcome gets a `job_NNN` label from a seeded permutation
    /// (the paper's ablation that hides what the title says).
    pub fn numbered(&self, seed: u64) -> NumberedTitles {
        let mut perm: Vec<usize> = (0..self.len()).collect();
        SeededRng::new(seed ^ 0x6a6f_625f_6e75_6d62).shuffle(&mut perm);
        let width = (self.len().saturating_sub(1)).to_string().len().max(3);
        let labels: Vec<String> = perm.iter().map(|n| format!("job_{n:0width$}")).collect();
        let index = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), StateId(i as u16)))
            .collect();
        NumberedTitles { labels, index }
    }
}

/// `job_NNN` labels for every outcome of a taxonomy (see [`Taxonomy::numbered`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberedTitles {
    labels: Vec<String>,
    index: HashMap<String, StateId>,
}

impl NumberedTitles {
    /// The label of `id` (empty past the end).
    pub fn label(&self, id: StateId) -> &str {
        self.labels.get(id.index()).map_or("", String::as_str)
    }

    /// The outcome carrying `label`.
    pub fn id_of_label(&self, label: &str) -> Option<StateId> {
        self.index.get(label.trim()).copied()
    }

    /// All labels, indexed by [`StateId`].
    pub fn labels(&self) -> &[String] {
        &self.labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_codes() {
        assert_eq!(normalize_code(" 0010 "), "10");
        assert_eq!(normalize_code("000"), "0");
        assert_eq!(normalize_code("NILF"), "nilf");
    }

    #[test]
    fn user_taxonomy_gets_special_states_and_rejects_duplicates() {
        let t =
            Taxonomy::from_csv_reader("toy", "code,title\nA,Baker\nB,Cook\n".as_bytes()).unwrap();
        assert_eq!(t.len(), 5);
        assert_eq!(
            t.special_of(StateId(4)),
            Some(SpecialState::NotInLaborForce)
        );
        let err = Taxonomy::from_csv_reader("toy", "code,title\nA,Baker\nB,baker\n".as_bytes())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "<taxonomy toy>:3: column `title`: invalid taxonomy table: duplicate title `baker`"
        );
    }

    #[test]
    fn numbered_titles_are_a_permutation() {
        let t = Taxonomy::occ1990dd();
        let n = t.numbered(7);
        let mut labels: Vec<&String> = n.labels().iter().collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), t.len());
        assert_eq!(n, t.numbered(7));
        assert_ne!(n, t.numbered(8));
        for (id, _) in t.outcomes() {
            assert_eq!(n.id_of_label(n.label(id)), Some(id));
        }
    }
}
