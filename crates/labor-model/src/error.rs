//! The error type of `labor-model`.

use std::path::PathBuf;

/// Everything that can go wrong while configuring, loading or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A tensor's values could not be read back from its device as the element type asked for.
    #[error("cannot read {what} back from the device")]
    TensorData {
        /// What was read (e.g. `log-probabilities`).
        what: &'static str,
        /// burn's error.
        #[source]
        source: burn::tensor::DataError,
    },
    /// A `config.json` that is not valid JSON or lacks a field.
    #[error("{path}: invalid model config")]
    ConfigJson {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A GGUF file that is truncated, corrupted or not GGUF.
    #[error("{path}: byte {offset}{}: {detail}", tensor.as_ref().map(|t| format!(", tensor `{t}`")).unwrap_or_default())]
    Gguf {
        /// The file.
        path: PathBuf,
        /// Byte offset where the problem was found.
        offset: u64,
        /// The tensor concerned, if any.
        tensor: Option<String>,
        /// What is wrong.
        detail: String,
    },
    /// A safetensors file that is malformed or holds an unsupported dtype.
    #[error("{path}{}: {detail}", tensor.as_ref().map(|t| format!(": tensor `{t}`")).unwrap_or_default())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The tensor concerned, if any.
        tensor: Option<String>,
        /// What is wrong.
        detail: String,
    },
    /// A tensor type this crate cannot dequantise.
    #[error("{path}: tensor `{tensor}` has ggml type {ggml_type}, which is not supported")]
    UnsupportedTensorType {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The ggml type id.
        ggml_type: u32,
    },
    /// A tensor the model needs is not in the checkpoint.
    #[error("{path}: tensor `{tensor}` is missing")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
    },
    /// A tensor whose shape does not fit the model.
    #[error("{path}: tensor `{tensor}` has shape {found:?}, the model needs {expected:?}")]
    TensorShape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The shape the model needs.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// Metadata the model needs is missing or has the wrong type.
    #[error("{path}: metadata `{key}` is missing or not a {expected}")]
    MissingMetadata {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The type expected.
        expected: &'static str,
    },
    /// A tokenizer that cannot be built or run.
    #[error("tokenizer: {detail}")]
    Tokenizer {
        /// What went wrong.
        detail: String,
    },
    /// A continuation that does not start or end on a token boundary.
    #[error("worker `{worker_id}`: byte {offset} of the text falls inside a token")]
    TokenBoundary {
        /// The worker of the document.
        worker_id: String,
        /// The byte offset.
        offset: usize,
    },
    /// A target whose continuation is not one of the titles a constrained scorer decodes.
    #[error(
        "worker `{worker_id}`: the continuation at byte {offset} is not one of the {titles} titles the scorer is constrained to"
    )]
    NotATitle {
        /// The worker of the document.
        worker_id: String,
        /// The byte offset where the continuation starts.
        offset: usize,
        /// How many titles the scorer knows.
        titles: usize,
    },
    /// A text longer than the model's context.
    #[error("worker `{worker_id}`: {tokens} tokens exceed the model's context of {max}")]
    TooLong {
        /// The worker of the document.
        worker_id: String,
        /// Tokens in the text.
        tokens: usize,
        /// The model's context length.
        max: usize,
    },
    /// A tokenizer with more tokens than the model has embedding rows.
    #[error("{path}: the tokenizer has {tokenizer_vocab} tokens but the model only {model_vocab}")]
    TokenizerMismatch {
        /// The model file or directory.
        path: PathBuf,
        /// Tokens in the tokenizer.
        tokenizer_vocab: usize,
        /// Rows of the model's embedding.
        model_vocab: usize,
    },
    /// Rendering a career as text failed.
    #[error(transparent)]
    Template(#[from] labor_template::Error),
    /// A state id outside a model's vocabulary (a panel of another taxonomy).
    #[error("worker `{worker_id}`: state {state} is outside the model's {n_states} states")]
    StateOutOfVocabulary {
        /// The worker.
        worker_id: String,
        /// The state id.
        state: usize,
        /// States the model knows.
        n_states: usize,
    },
    /// burn could not write or read a record (weights or optimizer state) at `path`.
    #[error("checkpoint {path}")]
    Record {
        /// The file.
        path: PathBuf,
        /// burn's error.
        #[source]
        source: burn::store::RecordError,
    },
    /// Saving or loading weights, optimizer state or a training checkpoint failed.
    #[error("checkpoint {path}: {detail}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A checkpoint whose configuration and tensors disagree (checked before the model is
    /// allocated).
    #[error("{path}: {what}: the configuration declares {declared}, the file holds {found}")]
    Inconsistent {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// What is counted (`transformer layers`, `parameters`).
        what: &'static str,
        /// The count the configuration declares.
        declared: u64,
        /// The count the tensors give.
        found: u64,
    },
    /// A model directory whose `model.json` names an unknown kind or does not fit the data.
    #[error("{path}: {detail}")]
    ModelDir {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Training options that cannot run (an empty panel, zero epochs).
    #[error("training: {field}: {detail}")]
    Training {
        /// The option or input.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Reading or writing panels or predictions failed.
    #[error(transparent)]
    Data(#[from] labor_data::Error),
    /// A configuration this crate cannot run (an unknown RoPE scaling, inconsistent sizes).
    #[error("unsupported model configuration: {field}: {detail}")]
    UnsupportedConfig {
        /// The field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A training option or builder argument out of range.
    #[error("invalid option `{name}`: {detail}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The model gave a token a NaN or infinite log-probability: its weights are corrupted or
    /// it diverged. Never reported as a number.
    #[error(
        "{text}: token {token} has log-probability {value}; the model's weights are corrupted or it diverged"
    )]
    NonFiniteLogProb {
        /// The text: `worker `ID`` for rendered documents, else its place in the batch.
        text: String,
        /// The token's index in the text.
        token: usize,
        /// The value computed.
        value: f32,
    },
    /// A trained model asked to predict data over another taxonomy.
    #[error("{path} was trained on taxonomy {model}; the data uses {data}")]
    TaxonomyMismatch {
        /// The model directory.
        path: PathBuf,
        /// The model's taxonomy and number of states.
        model: String,
        /// The data's.
        data: String,
    },
    /// A path that is neither a `labor train` directory nor a language model.
    #[error("{path}: neither a `labor train` directory (model.json) nor a language model")]
    NotAModel {
        /// The path.
        path: PathBuf,
        /// Why it did not load as a language model.
        #[source]
        source: Box<Error>,
    },
    /// The training loss became NaN or infinite; the last good checkpoint is kept.
    #[error("training diverged at step {step} (epoch {epoch}): loss is {loss}; the last good checkpoint is {}", checkpoint.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none".into()))]
    Diverged {
        /// The optimizer step (1-based) whose loss was not finite.
        step: usize,
        /// The epoch (0-based).
        epoch: usize,
        /// The loss.
        loss: f64,
        /// The directory of the last good checkpoint, if one was written.
        checkpoint: Option<PathBuf>,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
