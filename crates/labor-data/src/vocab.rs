//! The canonical vocabularies of the panel: gender, race/ethnicity, region and education.
//!
//! Each category has a stable snake-case key (what files store) and an English label (what the
//! paper's templates print, e.g. `"graduate degree"`, `"northcentral"`). Every vocabulary has an
//! `Unknown` value, so that a covariate a survey lacks is explicit rather than dropped.
//!
//! ```
//! use labor_data::{Education, Region};
//! assert_eq!(Education::from_key("some_college"), Some(Education::SomeCollege));
//! assert_eq!(Education::SomeCollege.label(), "some college");
//! assert_eq!(Region::NorthCentral.label(), "northcentral");
//! assert_eq!(Education::from_years_of_schooling(16), Education::College);
//! ```

use serde::{Deserialize, Serialize};

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $vocab:literal, { $($(#[$vmeta:meta])* $variant:ident => ($key:literal, $label:literal)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// Not known (the survey lacks it, or the respondent did not answer).
            #[default]
            Unknown,
        }

        impl $name {
            /// Every category, `Unknown` last.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+ $name::Unknown];
            /// The name of this vocabulary, as used in error messages and mapping files.
            pub const VOCABULARY: &'static str = $vocab;

            /// The stable snake-case key stored in files.
            pub fn key(self) -> &'static str {
                match self {
                    $($name::$variant => $key,)+
                    $name::Unknown => "unknown",
                }
            }

            /// The English label used in text templates.
            pub fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                    $name::Unknown => "unknown",
                }
            }

            /// Parses a key (`"some_college"`) or a label (`"some college"`), ignoring case.
            pub fn from_key(s: &str) -> Option<Self> {
                let s = s.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.key().eq_ignore_ascii_case(s) || v.label().eq_ignore_ascii_case(s))
            }

            /// Index of the category in [`Self::ALL`].
            pub fn index(self) -> usize {
                Self::ALL.iter().position(|v| *v == self).unwrap_or(Self::ALL.len() - 1)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.key())
            }
        }
    };
}

vocabulary!(
    /// Gender as recorded by the survey.
    Gender, "gender", {
        /// Male.
        Male => ("male", "male"),
        /// Female.
        Female => ("female", "female"),
    }
);

vocabulary!(
    /// Race/ethnicity, in the categories NLSY and PSID share.
    ///
    /// NLSY79's cohort variable has Hispanic, Black, and non-Black non-Hispanic; the last is
    /// stored as [`Ethnicity::White`] (as in the paper's templates).
    Ethnicity, "ethnicity", {
        /// White (non-Black, non-Hispanic).
        White => ("white", "white"),
        /// Black or African American.
        Black => ("black", "black or african american"),
        /// Hispanic or Latino.
        Hispanic => ("hispanic", "hispanic"),
        /// Any other group.
        Other => ("other", "other race"),
    }
);

vocabulary!(
    /// US Census region of residence.
    Region, "region", {
        /// Northeast.
        Northeast => ("northeast", "northeast"),
        /// North central (Midwest).
        NorthCentral => ("northcentral", "northcentral"),
        /// South.
        South => ("south", "south"),
        /// West.
        West => ("west", "west"),
    }
);

vocabulary!(
    /// Highest education level attained by that year.
    Education, "education", {
        /// Fewer than 12 years of schooling, no diploma.
        LessThanHighSchool => ("less_than_high_school", "less than high school"),
        /// High school diploma or equivalent (12 years).
        HighSchool => ("high_school", "high school"),
        /// Some college, including associate degrees (13-15 years).
        SomeCollege => ("some_college", "some college"),
        /// Bachelor's degree (16 years).
        College => ("college", "college"),
        /// Graduate or professional degree (17 years and more).
        GraduateDegree => ("graduate_degree", "graduate degree"),
    }
);

impl Education {
    /// Harmonises "highest grade completed" (years of schooling, as NLSY's `HGC` and PSID's
    /// completed-education variables record it): 0-11 less than high school, 12 high school,
    /// 13-15 some college, 16 college, 17 and more graduate degree; negative values are unknown.
    pub fn from_years_of_schooling(years: i64) -> Self {
        match years {
            i64::MIN..=-1 => Education::Unknown,
            0..=11 => Education::LessThanHighSchool,
            12 => Education::HighSchool,
            13..=15 => Education::SomeCollege,
            16 => Education::College,
            _ => Education::GraduateDegree,
        }
    }

    /// The ordinal level (0 = less than high school ... 4 = graduate degree), `None` when unknown.
    pub fn level(self) -> Option<u8> {
        match self {
            Education::Unknown => None,
            e => Some(e.index() as u8),
        }
    }
}
