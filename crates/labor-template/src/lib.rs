#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod document;
mod error;
mod templates;
mod wording;

pub use document::{Document, Layout, Rendered, Target};
pub use error::{Error, Result};
pub use labor_data::TargetRule;
pub use templates::{
    DemographicFields, IclSampling, IclTemplate, PromptTemplate, ResumeTemplate, Template,
    TemplateBuilder, TemplateKind,
};
pub use wording::Wording;
