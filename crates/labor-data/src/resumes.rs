//! A resume-like corpus for pretraining CAREER, made from any panel (in practice a large
//! synthetic one drawn with another seed or preset than the survey).
//!
//! CAREER's pretraining corpus (23.7 M resumes) is proprietary. Resumes differ from surveys in
//! three ways the transform reproduces: they list jobs only (no unemployment, education or
//! out-of-labour-force spells: records in special states are dropped), they say nothing of
//! ethnicity or gender (both set to `Unknown`, so those embeddings stay untrained until
//! fine-tuning, as in the paper), and a career with no job left is dropped. Years, education
//! and region are kept. Fine-tuning on the survey then loads every weight and trains all of them
//! with a fresh optimizer (`labor_model::TrainBuilder::with_pretrained`).
//!
//! ```
//! use std::sync::Arc;
//! use labor_data::{Education, Ethnicity, Panel, SpecialState, Taxonomy, Worker, YearRecord};
//! use labor_data::resume_corpus;
//! let tax = Arc::new(Taxonomy::occ1990dd());
//! let unemployed = tax.special(SpecialState::Unemployed);
//! let job = tax.occupation_ids()[0];
//! let mut w = Worker::new("a", "synth");
//! w.ethnicity = Ethnicity::Black;
//! w.records.push(YearRecord::new(2000, job, Education::College));
//! w.records.push(YearRecord::new(2001, unemployed, Education::College));
//! let resumes = resume_corpus(&Panel::new(tax, vec![w]).unwrap()).unwrap();
//! let r = &resumes.workers()[0];
//! assert_eq!(r.records.len(), 1);
//! assert_eq!(r.ethnicity, Ethnicity::Unknown);
//! ```

use crate::error::Result;
use crate::panel::Panel;
use crate::vocab::{Ethnicity, Gender};

/// The resume-like version of `panel` (see the module docs).
///
/// # Errors
/// Never in practice: the records kept are valid records of the same taxonomy.
pub fn resume_corpus(panel: &Panel) -> Result<Panel> {
    let tax = panel.taxonomy().clone();
    let workers = panel
        .workers()
        .iter()
        .filter_map(|w| {
            let mut r = w.clone();
            r.dataset = format!("{}-resumes", w.dataset);
            r.ethnicity = Ethnicity::Unknown;
            r.gender = Gender::Unknown;
            r.records.retain(|rec| tax.is_occupation(rec.state));
            (!r.records.is_empty()).then_some(r)
        })
        .collect();
    Panel::new(tax, workers)
}
