//! `labor plan`: the memory a run needs on each device, before it starts.

use anyhow::{Result, bail};
use labor_model::{LoraTarget, PlanGrid, PlanPrecision, PlanRow};

/// Arguments of `labor plan`.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// A preset (smollm2-135m, smollm2-360m, smollm2-1.7b, llama3.2-1b, llama3.2-3b,
    /// llama3.1-8b, llama3.1-70b, llama2-7b, llama2-13b), a GGUF file or a Hugging Face
    /// directory (only its configuration is read). Repeat for a table.
    #[arg(long, required = true)]
    model: Vec<String>,
    /// inference, full or lora. Repeat for a table.
    #[arg(long, default_values_t = ["lora".to_string()])]
    mode: Vec<String>,
    /// LoRA rank.
    #[arg(long, default_value_t = 16)]
    lora_rank: usize,
    /// LoRA targets, comma-separated (q,k,v,o,gate,up,down).
    #[arg(long, default_value = "q,k,v,o,gate,up,down", value_delimiter = ',')]
    lora_targets: Vec<LoraTarget>,
    /// f32 or bf16. Repeat for a table.
    #[arg(long, default_values_t = [PlanPrecision::F32])]
    precision: Vec<PlanPrecision>,
    /// Sequences per global batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 512)]
    seq_len: usize,
    /// Data-parallel devices. Repeat for a table.
    #[arg(long, default_values_t = [1usize])]
    devices: Vec<usize>,
    /// Recompute activations layer by layer in the backward pass.
    #[arg(long)]
    activation_checkpointing: bool,
    /// Memory per device in GiB: a plan that needs more is refused (exit status 1) with what
    /// would make it fit.
    #[arg(long)]
    device_memory: Option<f64>,
}

/// Runs `labor plan`.
///
/// # Errors
/// An unknown model or option, or (with `--device-memory`) a plan that does not fit.
pub fn run(a: &PlanArgs) -> Result<()> {
    let device_memory = match a.device_memory {
        Some(g) if g.is_finite() && g > 0.0 => Some((g * (1u64 << 30) as f64) as u64),
        Some(g) => bail!("--device-memory must be a positive number of GiB, not {g}"),
        None => None,
    };
    let grid = PlanGrid {
        models: a.model.clone(),
        modes: a.mode.clone(),
        lora_rank: a.lora_rank,
        lora_targets: a.lora_targets.clone(),
        precisions: a.precision.clone(),
        devices: a.devices.clone(),
        batch: a.batch,
        seq_len: a.seq_len,
        activation_checkpointing: a.activation_checkpointing,
        device_memory,
    };
    let rows = grid.plans()?;
    print!("{}", grid.report(&rows));
    let refused: Vec<String> = rows.iter().filter_map(PlanRow::refusal_line).collect();
    if !refused.is_empty() {
        bail!("{}", refused.join("\n"));
    }
    Ok(())
}
