//! Memory planning: what a Llama run needs on each device, computed before anything is
//! allocated, so that a run that cannot fit is refused with the arithmetic instead of failing
//! an hour in.
//!
//! The accounting, per device (every device holds a full replica under data parallelism and
//! runs `ceil(batch / devices)` sequences of each global batch):
//! - **weights**: every parameter in the compute precision (4 bytes in f32, 2 in bf16);
//! - **master weights**: full fine-tuning in bf16 keeps a float32 copy of every parameter;
//! - **gradients**: one per trainable parameter, in the compute precision (float32 for LoRA
//!   adapters, which stay float32 over a bf16 base);
//! - **optimizer**: AdamW's two float32 moments per trainable parameter;
//! - **adapted weights** (LoRA): this crate applies an adapter by forming `W + s·A·B` before the
//!   product (burn's reparameterisation), so each adapted projection's full weight and its
//!   gradient exist during a step;
//! - **activations**: per token and layer, the values autodiff keeps for the backward pass
//!   (norm inputs and outputs, q/k/v before and after RoPE, the attention output, the
//!   projections, the four SwiGLU intermediates, and the `heads × length` attention scores and
//!   probabilities); with activation checkpointing only each layer's input is kept and one
//!   layer's values are recomputed at a time;
//! - **logits**: float32 logits, log-probabilities and their gradient over the vocabulary for
//!   every token.
//!
//! Scoring needs the weights, one layer's activations (nothing is kept for a backward pass)
//! and the logits. Allocator slack, the tokenizer, data and the framework's own buffers are
//! not counted: measured peaks on the CPU are compared in `docs/scale.md`.

use crate::error::{Error, Result};
use crate::llm::config::LlamaConfig;
use crate::llm::lora::LoraTarget;

/// What a run does with the model.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanMode {
    /// Scoring or prediction: a forward pass, no gradients.
    Inference,
    /// Full fine-tuning: every parameter trains.
    Full,
    /// LoRA: rank-`rank` adapters on `targets`, the base frozen.
    Lora {
        /// Adapter rank.
        rank: usize,
        /// The adapted projections.
        targets: Vec<LoraTarget>,
    },
}

impl PlanMode {
    /// The mode named `inference`, `full` or `lora` (with these adapters).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for another name.
    pub fn named(name: &str, lora_rank: usize, lora_targets: &[LoraTarget]) -> Result<Self> {
        match name {
            "inference" => Ok(Self::Inference),
            "full" => Ok(Self::Full),
            "lora" => Ok(Self::Lora {
                rank: lora_rank,
                targets: lora_targets.to_vec(),
            }),
            other => Err(Error::InvalidOption {
                name: "mode",
                detail: format!("`{other}` (inference, full or lora)"),
            }),
        }
    }
}

/// One row of a table of plans ([`plans_table`]).
#[derive(Debug, Clone)]
pub struct PlanRow {
    /// The model as the user named it.
    pub model: String,
    /// The mode as the user named it.
    pub mode: String,
    /// The precision.
    pub precision: PlanPrecision,
    /// Data-parallel devices.
    pub devices: usize,
    /// The plan.
    pub plan: MemoryPlan,
    /// Why it does not fit the memory available, with what would make it fit (`None` when it
    /// fits or no memory was given).
    pub refusal: Option<String>,
}

/// Every combination of models, modes, precisions and device counts at one batch shape: the
/// rows of `labor plan`'s table.
#[derive(Debug, Clone)]
pub struct PlanGrid {
    /// Models: presets, GGUF files or Hugging Face directories (see [`crate::llm_config`]).
    pub models: Vec<String>,
    /// Modes by name (see [`PlanMode::named`]).
    pub modes: Vec<String>,
    /// LoRA rank of the `lora` mode.
    pub lora_rank: usize,
    /// LoRA targets of the `lora` mode.
    pub lora_targets: Vec<LoraTarget>,
    /// Precisions.
    pub precisions: Vec<PlanPrecision>,
    /// Data-parallel device counts.
    pub devices: Vec<usize>,
    /// Sequences per global batch.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
    /// Recompute activations in the backward pass.
    pub activation_checkpointing: bool,
    /// Bytes per device, to check each plan against.
    pub device_memory: Option<u64>,
}

impl PlanGrid {
    /// The plans, models outermost and device counts innermost.
    ///
    /// # Errors
    /// An unknown model or mode, and as [`MemoryPlanBuilder::build`].
    pub fn plans(&self) -> Result<Vec<PlanRow>> {
        let mut rows = Vec::new();
        for model in &self.models {
            let config = crate::llm_config(model)?;
            for mode_name in &self.modes {
                let mode = PlanMode::named(mode_name, self.lora_rank, &self.lora_targets)?;
                for &precision in &self.precisions {
                    for &devices in &self.devices {
                        let plan = MemoryPlanBuilder::new(config.clone())
                            .with_mode(mode.clone())
                            .with_precision(precision)
                            .with_batch(self.batch)
                            .with_seq_len(self.seq_len)
                            .with_devices(devices)
                            .with_activation_checkpointing(self.activation_checkpointing)
                            .build()?;
                        let refusal = self
                            .device_memory
                            .and_then(|m| plan.check_fits(m).err())
                            .map(|e| e.to_string());
                        rows.push(PlanRow {
                            model: model.clone(),
                            mode: mode_name.clone(),
                            precision,
                            devices,
                            plan,
                            refusal,
                        });
                    }
                }
            }
        }
        Ok(rows)
    }

    /// `rows` (from [`PlanGrid::plans`]) as `labor plan` prints them: one plan as its
    /// configuration, parameter counts and table of components; several as the batch shape and
    /// [`plans_table`].
    pub fn report(&self, rows: &[PlanRow]) -> String {
        let checkpointing = if self.activation_checkpointing {
            ", activation checkpointing"
        } else {
            ""
        };
        let shape = format!(
            "batch {} x {} tokens{checkpointing}",
            self.batch, self.seq_len
        );
        match rows {
            [r] => format!(
                "{}, {}, {}, {} device(s), {shape}: {:.1}M parameters, {:.1}M trainable\n\n{}",
                r.model,
                r.mode,
                r.precision,
                r.devices,
                r.plan.params as f64 / 1e6,
                r.plan.trainable as f64 / 1e6,
                r.plan.to_markdown()
            ),
            _ => format!("{shape}\n\n{}", plans_table(rows)),
        }
    }
}

impl PlanRow {
    /// `MODEL MODE PRECISION xDEVICES: why` when the plan does not fit, else `None`.
    pub fn refusal_line(&self) -> Option<String> {
        let why = self.refusal.as_ref()?;
        Some(format!(
            "{} {} {} x{}: {why}",
            self.model, self.mode, self.precision, self.devices
        ))
    }
}

/// The plans as one Markdown table: the weights and training states, the activations and
/// logits, and the total per device of each.
pub fn plans_table(rows: &[PlanRow]) -> String {
    let mut s = String::from(
        "| model | mode | precision | devices | weights + states | activations + logits | per device |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let p = &r.plan;
        let states = p.weights + p.master + p.gradients + p.optimizer + p.adapted;
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {}{} |\n",
            r.model,
            r.mode,
            r.precision,
            r.devices,
            gib(states),
            gib(p.activations + p.logits),
            gib(p.per_device()),
            if r.refusal.is_some() {
                " (does not fit)"
            } else {
                ""
            }
        ));
    }
    s
}

/// The precision weights and activations are computed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanPrecision {
    /// float32 everywhere.
    F32,
    /// bfloat16 weights and activations; float32 master weights and optimizer state (full
    /// fine-tuning) or float32 adapters (LoRA).
    Bf16,
}

impl PlanPrecision {
    fn bytes(self) -> u64 {
        match self {
            Self::F32 => 4,
            Self::Bf16 => 2,
        }
    }
}

impl std::str::FromStr for PlanPrecision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            other => Err(Error::InvalidOption {
                name: "precision",
                detail: format!("`{other}` (f32 or bf16)"),
            }),
        }
    }
}

impl std::fmt::Display for PlanPrecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        })
    }
}

/// Builds a [`MemoryPlan`].
#[derive(Debug, Clone)]
pub struct MemoryPlanBuilder {
    config: LlamaConfig,
    mode: PlanMode,
    precision: PlanPrecision,
    batch: usize,
    seq_len: usize,
    devices: usize,
    checkpointing: bool,
}

impl MemoryPlanBuilder {
    /// A plan for `config`: LoRA rank 16 on every projection, float32, batch 8 of 512 tokens,
    /// one device, no activation checkpointing.
    pub fn new(config: LlamaConfig) -> Self {
        Self {
            config,
            mode: PlanMode::Lora {
                rank: 16,
                targets: LoraTarget::ALL.to_vec(),
            },
            precision: PlanPrecision::F32,
            batch: 8,
            seq_len: 512,
            devices: 1,
            checkpointing: false,
        }
    }

    /// What the run does.
    #[must_use]
    pub fn with_mode(mut self, mode: PlanMode) -> Self {
        self.mode = mode;
        self
    }

    /// The compute precision.
    #[must_use]
    pub fn with_precision(mut self, precision: PlanPrecision) -> Self {
        self.precision = precision;
        self
    }

    /// Sequences per global batch (over all devices).
    #[must_use]
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// Tokens per sequence (the padded length).
    #[must_use]
    pub fn with_seq_len(mut self, seq_len: usize) -> Self {
        self.seq_len = seq_len;
        self
    }

    /// Data-parallel devices.
    #[must_use]
    pub fn with_devices(mut self, devices: usize) -> Self {
        self.devices = devices;
        self
    }

    /// Whether activations are recomputed layer by layer in the backward pass.
    #[must_use]
    pub fn with_activation_checkpointing(mut self, on: bool) -> Self {
        self.checkpointing = on;
        self
    }

    /// Computes the plan.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a zero batch, length, device count or rank, or an empty
    /// target list; [`Error::UnsupportedConfig`] for a configuration that is not a model.
    pub fn build(self) -> Result<MemoryPlan> {
        self.config.validate()?;
        for (name, v) in [
            ("batch", self.batch),
            ("seq-len", self.seq_len),
            ("devices", self.devices),
        ] {
            if v == 0 {
                return Err(Error::InvalidOption {
                    name,
                    detail: "must be at least 1".into(),
                });
            }
        }
        if let PlanMode::Lora { rank, targets } = &self.mode
            && (*rank == 0 || targets.is_empty())
        {
            return Err(Error::InvalidOption {
                name: "lora",
                detail: "a LoRA plan needs a positive rank and at least one target".into(),
            });
        }
        let c = &self.config;
        let (d, ff, vocab) = (c.d_model as u64, c.d_ff as u64, c.vocab_size as u64);
        let hd = c.head_dim() as u64;
        let (q, kv) = (c.n_heads as u64 * hd, c.n_kv_heads as u64 * hd);
        let layers = c.n_layers as u64;
        let shape = |t: LoraTarget| -> (u64, u64) {
            match t {
                LoraTarget::Q => (d, q),
                LoraTarget::K | LoraTarget::V => (d, kv),
                LoraTarget::O => (q, d),
                LoraTarget::Gate | LoraTarget::Up => (d, ff),
                LoraTarget::Down => (ff, d),
            }
        };
        let per_layer = 2 * d + d * q + 2 * d * kv + q * d + 3 * d * ff;
        let head = if c.tie_embeddings { 0 } else { vocab * d };
        let params = vocab * d + head + d + layers * per_layer;
        let p = self.precision.bytes();
        let micro = self.batch.div_ceil(self.devices) as u64;
        let s = self.seq_len as u64;
        let tokens = micro * s;
        // Values autodiff keeps per token and layer (see the module docs).
        let kept = 7 * d + 3 * q + 3 * kv + 4 * ff + 2 * c.n_heads as u64 * s;
        let full_layer = tokens * kept * p;
        let logits = |copies: u64| tokens * vocab * 4 * copies;
        let mut plan = MemoryPlan {
            params,
            trainable: 0,
            weights: params * p,
            master: 0,
            gradients: 0,
            optimizer: 0,
            adapted: 0,
            activations: 0,
            logits: 0,
            tokens_per_device: tokens,
            mode: self.mode.clone(),
            precision: self.precision,
            devices: self.devices,
            checkpointing: self.checkpointing,
        };
        let training_activations = if self.checkpointing {
            layers * tokens * d * p + full_layer
        } else {
            layers * full_layer
        };
        match &self.mode {
            PlanMode::Inference => {
                plan.activations = full_layer;
                plan.logits = logits(1);
            }
            PlanMode::Full => {
                plan.trainable = params;
                plan.gradients = params * p;
                plan.optimizer = params * 8;
                if self.precision == PlanPrecision::Bf16 {
                    plan.master = params * 4;
                }
                plan.activations = training_activations;
                plan.logits = logits(3);
            }
            PlanMode::Lora { rank, targets } => {
                let r = *rank as u64;
                let (mut adapters, mut adapted) = (0, 0);
                for t in targets {
                    let (i, o) = shape(*t);
                    adapters += r * (i + o);
                    adapted += i * o;
                }
                plan.trainable = layers * adapters;
                plan.gradients = plan.trainable * 4;
                plan.optimizer = plan.trainable * 8;
                // The adapters themselves, float32 beside the base.
                plan.weights += plan.trainable * 4;
                // `W + s·A·B` and its gradient, for one layer at a time in the backward pass
                // and kept for every layer in the forward (the product's input).
                plan.adapted = (layers + 1) * adapted * p;
                plan.activations = training_activations;
                plan.logits = logits(3);
            }
        }
        Ok(plan)
    }
}

/// Bytes a run needs on each device, by component (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryPlan {
    /// Parameters of the model.
    pub params: u64,
    /// Parameters that train (0 for inference).
    pub trainable: u64,
    /// Weights in the compute precision (plus float32 LoRA adapters).
    pub weights: u64,
    /// float32 master copy (full fine-tuning in bf16).
    pub master: u64,
    /// Gradients of the trainable parameters.
    pub gradients: u64,
    /// AdamW's moments.
    pub optimizer: u64,
    /// LoRA's materialised adapted weights.
    pub adapted: u64,
    /// Activations kept for the backward pass (one layer's for inference).
    pub activations: u64,
    /// Logits, log-probabilities and their gradient.
    pub logits: u64,
    /// Tokens each device processes per step.
    pub tokens_per_device: u64,
    /// The mode planned.
    pub mode: PlanMode,
    /// The precision planned.
    pub precision: PlanPrecision,
    /// Data-parallel devices.
    pub devices: usize,
    /// Whether activation checkpointing was planned.
    pub checkpointing: bool,
}

/// Bytes as GiB with two decimals.
pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

impl MemoryPlan {
    /// Total bytes per device.
    pub fn per_device(&self) -> u64 {
        [
            self.weights,
            self.master,
            self.gradients,
            self.optimizer,
            self.adapted,
            self.activations,
            self.logits,
        ]
        .into_iter()
        .fold(0, u64::saturating_add)
    }

    /// Checks the plan against `available` bytes per device.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] (`memory`) naming what is needed, what is available and the
    /// largest components, with what would make it fit.
    pub fn check_fits(&self, available: u64) -> Result<()> {
        let need = self.per_device();
        if need <= available {
            return Ok(());
        }
        let mut parts = [
            ("weights", self.weights),
            ("master weights", self.master),
            ("gradients", self.gradients),
            ("optimizer", self.optimizer),
            ("adapted weights", self.adapted),
            ("activations", self.activations),
            ("logits", self.logits),
        ];
        parts.sort_by_key(|p| std::cmp::Reverse(p.1));
        let top: Vec<String> = parts
            .iter()
            .take(3)
            .map(|(n, b)| format!("{n} {}", gib(*b)))
            .collect();
        let mut hints = Vec::new();
        if parts[0].0 == "activations" || parts[0].0 == "logits" {
            hints.push("a smaller batch per device (more devices or gradient accumulation)");
            if !self.checkpointing {
                hints.push("activation checkpointing");
            }
        }
        if self.precision == PlanPrecision::F32 {
            hints.push("bf16");
        }
        if self.mode == PlanMode::Full {
            hints.push("LoRA");
        }
        Err(Error::InvalidOption {
            name: "memory",
            detail: format!(
                "the run needs {} per device and {} is available (largest: {}){}",
                gib(need),
                gib(available),
                top.join(", "),
                if hints.is_empty() {
                    String::new()
                } else {
                    format!("; try {}", hints.join(", "))
                }
            ),
        })
    }

    /// The plan in one line: `about TOTAL (weights W, optimizer O, activations A, logits L)`,
    /// the weights with their master copy and adapted weights, the optimizer with the
    /// gradients.
    pub fn brief(&self) -> String {
        format!(
            "about {} (weights {}, optimizer {}, activations {}, logits {})",
            gib(self.per_device()),
            gib(self.weights + self.master + self.adapted),
            gib(self.gradients + self.optimizer),
            gib(self.activations),
            gib(self.logits),
        )
    }

    /// The plan as a Markdown table of components.
    pub fn to_markdown(&self) -> String {
        let mut s = String::from("| component | per device |\n|---|---|\n");
        for (name, b) in [
            ("weights", self.weights),
            ("master weights (f32)", self.master),
            ("gradients", self.gradients),
            ("optimizer (AdamW)", self.optimizer),
            ("adapted weights (LoRA)", self.adapted),
            ("activations", self.activations),
            ("logits", self.logits),
        ] {
            if b > 0 {
                s.push_str(&format!("| {name} | {} |\n", gib(b)));
            }
        }
        s.push_str(&format!("| **total** | **{}** |\n", gib(self.per_device())));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_are_the_published_ones() {
        for (config, published) in [
            (LlamaConfig::smollm2_135m(), 134_515_008u64),
            (LlamaConfig::llama3_1_8b(), 8_030_261_248),
            (LlamaConfig::llama2_7b(), 6_738_415_616),
            (LlamaConfig::llama3_1_70b(), 70_553_706_496),
        ] {
            let plan = MemoryPlanBuilder::new(config)
                .with_mode(PlanMode::Inference)
                .build()
                .unwrap();
            assert_eq!(plan.params, published);
        }
    }

    #[test]
    fn full_fine_tuning_in_bf16_takes_sixteen_bytes_a_parameter_before_activations() {
        let plan = MemoryPlanBuilder::new(LlamaConfig::llama3_1_8b())
            .with_mode(PlanMode::Full)
            .with_precision(PlanPrecision::Bf16)
            .build()
            .unwrap();
        let states = plan.weights + plan.master + plan.gradients + plan.optimizer;
        assert_eq!(states, 16 * plan.params);
        // Data parallelism splits the batch, not the states.
        let eight = MemoryPlanBuilder::new(LlamaConfig::llama3_1_8b())
            .with_mode(PlanMode::Full)
            .with_precision(PlanPrecision::Bf16)
            .with_devices(8)
            .build()
            .unwrap();
        assert_eq!(
            eight.weights + eight.master + eight.optimizer,
            plan.weights + plan.master + plan.optimizer
        );
        assert_eq!(eight.activations * 8, plan.activations);
    }

    #[test]
    fn a_plan_that_cannot_fit_names_the_need_and_what_would_help() {
        let plan = MemoryPlanBuilder::new(LlamaConfig::llama3_1_70b())
            .with_mode(PlanMode::Full)
            .build()
            .unwrap();
        let err = plan.check_fits(80 << 30).unwrap_err().to_string();
        assert!(
            err.contains("per device and 80.00 GiB is available"),
            "{err}"
        );
        assert!(err.contains("try bf16, LoRA"), "{err}");
        assert!(plan.check_fits(plan.per_device()).is_ok());
    }
}
