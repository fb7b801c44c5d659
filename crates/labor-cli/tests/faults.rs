//! Fault injection: every command that writes, run out of disk space part-way, and commands
//! killed with SIGKILL at seeded random points. After a fault an output holds its old content
//! or the new content complete, never something in between, and no temporary file is left; a
//! full disk is an error that names the file. A killed `split` leaves the old set or the new
//! one; a killed training run resumed (even when killed again) ends with the loss curve and
//! weights of a run never interrupted.
//!
//! The full-disk cases run each command inside a private mount namespace (`unshare -rm`) whose
//! output directory is a small tmpfs filled to leave a given number of bytes free. Where the
//! kernel does not allow unprivileged namespaces they are skipped, loudly.

// Tests may panic on a broken invariant: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixtures, labor, ok, synth};

/// Every file under `dir` (relative path → bytes), hidden files included.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.is_file() {
        out.insert(String::new(), std::fs::read(dir).unwrap());
    } else {
        walk(dir, dir, &mut out);
    }
    out
}

fn total_bytes(t: &BTreeMap<String, Vec<u8>>) -> usize {
    t.values().map(Vec::len).sum()
}

/// Whether this machine lets an unprivileged process mount a tmpfs in its own namespace.
fn namespaces_work() -> bool {
    Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /tmp"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One writing command: its arguments, with `OUT` standing for the output path.
struct Case {
    name: &'static str,
    args: Vec<String>,
    /// The output is a directory (else a file).
    dir: bool,
}

/// Runs `case` with its output at `mnt/out` on a tmpfs holding `old` (a previous output, or
/// nothing) and `free` bytes free (`need`: the size of a complete new output); copies what is
/// left of the output to `result` and returns (exit success, stderr).
fn run_on_full_disk(
    case: &Case,
    old: Option<&Path>,
    free: usize,
    need: usize,
    scratch: &Path,
    result: &Path,
) -> (bool, String) {
    let mnt = scratch.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let out = mnt.join("out");
    let args: Vec<String> = case
        .args
        .iter()
        .map(|a| a.replace("OUT", &out.display().to_string()))
        .collect();
    // Size the tmpfs for the old output, the new one twice over and slack; then fill it with a
    // file of ours to leave `free` bytes (tmpfs counts whole 4 KiB pages).
    let old_bytes = old.map_or(0, |p| total_bytes(&tree(p)));
    let size = (old_bytes + 2 * need + 4 * 1024 * 1024).div_ceil(4096) * 4096;
    let script = format!(
        r#"set -e
mount -t tmpfs -o size={size} tmpfs "$MNT"
if [ -n "$OLD" ]; then cp -r "$OLD" "$MNT/out"; fi
avail=$(df -B1 --output=avail "$MNT" | tail -n 1)
fill=$(( avail - {free} ))
if [ "$fill" -gt 0 ]; then fallocate -l "$fill" "$MNT/.filler"; fi
set +e
"$@" 2>"$ERR" >/dev/null
rc=$?
rm -f "$MNT/.filler"
mkdir -p "$RESULT"
if [ -e "$MNT/out" ]; then cp -r "$MNT/out" "$RESULT/out"; fi
ls -A "$MNT" > "$RESULT/entries"
exit $rc"#
    );
    let err = scratch.join("stderr");
    let status = Command::new("unshare")
        .args([
            "-rm",
            "sh",
            "-c",
            &script,
            "sh",
            env!("CARGO_BIN_EXE_labor"),
        ])
        .args(&args)
        .env("MNT", &mnt)
        .env(
            "OLD",
            old.map(|p| p.as_os_str().to_owned()).unwrap_or_default(),
        )
        .env("ERR", &err)
        .env("RESULT", result)
        .status()
        .unwrap();
    (
        status.success(),
        std::fs::read_to_string(&err).unwrap_or_default(),
    )
}

/// A scratch directory for the full-disk cases, or `None` (said loudly) where the kernel does
/// not allow the mount namespaces they need.
fn full_disk_scratch() -> Option<tempfile::TempDir> {
    if !namespaces_work() {
        eprintln!("!!! SKIPPED: this kernel does not allow `unshare -rm` with a tmpfs mount");
        return None;
    }
    Some(tempfile::tempdir().unwrap())
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

#[test]
fn a_full_disk_leaves_the_old_output_or_none_and_names_the_file() {
    let Some(dir) = full_disk_scratch() else {
        return;
    };
    let d = dir.path();
    let p = |name: &str| d.join(name).display().to_string();
    synth("nlsy79", 150, 1, &d.join("panel.parquet"));
    ok(labor().args([
        "train",
        "--kind",
        "empirical",
        "--train",
        &p("panel.parquet"),
        "--valid",
        &p("panel.parquet"),
        "--out",
        &p("model"),
    ]));
    ok(labor().args([
        "predict",
        "--model",
        &p("model"),
        "--panel",
        &p("panel.parquet"),
        "--out",
        &p("preds.parquet"),
    ]));
    let long = fixtures().join("long");
    let cases = [
        Case {
            name: "synth",
            dir: false,
            args: strings(&[
                "synth",
                "--preset",
                "nlsy79",
                "--workers",
                "150",
                "--seed",
                "2",
                "--out",
                "OUT",
            ]),
        },
        Case {
            name: "ingest",
            dir: false,
            args: vec![
                "ingest".into(),
                "--format".into(),
                "long".into(),
                "--on-error".into(),
                "drop".into(),
                "--input".into(),
                long.join("panel.csv").display().to_string(),
                "--mapping".into(),
                long.join("mapping.toml").display().to_string(),
                "--out".into(),
                "OUT".into(),
            ],
        },
        Case {
            name: "render",
            dir: false,
            args: strings(&[
                "render",
                "--template",
                "resume",
                "--panel",
                &p("panel.parquet"),
                "--out",
                "OUT",
            ]),
        },
        Case {
            name: "sample",
            dir: false,
            args: strings(&[
                "sample",
                "--panel",
                &p("panel.parquet"),
                "--workers",
                "100",
                "--seed",
                "4",
                "--out",
                "OUT",
            ]),
        },
        Case {
            name: "split",
            dir: true,
            args: strings(&[
                "split",
                "--panel",
                &p("panel.parquet"),
                "--seed",
                "5",
                "--out-dir",
                "OUT",
            ]),
        },
        Case {
            name: "predict",
            dir: false,
            args: strings(&[
                "predict",
                "--model",
                &p("model"),
                "--panel",
                &p("panel.parquet"),
                "--name",
                "again",
                "--out",
                "OUT",
            ]),
        },
        Case {
            name: "eval",
            dir: true,
            args: strings(&[
                "eval",
                "--predictions",
                &p("preds.parquet"),
                "--panel",
                &p("panel.parquet"),
                "--resamples",
                "20",
                "--out",
                "OUT",
            ]),
        },
        Case {
            name: "train",
            dir: true,
            args: strings(&[
                "train",
                "--kind",
                "logit",
                "--epochs",
                "1",
                "--train",
                &p("panel.parquet"),
                "--valid",
                &p("panel.parquet"),
                "--out",
                "OUT",
            ]),
        },
    ];
    assert_eq!(check_full_disk(d, &cases), 24);
}

/// Runs every case with room (the new output), then again over an old output with 0, 1/3 and
/// 2/3 of the new output's bytes free, and checks what is left; returns the runs checked.
///
/// The old output comes from the same command with other arguments: seeds `2`, `4` and `5`
/// become `11`, the name `again` becomes `old`, and a path ending in `-new.jsonl` ends in
/// `-old.jsonl`. Commands that refuse a directory holding a model (`train`, `finetune`) run
/// without an old output.
fn check_full_disk(d: &Path, cases: &[Case]) -> usize {
    let mut checked = 0;
    for case in cases {
        // The complete new output, from a run with room, and an old output to be replaced
        // (none for training, which refuses a directory that holds a model).
        let full = d.join(format!("{}-full", case.name));
        let args: Vec<String> = case
            .args
            .iter()
            .map(|a| a.replace("OUT", &full.display().to_string()))
            .collect();
        ok(labor().args(&args));
        let new = tree(&full);
        let fresh = matches!(case.name, "train" | "finetune");
        let old = (!fresh).then(|| {
            let old = d.join(format!("{}-old", case.name));
            let args: Vec<String> = case
                .args
                .iter()
                .map(|a| a.replace("OUT", &old.display().to_string()))
                .collect();
            // Another seed or name where the command has one, so that old and new differ.
            let args: Vec<String> = args
                .into_iter()
                .map(|a| match a.as_str() {
                    "2" | "4" | "5" => "11".into(),
                    "again" => "old".into(),
                    _ if a.ends_with("-new.jsonl") => a.replace("-new.jsonl", "-old.jsonl"),
                    _ => a,
                })
                .collect();
            ok(labor().args(&args));
            old
        });
        let old_tree = old.as_deref().map(tree);
        let need = total_bytes(&new);
        for free in [0, need / 3, 2 * need / 3] {
            let scratch = d.join(format!("{}-{free}", case.name));
            let result = scratch.join("result");
            let (success, stderr) =
                run_on_full_disk(case, old.as_deref(), free, need, &scratch, &result);
            let what = format!("{} with {free} of {need} bytes free", case.name);
            let got = tree(&result.join("out"));
            if success {
                // Replacing old files frees their space as it goes: a run may fit. Then the
                // output is the new one, complete.
                assert!(free > 0, "{what}: succeeded on a full disk");
                assert_eq!(got, new, "{what}: succeeded with other content");
                checked += 1;
                continue;
            }
            assert!(!stderr.contains("panicked"), "{what}: {stderr}");
            assert!(
                stderr.contains("No space left on device") || stderr.contains("os error 28"),
                "{what}: {stderr}"
            );
            assert!(
                stderr.contains("/mnt/"),
                "{what}: the error names no file: {stderr}"
            );
            let entries = std::fs::read_to_string(result.join("entries")).unwrap();
            let left: Vec<&str> = entries.lines().filter(|e| *e != "lost+found").collect();
            match &old_tree {
                Some(old) => {
                    assert_eq!(left, ["out"], "{what}: temporary files left");
                    if case.dir {
                        // The old set, with no file of the new one (training aside, every
                        // command's files are all replaced together).
                        assert_eq!(&got, old, "{what}: the old set was changed");
                    } else {
                        assert_eq!(got.get(""), old.get(""), "{what}: the old file was changed");
                    }
                }
                None => {
                    // A training run that failed: no model, or the model of an earlier epoch
                    // complete; never a model.json without its weights, a best model without
                    // its weights or a checkpoint without its state.
                    assert!(left.iter().all(|e| *e == "out"), "{what}: {left:?}");
                    for (a, b) in [
                        ("model.json", "model.bpk"),
                        ("best/config.json", "best/model.safetensors"),
                        ("checkpoint/state.json", "checkpoint/model.bpk"),
                    ] {
                        assert_eq!(
                            got.contains_key(a),
                            got.contains_key(b),
                            "{what}: {:?}",
                            got.keys()
                        );
                    }
                    assert!(
                        got.keys().all(|k| !k.ends_with(".tmp")),
                        "{what}: {:?}",
                        got.keys()
                    );
                }
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn language_model_commands_on_a_full_disk_leave_the_old_output_or_none() {
    let Some(dir) = full_disk_scratch() else {
        return;
    };
    let d = dir.path();
    let p = |name: &str| d.join(name).display().to_string();
    synth("nlsy79", 40, 6, &d.join("panel.parquet"));
    // A small language model trained from scratch, and texts for it.
    ok(labor().args([
        "finetune",
        "--base",
        "scratch",
        "--train",
        &p("panel.parquet"),
        "--valid",
        &p("panel.parquet"),
        "--epochs",
        "1",
        "--max-train-docs",
        "4",
        "--batch-size",
        "4",
        // Enough tokens that a resume fits the model's 1,024 positions.
        "--vocab-size",
        "1000",
        "--max-valid-docs",
        "2",
        "--out",
        &p("base"),
    ]));
    ok(labor().args([
        "render",
        "--template",
        "resume",
        "--panel",
        &p("panel.parquet"),
        "--out",
        &p("texts.jsonl"),
    ]));
    for (name, text) in [("new", "Cashiers and cooks"), ("old", "Nurses")] {
        let lines: String = (0..40)
            .map(|i| format!("{{\"text\": \"{text} {i}\"}}\n"))
            .collect();
        std::fs::write(d.join(format!("texts-{name}.jsonl")), lines).unwrap();
    }
    let model = p("base/best");
    let cases = [
        Case {
            name: "score",
            dir: false,
            args: strings(&[
                "score",
                "--model",
                &model,
                "--texts",
                &p("texts.jsonl"),
                "--constrained",
                "--name",
                "again",
                "--out",
                "OUT",
            ]),
        },
        Case {
            name: "logprobs",
            dir: false,
            args: strings(&[
                "logprobs",
                "--model",
                &model,
                "--input",
                &p("texts-new.jsonl"),
                "--output",
                "OUT",
            ]),
        },
        Case {
            name: "finetune",
            dir: true,
            args: strings(&[
                "finetune",
                "--base",
                &model,
                "--train",
                &p("panel.parquet"),
                "--valid",
                &p("panel.parquet"),
                "--epochs",
                "1",
                "--max-train-docs",
                "4",
                "--batch-size",
                "2",
                "--lora-rank",
                "2",
                "--max-valid-docs",
                "2",
                "--eval-every",
                "1",
                "--checkpoint-every",
                "1",
                "--out",
                "OUT",
            ]),
        },
    ];
    assert_eq!(check_full_disk(d, &cases), 9);
}

/// Spawns `labor ARGS` with output discarded.
fn spawn(args: &[String]) -> std::process::Child {
    labor()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs `args(out, resume)` once into `d/straight`, then into `d/killed` killed three times at
/// points drawn with `seed` over `fraction` of the straight run's time, each run resuming the
/// last checkpoint (or starting afresh when killed before the first), and a last run to the
/// end: `files` must then be byte-identical in both.
fn killed_and_resumed_equals_uninterrupted(
    d: &Path,
    args: impl Fn(&PathBuf, bool) -> Vec<String>,
    seed: u64,
    fraction: f64,
    files: &[&str],
) {
    let straight = d.join("straight");
    let start = Instant::now();
    ok(labor().args(args(&straight, false)));
    let took = start.elapsed();
    let killed = d.join("killed");
    let mut resume = false;
    for delay in delays(seed, 3, took.mul_f64(fraction)) {
        let mut child = spawn(&args(&killed, resume));
        std::thread::sleep(delay);
        child.kill().ok();
        child.wait().unwrap();
        resume = killed.join("checkpoint").exists() || killed.join("checkpoint.old").exists();
        if !resume {
            // Killed before the first checkpoint: a new run must be told to replace the files.
            let _ = std::fs::remove_dir_all(&killed);
        }
    }
    ok(labor().args(args(&killed, resume)));
    for f in files {
        assert_eq!(
            std::fs::read(straight.join(f)).unwrap(),
            std::fs::read(killed.join(f)).unwrap(),
            "{f}"
        );
    }
}

/// A seeded sequence of delays in `0..max` (SplitMix64).
fn delays(seed: u64, n: usize, max: Duration) -> Vec<Duration> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            max.mul_f64((z >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

#[test]
fn split_killed_at_random_points_leaves_the_old_set_or_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = (d.join("a.parquet"), d.join("b.parquet"));
    for (p, seed) in [(&a, 1), (&b, 2)] {
        synth("nlsy79", 3000, seed, p);
    }
    let split = |panel: &Path, out: &Path| -> Vec<String> {
        vec![
            "split".into(),
            "--panel".into(),
            panel.display().to_string(),
            "--out-dir".into(),
            out.display().to_string(),
        ]
    };
    let (old_dir, new_dir) = (d.join("old"), d.join("new"));
    ok(labor().args(split(&a, &old_dir)));
    let start = Instant::now();
    ok(labor().args(split(&b, &new_dir)));
    let took = start.elapsed();
    let (old, new) = (tree(&old_dir), tree(&new_dir));
    let mut outcomes = BTreeMap::new();
    for (i, delay) in delays(19, 12, took.mul_f64(1.2)).into_iter().enumerate() {
        let out = d.join(format!("killed-{i}"));
        let _ = std::process::Command::new("cp")
            .arg("-r")
            .arg(&old_dir)
            .arg(&out)
            .status();
        let mut child = spawn(&split(&b, &out));
        std::thread::sleep(delay);
        child.kill().ok();
        child.wait().unwrap();
        let visible: BTreeMap<String, Vec<u8>> = tree(&out)
            .into_iter()
            .filter(|(k, _)| !k.starts_with('.'))
            .collect();
        let state = if visible == old {
            "old"
        } else if visible == new {
            "new"
        } else {
            panic!(
                "killed after {delay:?}: a mixed set {:?}",
                visible.keys().collect::<Vec<_>>()
            );
        };
        *outcomes.entry(state).or_insert(0) += 1;
        // A rerun completes the new set.
        ok(labor().args(split(&b, &out)));
        let visible: BTreeMap<String, Vec<u8>> = tree(&out)
            .into_iter()
            .filter(|(k, _)| !k.starts_with('.'))
            .collect();
        assert_eq!(visible, new);
    }
    eprintln!("split killed 12 times: {outcomes:?}");
}

#[test]
fn training_killed_at_random_points_and_resumed_equals_uninterrupted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let panel = d.join("p.parquet");
    synth("nlsy79", 200, 3, &panel);
    let train = |out: &PathBuf, resume: bool| -> Vec<String> {
        let mut a: Vec<String> = [
            "train",
            "--kind",
            "career",
            "--epochs",
            "5",
            "--no-early-stopping",
            "--train",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        a.extend([
            panel.display().to_string(),
            "--valid".into(),
            panel.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ]);
        if resume {
            a.push("--resume".into());
        }
        a
    };
    killed_and_resumed_equals_uninterrupted(
        d,
        train,
        23,
        0.8,
        &[
            "loss.csv",
            "model.bpk",
            "checkpoint/model.bpk",
            "checkpoint/state.json",
        ],
    );
}

#[test]
fn finetuning_killed_at_random_points_and_resumed_equals_uninterrupted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let panel = d.join("p.parquet");
    synth("nlsy79", 60, 5, &panel);
    // A small base model, trained from scratch, then fine-tuned with LoRA from its directory.
    let base = d.join("base");
    ok(labor()
        .args(["finetune", "--base", "scratch", "--train"])
        .arg(&panel)
        .arg("--valid")
        .arg(&panel)
        .args([
            "--epochs",
            "1",
            "--max-train-docs",
            "8",
            "--batch-size",
            "4",
        ])
        .args(["--vocab-size", "400", "--max-valid-docs", "2", "--out"])
        .arg(&base));
    let finetune = |out: &PathBuf, resume: bool| -> Vec<String> {
        let mut a: Vec<String> = vec![
            "finetune".into(),
            "--base".into(),
            base.join("best").display().to_string(),
        ];
        a.extend([
            "--train".into(),
            panel.display().to_string(),
            "--valid".into(),
            panel.display().to_string(),
        ]);
        a.extend(
            [
                "--epochs",
                "1",
                "--max-train-docs",
                "24",
                "--batch-size",
                "2",
                "--lora-rank",
                "4",
                "--max-valid-docs",
                "2",
                "--eval-every",
                "4",
                "--checkpoint-every",
                "1",
                "--seed",
                "3",
                "--out",
            ]
            .iter()
            .map(|s| (*s).to_string()),
        );
        a.push(out.display().to_string());
        if resume {
            a.push("--resume".into());
        }
        a
    };
    killed_and_resumed_equals_uninterrupted(
        d,
        finetune,
        29,
        0.9,
        &[
            "loss.csv",
            "best/model.safetensors",
            "best/config.json",
            "checkpoint/model.bpk",
            "checkpoint/state.json",
        ],
    );
}
