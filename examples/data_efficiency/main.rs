//! Data efficiency: test perplexity against the number of training workers, one line per model,
//! from the `metrics.json` that `labor eval` wrote at each training size (every size scored on
//! the same test workers). Prints the table and draws the figure. See README.md.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use labor_eval::plots::{SizePoint, data_efficiency_png};

/// Perplexity against training size, from `labor eval`'s metrics at each size.
#[derive(Parser, Debug)]
struct Args {
    /// `WORKERS=FILE`: the `metrics.json` of `labor eval` for models trained on WORKERS
    /// workers (repeat, one per size).
    #[arg(long = "metrics", value_parser = parse_size, required = true)]
    metrics: Vec<(usize, PathBuf)>,
    /// Models to show, comma-separated (default: every model but `truth`).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// The figure (PNG).
    #[arg(long)]
    out: PathBuf,
}

fn parse_size(s: &str) -> Result<(usize, PathBuf), String> {
    let (n, path) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not WORKERS=FILE"))?;
    let n: usize = n
        .parse()
        .map_err(|e| format!("`{n}` is not a number of workers: {e}"))?;
    if n == 0 {
        return Err("a training size needs at least one worker".into());
    }
    Ok((n, PathBuf::from(path)))
}

fn main() -> Result<()> {
    let a = Args::parse();
    if a.metrics.iter().any(|(_, p)| *p == a.out) {
        bail!("--out {} is one of the inputs", a.out.display());
    }
    // model -> workers -> (perplexity, SE)
    let mut table: BTreeMap<String, BTreeMap<usize, (f64, f64)>> = BTreeMap::new();
    for (n, path) in &a.metrics {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let models = json["models"]
            .as_array()
            .with_context(|| format!("{}: no `models` array", path.display()))?;
        for m in models {
            let (Some(name), Some(ppl)) = (m["name"].as_str(), m["perplexity"].as_f64()) else {
                bail!("{}: a model without `name` or `perplexity`", path.display());
            };
            let keep = if a.models.is_empty() {
                name != "truth"
            } else {
                a.models.iter().any(|x| x == name)
            };
            if keep {
                let se = m["bootstrap_se"].as_f64().unwrap_or(f64::NAN);
                table
                    .entry(name.to_string())
                    .or_default()
                    .insert(*n, (ppl, se));
            }
        }
    }
    if table.is_empty() {
        bail!("no model to show in the metrics given");
    }
    let sizes: Vec<usize> = {
        let mut s: Vec<usize> = a.metrics.iter().map(|(n, _)| *n).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    print!("| model |");
    for n in &sizes {
        print!(" {n} workers |");
    }
    println!("\n|---|{}", "---|".repeat(sizes.len()));
    for (name, by_size) in &table {
        print!("| {name} |");
        for n in &sizes {
            match by_size.get(n) {
                Some((p, se)) => print!(" {p:.3} ({se:.3}) |"),
                None => print!(" |"),
            }
        }
        println!();
    }
    let series: Vec<(String, Vec<SizePoint>)> = table
        .iter()
        .map(|(name, by)| {
            let pts = by
                .iter()
                .map(|(&workers, &(perplexity, bootstrap_se))| SizePoint {
                    workers,
                    perplexity,
                    bootstrap_se,
                })
                .collect();
            (name.clone(), pts)
        })
        .collect();
    let refs: Vec<(&str, &[SizePoint])> = series
        .iter()
        .map(|(n, p)| (n.as_str(), p.as_slice()))
        .collect();
    let png = data_efficiency_png(&refs, 1.96)?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = a.out.with_extension("png.tmp");
    std::fs::write(&tmp, png).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &a.out).with_context(|| format!("writing {}", a.out.display()))?;
    println!("wrote {}", a.out.display());
    Ok(())
}
