//! `labor plan`: the memory a run needs on each device, before it starts.

use std::path::Path;

use anyhow::{Context, Result, bail};
use labor_model::{
    GgufFile, LlamaConfig, LoraTarget, MemoryPlanBuilder, PlanMode, PlanPrecision, gguf_config, gib,
};

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
    #[arg(long, default_value = "q,k,v,o,gate,up,down")]
    lora_targets: String,
    /// f32 or bf16. Repeat for a table.
    #[arg(long, default_values_t = ["f32".to_string()])]
    precision: Vec<String>,
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

fn config_of(model: &str) -> Result<LlamaConfig> {
    if let Some(c) = LlamaConfig::preset(model) {
        return Ok(c);
    }
    let path = Path::new(model);
    if path.is_dir() {
        return Ok(LlamaConfig::from_hf_config_file(path.join("config.json"))?);
    }
    if path.is_file() {
        return Ok(gguf_config(&GgufFile::open(path)?)?);
    }
    let names: Vec<&str> = LlamaConfig::presets().into_iter().map(|(n, _)| n).collect();
    bail!(
        "`{model}` is neither a preset ({}) nor a GGUF file or model directory",
        names.join(", ")
    )
}

/// Runs `labor plan`.
///
/// # Errors
/// An unknown model or option, or (with `--device-memory`) a plan that does not fit.
pub fn run(a: &PlanArgs) -> Result<()> {
    let targets: Vec<LoraTarget> = a
        .lora_targets
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let available = a
        .device_memory
        .map(|g| {
            if g.is_finite() && g > 0.0 {
                Ok((g * (1u64 << 30) as f64) as u64)
            } else {
                bail!("--device-memory must be a positive number of GiB, not {g}")
            }
        })
        .transpose()?;
    let mut rows = Vec::new();
    let mut refused = Vec::new();
    for model in &a.model {
        let config = config_of(model).with_context(|| format!("--model {model}"))?;
        for mode_name in &a.mode {
            let mode = match mode_name.as_str() {
                "inference" => PlanMode::Inference,
                "full" => PlanMode::Full,
                "lora" => PlanMode::Lora {
                    rank: a.lora_rank,
                    targets: targets.clone(),
                },
                other => bail!("--mode `{other}` (inference, full or lora)"),
            };
            for precision in &a.precision {
                let precision: PlanPrecision = precision.parse()?;
                for &devices in &a.devices {
                    let plan = MemoryPlanBuilder::new(config.clone())
                        .with_mode(mode.clone())
                        .with_precision(precision)
                        .with_batch(a.batch)
                        .with_seq_len(a.seq_len)
                        .with_devices(devices)
                        .with_activation_checkpointing(a.activation_checkpointing)
                        .build()?;
                    let fits = available.map(|m| plan.check_fits(m));
                    if let Some(Err(e)) = &fits {
                        refused.push(format!("{model} {mode_name} {precision} x{devices}: {e}"));
                    }
                    rows.push((
                        model.clone(),
                        mode_name.clone(),
                        precision,
                        devices,
                        plan,
                        fits,
                    ));
                }
            }
        }
    }
    if let [(model, mode, precision, devices, plan, _)] = rows.as_slice() {
        println!(
            "{model}, {mode}, {precision}, {devices} device(s), batch {} x {} tokens{}: {:.1}M parameters, {:.1}M trainable\n",
            a.batch,
            a.seq_len,
            if a.activation_checkpointing {
                ", activation checkpointing"
            } else {
                ""
            },
            plan.params as f64 / 1e6,
            plan.trainable as f64 / 1e6
        );
        print!("{}", plan.to_markdown());
    } else {
        println!(
            "batch {} x {} tokens{}\n",
            a.batch,
            a.seq_len,
            if a.activation_checkpointing {
                ", activation checkpointing"
            } else {
                ""
            }
        );
        println!(
            "| model | mode | precision | devices | weights + states | activations + logits | per device |"
        );
        println!("|---|---|---|---|---|---|---|");
        for (model, mode, precision, devices, p, fits) in &rows {
            let states = p.weights + p.master + p.gradients + p.optimizer + p.adapted;
            println!(
                "| {model} | {mode} | {precision} | {devices} | {} | {} | {}{} |",
                gib(states),
                gib(p.activations + p.logits),
                gib(p.per_device()),
                match fits {
                    Some(Err(_)) => " (does not fit)",
                    _ => "",
                }
            );
        }
    }
    if !refused.is_empty() {
        bail!("{}", refused.join("\n"));
    }
    Ok(())
}
