//! The presets: survey waves, cohorts and demographic mix of PSID81, NLSY79 and NLSY97.

use crate::error::{Error, Result};

/// The three survey-shaped presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Preset {
    /// PSID from 1981: a household panel with entries and exits, annual to 1997, biennial after.
    Psid81,
    /// NLSY79: born 1957-1964, annual 1979-1994, biennial 1996-2018.
    Nlsy79,
    /// NLSY97: born 1980-1984, annual 1997-2011, biennial 2013-2021.
    Nlsy97,
}

impl std::str::FromStr for Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "psid81" | "psid" => Ok(Preset::Psid81),
            "nlsy79" => Ok(Preset::Nlsy79),
            "nlsy97" => Ok(Preset::Nlsy97),
            other => Err(Error::InvalidArgument {
                name: "preset",
                detail: format!("unknown preset `{other}` (psid81, nlsy79, nlsy97)"),
            }),
        }
    }
}

/// Statistics a preset is calibrated to reproduce (checked by the test suite within the
/// tolerances stated there). Shares are of observed worker-years.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PresetTargets {
    /// Mean observed years per worker (the surveys' worker-years / workers).
    pub mean_years_per_worker: f64,
    /// Share of years in education.
    pub education_share: f64,
    /// Share of years unemployed.
    pub unemployed_share: f64,
    /// Share of years out of the labor force.
    pub nilf_share: f64,
    /// Share of consecutive occupation-to-occupation records keeping the same occupation.
    pub persistence: f64,
}

/// Everything that defines a preset.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetSpec {
    /// Dataset name written into the panel.
    pub dataset: &'static str,
    /// Number of workers in the real survey sample (the default size).
    pub workers: usize,
    /// Survey years.
    pub waves: Vec<i32>,
    /// Earliest and latest birth year.
    pub birth_years: (i32, i32),
    /// Ages at which a worker is in the career sample.
    pub ages: (i32, i32),
    /// Probability that a worker still in the panel is interviewed at a wave.
    pub response_rate: f64,
    /// Probability of leaving the panel for good after a wave.
    pub attrition: f64,
    /// Probability that a worker is in the panel from its first eligible wave (the others
    /// join at a uniformly drawn later wave, as PSID's new household members do).
    pub present_at_start: f64,
    /// Shares of white, Black, Hispanic and other workers.
    pub ethnicity: [f64; 4],
    /// Shares of the northeast, northcentral, south and west regions.
    pub region: [f64; 4],
    /// Share of women.
    pub female: f64,
    /// Intercept shifts of the education, unemployment and out-of-labor-force logits.
    pub shifts: [f64; 3],
    /// What the generated panels are calibrated to.
    pub targets: PresetTargets,
}

pub(super) fn waves(
    annual: std::ops::RangeInclusive<i32>,
    biennial: std::ops::RangeInclusive<i32>,
) -> Vec<i32> {
    annual.chain(biennial.step_by(2)).collect()
}

impl Preset {
    /// The specification. Worker counts and worker-years per worker are those of the paper's
    /// samples (PSID81 31,056 workers / 313,622 worker-years, NLSY79 12,479 / 259,778, NLSY97
    /// 8,984 / 148,795); shares of special states and persistence are design targets shaped
    /// like survey careers, not measured from the surveys.
    pub fn spec(self) -> PresetSpec {
        match self {
            Preset::Nlsy79 => PresetSpec {
                dataset: "nlsy79",
                workers: 12_479,
                waves: waves(1979..=1994, 1996..=2018),
                birth_years: (1957, 1964),
                ages: (16, 65),
                response_rate: 0.80,
                attrition: 0.006,
                present_at_start: 1.0,
                ethnicity: [0.52, 0.30, 0.18, 0.0],
                region: [0.17, 0.24, 0.40, 0.19],
                female: 0.5,
                shifts: [0.7, 0.0, 0.55],
                targets: PresetTargets {
                    mean_years_per_worker: 20.8,
                    education_share: 0.08,
                    unemployed_share: 0.05,
                    nilf_share: 0.13,
                    persistence: 0.66,
                },
            },
            Preset::Nlsy97 => PresetSpec {
                dataset: "nlsy97",
                workers: 8_984,
                waves: waves(1997..=2011, 2013..=2021),
                birth_years: (1980, 1984),
                ages: (16, 65),
                response_rate: 0.91,
                attrition: 0.004,
                present_at_start: 1.0,
                ethnicity: [0.52, 0.26, 0.21, 0.01],
                region: [0.17, 0.23, 0.40, 0.20],
                female: 0.49,
                shifts: [0.6, 0.35, 0.35],
                targets: PresetTargets {
                    mean_years_per_worker: 16.6,
                    education_share: 0.18,
                    unemployed_share: 0.06,
                    nilf_share: 0.10,
                    persistence: 0.64,
                },
            },
            Preset::Psid81 => PresetSpec {
                dataset: "psid",
                workers: 31_056,
                waves: waves(1981..=1997, 1999..=2019),
                birth_years: (1920, 1998),
                ages: (18, 65),
                response_rate: 0.95,
                attrition: 0.025,
                present_at_start: 0.5,
                ethnicity: [0.58, 0.30, 0.09, 0.03],
                region: [0.15, 0.25, 0.42, 0.18],
                female: 0.52,
                shifts: [1.2, 0.1, 0.45],
                targets: PresetTargets {
                    mean_years_per_worker: 10.1,
                    education_share: 0.03,
                    unemployed_share: 0.05,
                    nilf_share: 0.16,
                    persistence: 0.72,
                },
            },
        }
    }
}
