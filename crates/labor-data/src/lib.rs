#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod atomic;
mod describe;
mod error;
pub mod ingest;
pub mod io;
mod mixture;
mod panel;
pub mod predictions;
mod resumes;
mod split;
mod synth;
mod targets;
mod taxonomy;
mod vocab;

pub use describe::PanelSummary;
pub use error::{Error, Issue, Location, Result, panic_message};
pub use labor_rand::SeededRng;
pub use mixture::MixtureBuilder;
pub use panel::{Panel, Worker, YearRecord};
pub use predictions::{Prediction, Predictions};
pub use resumes::resume_corpus;
pub use split::{Split, SplitPanels, Splitter, SplitterBuilder, subsample};
pub use synth::{
    CareerLaw, Preset, PresetSpec, PresetTargets, SynthBuilder, SynthOutput, Synthesizer, Truth,
};
pub use targets::TargetRule;
pub use taxonomy::{
    NumberedTitles, Outcome, Scheme, SpecialState, StateId, Taxonomy, normalize_code,
};
pub use vocab::{Education, Ethnicity, Gender, Region};
