//! `labor finetune`: fine-tune a Llama-family model (a Hugging Face directory or a GGUF file; or train the embedded default
//! from scratch) on the resumes of one or more training panels.

use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use labor_data::io;
use labor_model::{BaseModel, FinetuneJobBuilder, LoraOptions, LoraTarget, LossOn};

/// Arguments of `labor finetune`.
#[derive(clap::Args, Debug)]
pub struct FinetuneArgs {
    /// Base model: a Hugging Face directory (config.json, model.safetensors, tokenizer.json), a
    /// GGUF file (dequantised to f32; its tokenizer from the file's metadata), or `scratch` to
    /// train a BPE tokenizer and a small Llama from scratch.
    #[arg(long)]
    base: String,
    /// Training panel (repeat to train on the union of several surveys' training splits).
    #[arg(long = "train", required = true)]
    train: Vec<PathBuf>,
    /// Keep this fraction of the union of the training panels' workers.
    #[arg(long, default_value_t = 1.0)]
    mix_fraction: f64,
    /// Panels to draw extra workers from (repeatable).
    #[arg(long = "extra")]
    extra: Vec<PathBuf>,
    /// Extra workers as a fraction of the training workers kept.
    #[arg(long, default_value_t = 0.0)]
    extra_fraction: f64,
    /// Validation panel.
    #[arg(long)]
    valid: PathBuf,
    /// Epochs. Without it the budget scales with the training set: as many epochs as give at
    /// least 1,000 updates (at most 20), about 20 validations, and early stopping after 4 of
    /// them without a better validation loss (--eval-every and --patience still override).
    #[arg(long)]
    epochs: Option<usize>,
    /// Train LoRA adapters of this rank instead of every weight.
    #[arg(long)]
    lora_rank: Option<usize>,
    /// LoRA scale numerator (default: twice the rank).
    #[arg(long)]
    lora_alpha: Option<f64>,
    /// Projections that get adapters, comma-separated among q,k,v,o,gate,up,down.
    #[arg(long, default_value = "q,v", value_delimiter = ',')]
    lora_targets: Vec<String>,
    /// Output directory (checkpoint/, best/, loss.csv).
    #[arg(long)]
    out: PathBuf,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    resume: bool,
    /// Replace the run already in --out (its checkpoint, best model and loss curve); without
    /// it, a new run into a directory that holds one is refused.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Peak learning rate, in (0, 1] (default 5e-5 fine-tuning, 3e-3 from scratch, 1e-4 with
    /// LoRA).
    #[arg(long, value_parser = crate::parse_lr)]
    lr: Option<f64>,
    /// Documents per micro-batch (default 8; 2 from scratch).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    /// Warmup as a fraction of the scheduled steps.
    #[arg(long, default_value_t = 0.05)]
    warmup_ratio: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Clip the global gradient norm (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    /// Loss on `all` tokens (the paper) or on `titles` only.
    #[arg(long, default_value = "all")]
    loss_on: String,
    /// Also evaluate every N optimizer steps.
    #[arg(long)]
    eval_every: Option<usize>,
    /// Early stopping: stop after N validations in a row without a better validation loss
    /// (validations come every --eval-every steps and at the end of each epoch); the best model
    /// is in best/.
    #[arg(long)]
    patience: Option<usize>,
    /// Also checkpoint every N optimizer steps.
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Truncate texts to this many tokens.
    #[arg(long)]
    max_tokens: Option<usize>,
    /// Validation documents used for the loss and the title perplexity.
    #[arg(long, default_value_t = 200)]
    max_valid_docs: usize,
    /// Train on at most this many documents (a seeded sample).
    #[arg(long)]
    max_train_docs: Option<usize>,
    /// Tokenizer file (default: the base directory's tokenizer.json).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// BPE vocabulary size (scratch only).
    #[arg(long, default_value_t = 4096)]
    vocab_size: usize,
    /// Scratch only: make every title of the training panel's taxonomy one token of the trained
    /// vocabulary, so that the model predicts a title in one step.
    #[arg(long)]
    title_tokens: bool,
    /// Render the resumes with numbered titles (`job_NNN`, a permutation drawn with this seed)
    /// instead of English ones: the paper's ablation. Score the model with `labor score
    /// --numbered-seed` and the same seed.
    #[arg(long)]
    numbered_seed: Option<u64>,
    /// Seed of sampling, initialisation and shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Recompute activations in the backward pass instead of keeping them (burn's gradient
    /// checkpointing), to fit longer texts or larger batches; slower (docs/scale.md).
    #[arg(long)]
    activation_checkpointing: bool,
}

/// Runs `labor finetune`.
pub fn finetune(a: &FinetuneArgs) -> Result<()> {
    if a.title_tokens && a.numbered_seed.is_some() {
        bail!(
            "--title-tokens makes English titles whole tokens; it does not go with --numbered-seed"
        );
    }
    let base = match a.base.as_str() {
        "scratch" => BaseModel::Scratch {
            vocab_size: a.vocab_size,
            title_tokens: a.title_tokens,
        },
        _ if a.title_tokens => {
            bail!("--title-tokens trains a vocabulary, so it needs --base scratch")
        }
        path => BaseModel::Pretrained {
            path: path.into(),
            tokenizer: a.tokenizer.clone(),
        },
    };
    let read =
        |p: &PathBuf| io::read_parquet(p).with_context(|| format!("reading {}", p.display()));
    let train: Vec<_> = a.train.iter().map(read).collect::<Result<_>>()?;
    let extra: Vec<_> = a.extra.iter().map(read).collect::<Result<_>>()?;
    let loss_on = match a.loss_on.as_str() {
        "all" => LossOn::All,
        "titles" => LossOn::Titles,
        other => bail!("--loss-on must be `all` or `titles`, not `{other}`"),
    };
    let mut b = FinetuneJobBuilder::new(base, train, read(&a.valid)?, &a.out)
        .with_mixture(a.mix_fraction, extra, a.extra_fraction)
        .with_grad_accum(a.grad_accum)
        .with_warmup_ratio(a.warmup_ratio)
        .with_weight_decay(a.weight_decay)
        .with_max_grad_norm((a.max_grad_norm > 0.0).then_some(a.max_grad_norm))
        .with_loss_on(loss_on)
        .with_max_valid_docs(a.max_valid_docs)
        .with_seed(a.seed)
        .with_activation_checkpointing(a.activation_checkpointing)
        .with_resume(a.resume)
        .with_overwrite(a.force);
    if let Some(r) = a.lora_rank {
        let mut l = LoraOptions::with_rank(r);
        l.alpha = a.lora_alpha.unwrap_or(l.alpha);
        l.targets = a
            .lora_targets
            .iter()
            .map(|t| t.parse::<LoraTarget>())
            .collect::<Result<_, _>>()?;
        b = b.with_lora(l);
    }
    if let Some(seed) = a.numbered_seed {
        b = b.with_numbered_titles(seed);
    }
    if let Some(n) = a.epochs {
        b = b.with_epochs(n);
    }
    if let Some(n) = a.batch_size {
        b = b.with_batch_size(n);
    }
    if let Some(n) = a.eval_every {
        b = b.with_eval_every(n);
    }
    if let Some(n) = a.patience {
        b = b.with_patience(n);
    }
    if let Some(n) = a.checkpoint_every {
        b = b.with_checkpoint_every(n);
    }
    if let Some(n) = a.max_tokens {
        b = b.with_max_tokens(n);
    }
    if let Some(n) = a.max_train_docs {
        b = b.with_max_train_docs(n);
    }
    if let Some(lr) = a.lr {
        b = b.with_learning_rate(lr);
    }
    if a.activation_checkpointing && labor_model::cpu_kernels() {
        eprintln!(
            "note: with activation checkpointing the model runs on burn's operations instead of \
             labor's CPU kernels, which on the CPU need more memory, not less (docs/scale.md)"
        );
    }
    let job = b.build()?;
    let s = job.summary();
    let o = &s.options;
    println!(
        "training on {} workers ({} documents), validating on {}",
        s.workers, s.documents, s.valid_docs
    );
    println!(
        "schedule: {} epoch{} of {} updates{}{}{}",
        o.epochs,
        if o.epochs == 1 { "" } else { "s" },
        s.updates_per_epoch(),
        if s.scaled {
            " (scaled to the training set; --epochs fixes it)"
        } else {
            ""
        },
        o.eval_every
            .map_or_else(String::new, |e| format!(", validation every {e} updates")),
        o.patience.map_or_else(String::new, |p| format!(
            ", early stopping after {p} validations without improvement"
        )),
    );
    if let Some((before, n)) = job.title_ppl_before() {
        println!("validation title perplexity before: {before:.3} over {n} titles");
    }
    if let Some(plan) = job.memory_plan()? {
        println!(
            "memory: about {} (weights {}, optimizer {}, activations {}, logits {} at the longest batch; `labor plan` for other sizes)",
            labor_model::gib(plan.per_device()),
            labor_model::gib(plan.weights + plan.master + plan.adapted),
            labor_model::gib(plan.gradients + plan.optimizer),
            labor_model::gib(plan.activations),
            labor_model::gib(plan.logits),
        );
    }
    let patience = o.patience.unwrap_or_default();
    let pb = crate::progress::bar(0, "train", "steps, {msg}");
    let r = job.run(|p| {
        crate::progress::training(&pb, p);
        ControlFlow::Continue(())
    })?;
    pb.finish_and_clear();
    if r.report.stopped_early {
        println!(
            "stopped early at step {}: no better validation loss for {} validations",
            r.report.steps, patience
        );
    }
    println!(
        "validation title perplexity {:.3} -> {:.3} over {} titles; valid loss {:.4} -> {:.4}; {} steps in {:.1}s; model in {}",
        r.title_ppl_before,
        r.title_ppl_after,
        r.n_titles,
        r.report.initial_valid_loss.unwrap_or(f64::NAN),
        r.report.best_valid_loss.unwrap_or(f64::NAN),
        r.report.steps,
        r.wall.as_secs_f64(),
        r.report.best_dir.display()
    );
    Ok(())
}
