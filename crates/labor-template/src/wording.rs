//! Every literal string of the templates, with the paper's wording as the default.

use labor_data::{Education, Ethnicity, Gender, Region};
use serde::{Deserialize, Serialize};

/// The literal strings of all templates. `Default` gives the wording of the LABOR-LLM talk;
/// every field can be changed (e.g. for another language), and the whole struct can be read from
/// JSON or TOML with serde.
///
/// Placeholders: `{dataset}`, `{demographics}` (gender and race/ethnicity labels),
/// `{residence}` (the `residence` string with `{region}` filled, or nothing when the region is
/// unknown), `{birth_year}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Wording {
    /// First line of a fine-tuning resume.
    pub resume_header: String,
    /// Demographic sentence of a fine-tuning resume.
    pub resume_intro: String,
    /// The line announcing the entries of a fine-tuning resume.
    pub resume_records: String,
    /// Last line of a fine-tuning resume.
    pub resume_footer: String,
    /// End of the year span of the last entry of a resume (`1992 to present`).
    pub present: String,
    /// First line of a prompt.
    pub prompt_header: String,
    /// Demographic sentence of a prompt.
    pub prompt_intro: String,
    /// The line announcing the entries of a prompt.
    pub prompt_records: String,
    /// Sentence giving the birth year.
    pub birth_year: String,
    /// Residence clause; `{region}` is the region label.
    pub residence: String,
    /// Line introducing the list of valid job titles (one title per following line).
    pub titles_intro: String,
    /// What ends an entry (the continuation ends with it).
    pub terminator: String,
    /// Text between in-context examples and between examples and the prompt.
    pub example_separator: String,
    /// Gender labels: male, female.
    pub gender: [String; 2],
    /// Race/ethnicity labels: white, Black, Hispanic, other.
    pub ethnicity: [String; 4],
    /// Region labels: northeast, northcentral, south, west.
    pub region: [String; 4],
    /// Education labels: less than high school, high school, some college, college, graduate.
    pub education: [String; 5],
    /// Display names of the datasets (`psid` → `PSID`); others are shown as stored.
    pub dataset_names: Vec<(String, String)>,
}

impl Default for Wording {
    fn default() -> Self {
        let s = |x: &str| x.to_string();
        Self {
            resume_header: s("<A Resume from the {dataset} Dataset>"),
            resume_intro: s(
                "The following is the resume of a {demographics} US worker{residence}.",
            ),
            resume_records: s(
                "The worker has the following work experience on the resume, one entry per line, including job code, year, education level and a description of the job:",
            ),
            resume_footer: s("<END OF RESUME>"),
            present: s("present"),
            prompt_header: s("<A worker from the {dataset} dataset>"),
            prompt_intro: s(
                "The following information is available about the work history of a {demographics} US worker{residence}.",
            ),
            prompt_records: s(
                "The worker has the following records of work experience, one entry per line, including year, education level, and the job title:",
            ),
            birth_year: s("The worker was born in {birth_year}."),
            residence: s(" residing in the {region} region"),
            titles_intro: s("The valid job titles are the following, one per line:"),
            terminator: s("\n"),
            example_separator: s("\n"),
            gender: [s("male"), s("female")],
            ethnicity: [
                s("white"),
                s("Black or African American"),
                s("Hispanic"),
                s("other race"),
            ],
            region: [s("northeast"), s("northcentral"), s("south"), s("west")],
            education: [
                s("less than high school"),
                s("high school"),
                s("some college"),
                s("college"),
                s("graduate degree"),
            ],
            dataset_names: vec![
                (s("psid"), s("PSID")),
                (s("nlsy79"), s("NLSY79")),
                (s("nlsy97"), s("NLSY97")),
            ],
        }
    }
}

impl Wording {
    pub(crate) fn gender(&self, g: Gender) -> &str {
        match g {
            Gender::Male => &self.gender[0],
            Gender::Female => &self.gender[1],
            Gender::Unknown => "",
        }
    }

    pub(crate) fn ethnicity(&self, e: Ethnicity) -> &str {
        match e {
            Ethnicity::White => &self.ethnicity[0],
            Ethnicity::Black => &self.ethnicity[1],
            Ethnicity::Hispanic => &self.ethnicity[2],
            Ethnicity::Other => &self.ethnicity[3],
            Ethnicity::Unknown => "",
        }
    }

    pub(crate) fn region(&self, r: Region) -> Option<&str> {
        Some(match r {
            Region::Northeast => &self.region[0],
            Region::NorthCentral => &self.region[1],
            Region::South => &self.region[2],
            Region::West => &self.region[3],
            Region::Unknown => return None,
        })
    }

    pub(crate) fn education(&self, e: Education) -> Option<&str> {
        e.level().map(|l| self.education[l as usize].as_str())
    }

    pub(crate) fn dataset<'a>(&'a self, key: &'a str) -> &'a str {
        self.dataset_names
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map_or(key, |(_, v)| v.as_str())
    }
}
