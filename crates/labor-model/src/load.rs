//! One way from a path on disk to a predictor: a `labor train` directory (CAREER or a
//! baseline) or a language model (a GGUF file or a Hugging Face directory) scored with the
//! resume template.

use std::path::Path;

use burn::tensor::Device;
use labor_data::Taxonomy;
use labor_template::{TemplateBuilder, TemplateKind};

use crate::error::{Error, Result};
use crate::llm::model::Llama;
use crate::registry::{TrainedModel, load_model, read_meta};
use crate::score::Scorer;
use crate::score::predict::{LlmPredictor, Predictor};
use crate::tokenize::tokenizer::TextTokenizer;

/// A model read by [`load_predictor`], ready to predict panels over its taxonomy.
#[derive(Debug)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // one value per program
pub enum LoadedModel {
    /// CAREER or a baseline, from a `labor train` directory.
    Trained(TrainedModel),
    /// A language model, which predicts through the resume template.
    Llm {
        /// The file stem of the path it was read from (the name in reports).
        name: String,
        /// The model.
        model: Llama,
        /// Its tokenizer.
        tokenizer: TextTokenizer,
        /// The device it lives on.
        device: Device,
    },
}

impl LoadedModel {
    /// The predictor of this model over `taxonomy`. A language model decodes constrained to the
    /// taxonomy's titles when `constrained` is set (each token renormalised over the tokens that
    /// continue some title); CAREER and the baselines already predict over the outcomes only,
    /// so `constrained` changes nothing for them.
    ///
    /// # Errors
    /// A taxonomy the template cannot render; titles that do not tokenize.
    pub fn predictor(
        &self,
        taxonomy: &std::sync::Arc<Taxonomy>,
        constrained: bool,
    ) -> Result<Box<dyn Predictor + '_>> {
        match self {
            LoadedModel::Trained(m) => Ok(Box::new(m)),
            LoadedModel::Llm {
                name,
                model,
                tokenizer,
                device,
            } => {
                let template =
                    TemplateBuilder::new(std::sync::Arc::clone(taxonomy), TemplateKind::Resume)
                        .build()?;
                let scorer = Scorer::new(model, tokenizer, device.clone());
                let p = LlmPredictor::new(name.clone(), scorer, template, taxonomy)?;
                Ok(Box::new(if constrained { p.constrained()? } else { p }))
            }
        }
    }
}

/// Reads the model at `path` onto `device`: a directory written by `labor train` (it holds
/// `model.json`; it must have been trained on `taxonomy`), else a language model as
/// [`load_llm`](crate::load_llm) reads it.
///
/// # Errors
/// [`Error::TaxonomyMismatch`] for a trained model of another taxonomy, the loaders' errors for
/// a trained model that does not load, [`Error::NotAModel`] for a path that is neither.
pub fn load_predictor(path: &Path, taxonomy: &Taxonomy, device: &Device) -> Result<LoadedModel> {
    if let Ok(meta) = read_meta(path) {
        if meta.taxonomy != taxonomy.name() || meta.n_states != taxonomy.len() {
            return Err(Error::TaxonomyMismatch {
                path: path.to_path_buf(),
                model: format!("`{}` ({} states)", meta.taxonomy, meta.n_states),
                data: format!("`{}` ({} states)", taxonomy.name(), taxonomy.len()),
            });
        }
        return Ok(LoadedModel::Trained(load_model(path, device)?));
    }
    match crate::checkpoint::loader::load_llm(path, device) {
        Ok((_, model, tokenizer)) => Ok(LoadedModel::Llm {
            name: model_name(path),
            model,
            tokenizer,
            device: device.clone(),
        }),
        Err(source) => Err(Error::NotAModel {
            path: path.to_path_buf(),
            source: Box::new(source),
        }),
    }
}

/// The name a model read from `path` gets in predictions files and reports: the file stem
/// (`SmolLM2-135M-Instruct.Q4_1` for `SmolLM2-135M-Instruct.Q4_1.gguf`, `best` for a `best/`
/// directory), or `llm` for a path without one.
///
/// ```
/// use std::path::Path;
/// assert_eq!(labor_model::model_name(Path::new("m/SmolLM2.Q4_1.gguf")), "SmolLM2.Q4_1");
/// assert_eq!(labor_model::model_name(Path::new("/")), "llm");
/// ```
pub fn model_name(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "llm".into(), |s| s.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{ModelKind, TrainBuilder};
    use labor_data::{Preset, SplitterBuilder, SynthBuilder};

    /// A trained directory loads as itself and predicts like the model it saved; over another
    /// taxonomy it is refused; a directory holding neither kind of model is named as such.
    #[test]
    fn loads_trained_models_and_refuses_the_rest() {
        let dir = std::env::temp_dir().join(format!("labor-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let panel = SynthBuilder::new(Preset::Nlsy79)
            .with_workers(40)
            .with_seed(3)
            .build()
            .unwrap()
            .generate()
            .panel;
        let parts = SplitterBuilder::new().build().unwrap().split(&panel);
        let out = dir.join("empirical");
        let (trained, _) = TrainBuilder::new(ModelKind::Empirical, &parts.train, &parts.valid)
            .with_out_dir(&out)
            .build()
            .unwrap()
            .run(|_| {})
            .unwrap();
        let device = Device::default();
        let loaded = load_predictor(&out, panel.taxonomy(), &device).unwrap();
        assert!(matches!(loaded, LoadedModel::Trained(_)));
        let p = loaded.predictor(panel.taxonomy(), true).unwrap();
        let a = crate::predict_panel(p.as_ref(), &parts.test, false, |_| {}).unwrap();
        let b = crate::predict_panel(&trained, &parts.test, false, |_| {}).unwrap();
        assert_eq!(a.rows(), b.rows());

        let other =
            Taxonomy::from_csv_reader("groups", "code,title\n1,Managers\n2,Clerks\n".as_bytes())
                .unwrap();
        let err = load_predictor(&out, &other, &device).unwrap_err();
        assert!(matches!(err, Error::TaxonomyMismatch { .. }), "{err}");

        let empty = dir.join("nothing");
        std::fs::create_dir_all(&empty).unwrap();
        let err = load_predictor(&empty, panel.taxonomy(), &device).unwrap_err();
        assert!(matches!(err, Error::NotAModel { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
