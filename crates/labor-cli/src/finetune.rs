//! `labor finetune`: fine-tune a Llama-family model (a Hugging Face directory or a GGUF file; or train the embedded default
//! from scratch) on the resumes of one or more training panels.

use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::{Result, bail};
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
    lora_targets: Vec<LoraTarget>,
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
    loss_on: LossOn,
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
    #[arg(long, conflicts_with = "numbered_seed")]
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
    let train: Vec<_> = a
        .train
        .iter()
        .map(io::read_parquet)
        .collect::<Result<_, _>>()?;
    let extra: Vec<_> = a
        .extra
        .iter()
        .map(io::read_parquet)
        .collect::<Result<_, _>>()?;
    let b = FinetuneJobBuilder::new(base, train, io::read_parquet(&a.valid)?, &a.out)
        .with_mixture(a.mix_fraction, extra, a.extra_fraction)
        .with_grad_accum(a.grad_accum)
        .with_warmup_ratio(a.warmup_ratio)
        .with_weight_decay(a.weight_decay)
        .with_max_grad_norm((a.max_grad_norm > 0.0).then_some(a.max_grad_norm))
        .with_loss_on(a.loss_on)
        .with_max_valid_docs(a.max_valid_docs)
        .with_seed(a.seed)
        .with_activation_checkpointing(a.activation_checkpointing)
        .with_resume(a.resume)
        .with_overwrite(a.force);
    let lora = a.lora_rank.map(|r| {
        let mut l = LoraOptions::with_rank(r);
        l.alpha = a.lora_alpha.unwrap_or(l.alpha);
        l.targets.clone_from(&a.lora_targets);
        l
    });
    let b = crate::opt(b, lora, B::with_lora);
    let b = crate::opt(b, a.numbered_seed, B::with_numbered_titles);
    let b = crate::opt(b, a.epochs, B::with_epochs);
    let b = crate::opt(b, a.batch_size, B::with_batch_size);
    let b = crate::opt(b, a.eval_every, B::with_eval_every);
    let b = crate::opt(b, a.patience, B::with_patience);
    let b = crate::opt(b, a.checkpoint_every, B::with_checkpoint_every);
    let b = crate::opt(b, a.max_tokens, B::with_max_tokens);
    let b = crate::opt(b, a.max_train_docs, B::with_max_train_docs);
    let b = crate::opt(b, a.lr, B::with_learning_rate);
    let job = b.build()?;
    println!("{}", job.summary());
    if let Some((before, n)) = job.title_ppl_before() {
        println!("validation title perplexity before: {before:.3} over {n} titles");
    }
    if let Some(plan) = job.memory_plan()? {
        let plan = plan.brief();
        println!("memory: {plan} at the longest batch; `labor plan` for other sizes");
    }
    let pb = crate::progress::bar(0, "train", "steps, {msg}");
    let r = job.run(|p| {
        crate::progress::training(&pb, p);
        ControlFlow::Continue(())
    })?;
    pb.finish_and_clear();
    println!("{r}");
    Ok(())
}

type B = FinetuneJobBuilder;
