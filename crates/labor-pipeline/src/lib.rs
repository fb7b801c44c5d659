#![doc = include_str!("../README.md")]

mod error;
mod quickstart;

pub use error::{Error, Result};
pub use quickstart::{Quickstart, QuickstartBuilder, QuickstartEvent, QuickstartReport, STAGES};
