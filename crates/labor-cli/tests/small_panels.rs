//! `labor train`'s defaults on a small survey, as a new user meets one: a few hundred workers,
//! eight annual waves, and a coarse taxonomy of their own (the nine major occupation groups of
//! the 1990 Census) reached through `--taxonomy` and a crosswalk from occ1990dd codes. With the
//! defaults alone, CAREER and the logit must beat the empirical transition table on the test
//! workers (a fixed count of epochs used to stop them while the validation loss was still
//! falling, level with the table or above it).

// Tests may panic on a broken invariant: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use labor_data::{SpecialState, Taxonomy, io};

fn labor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_labor"))
}

/// Runs `cmd`, asserts success, returns stdout and stderr together.
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("labor runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// The nine major groups of the 1990 Census occupation classification, by occ1990dd code range.
const GROUPS: [(u32, u32, &str, &str); 9] = [
    (
        1,
        42,
        "G1",
        "Executive, administrative and managerial occupations",
    ),
    (43, 202, "G2", "Professional specialty occupations"),
    (
        203,
        242,
        "G3",
        "Technicians and related support occupations",
    ),
    (243, 302, "G4", "Sales occupations"),
    (
        303,
        402,
        "G5",
        "Administrative support occupations, including clerical",
    ),
    (403, 472, "G6", "Service occupations"),
    (473, 502, "G7", "Farming, forestry and fishing occupations"),
    (
        503,
        702,
        "G8",
        "Precision production, craft and repair occupations",
    ),
    (703, 999, "G9", "Operators, fabricators and laborers"),
];

fn group_of(code: &str) -> &'static str {
    let n: u32 = code.parse().expect("occ1990dd codes are numbers");
    GROUPS
        .iter()
        .find(|(lo, hi, _, _)| (*lo..=*hi).contains(&n))
        .map(|g| g.2)
        .expect("every code has a group")
}

/// Writes a small survey in the long layout (waves 1984-1991 of a synthetic NLSY79-like panel)
/// with its mapping, the nine-group taxonomy and the crosswalk from occ1990dd codes.
fn small_survey(dir: &Path, workers: usize, seed: u64) {
    let full = dir.join("full.parquet");
    run_ok(
        labor()
            .args(["synth", "--preset", "nlsy79", "--workers"])
            .arg(workers.to_string())
            .arg("--seed")
            .arg(seed.to_string())
            .arg("--out")
            .arg(&full),
    );
    let panel = io::read_parquet(&full).unwrap();
    let tax = panel.taxonomy();
    let mut csv = String::from("pid,year,occ,sex,race,reg,byear\n");
    let mut keys: [BTreeSet<&str>; 3] = Default::default();
    for w in panel.workers() {
        for r in w.records.iter().filter(|r| (1984..=1991).contains(&r.year)) {
            let occ = match tax.special_of(r.state) {
                Some(SpecialState::InEducation) => "S".to_string(),
                Some(SpecialState::Unemployed) => "U".to_string(),
                Some(SpecialState::NotInLaborForce) => "N".to_string(),
                None => tax.code(r.state).to_string(),
            };
            let birth = w.birth_year.map(|b| b.to_string()).unwrap_or_default();
            let (g, e, reg) = (w.gender.key(), w.ethnicity.key(), w.region.key());
            writeln!(csv, "{},{},{occ},{g},{e},{reg},{birth}", w.id, r.year).unwrap();
            keys[0].insert(g);
            keys[1].insert(e);
            keys[2].insert(reg);
        }
    }
    std::fs::write(dir.join("survey.csv"), csv).unwrap();
    let mut mapping = String::from(
        "dataset = \"small-survey\"\n[columns]\nworker_id = \"pid\"\nyear = \"year\"\n\
         occupation = \"occ\"\ngender = \"sex\"\nethnicity = \"race\"\nregion = \"reg\"\n\
         birth_year = \"byear\"\n[occupation]\nscheme = \"occ90\"\n[occupation.special]\n\
         \"S\" = \"education\"\n\"U\" = \"unemployed\"\n\"N\" = \"not_in_labor_force\"\n",
    );
    for (name, set) in ["gender", "ethnicity", "region"].iter().zip(&keys) {
        writeln!(mapping, "[values.{name}]").unwrap();
        for k in set {
            writeln!(mapping, "\"{k}\" = \"{k}\"").unwrap();
        }
    }
    std::fs::write(dir.join("mapping.toml"), mapping).unwrap();
    let mut groups = String::from("code,title\n");
    for (_, _, code, title) in GROUPS {
        writeln!(groups, "{code},\"{title}\"").unwrap();
    }
    std::fs::write(dir.join("groups.csv"), groups).unwrap();
    let occ = Taxonomy::occ1990dd();
    let mut cw = String::from("source_code,target_code\n");
    for (id, o) in occ.outcomes() {
        if occ.is_occupation(id) {
            writeln!(cw, "{},{}", o.code, group_of(&o.code)).unwrap();
        }
    }
    std::fs::write(dir.join("crosswalk.csv"), cw).unwrap();
}

/// The number printed right after `label`.
fn number_after(printed: &str, label: &str) -> f64 {
    let at = printed
        .find(label)
        .unwrap_or_else(|| panic!("`{label}` in {printed}"))
        + label.len();
    printed[at..]
        .split(|c: char| c == ';' || c == ':' || c.is_whitespace())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn defaults_beat_the_empirical_table_on_a_small_survey_with_nine_groups() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    small_survey(d, 560, 11);
    let panel = d.join("panel.parquet");
    run_ok(
        labor()
            .args(["ingest", "--format", "long", "--input"])
            .arg(d.join("survey.csv"))
            .arg("--mapping")
            .arg(d.join("mapping.toml"))
            .arg("--taxonomy")
            .arg(d.join("groups.csv"))
            .arg("--crosswalk")
            .arg(format!("occ90={}", d.join("crosswalk.csv").display()))
            .arg("--out")
            .arg(&panel),
    );
    let split = d.join("split");
    run_ok(
        labor()
            .args(["split", "--panel"])
            .arg(&panel)
            .arg("--out-dir")
            .arg(&split),
    );
    let train = io::read_parquet(split.join("train.parquet")).unwrap();
    assert_eq!(
        train.taxonomy().len(),
        12,
        "nine groups and three special states"
    );
    assert!(
        (300..=450).contains(&train.len()),
        "a few hundred training workers: {}",
        train.len()
    );
    let waves: BTreeSet<i32> = train
        .workers()
        .iter()
        .flat_map(|w| w.records.iter().map(|r| r.year))
        .collect();
    assert_eq!(waves.len(), 8);

    let mut ppl = std::collections::HashMap::new();
    for kind in ["empirical", "logit", "career"] {
        let model = d.join(kind);
        let trained = run_ok(
            labor()
                .args(["train", "--kind", kind, "--train"])
                .arg(split.join("train.parquet"))
                .arg("--valid")
                .arg(split.join("valid.parquet"))
                .arg("--out")
                .arg(&model),
        );
        if kind != "empirical" {
            // Converged: the best validation epoch came well before the last epoch run (the
            // stopping rule's, or the cap of 200 epochs).
            let best = number_after(&trained, "at epoch ");
            let last = if trained.contains("stopped early") {
                number_after(&trained, "stopped early after epoch ")
            } else {
                200.0
            };
            assert!(best + 10.0 < last, "{kind}: {trained}");
        }
        let predicted = run_ok(
            labor()
                .args(["predict", "--model"])
                .arg(&model)
                .arg("--panel")
                .arg(split.join("test.parquet"))
                .arg("--out")
                .arg(d.join(format!("{kind}.parquet"))),
        );
        ppl.insert(kind, number_after(&predicted, "perplexity "));
    }
    let (emp, logit, career) = (ppl["empirical"], ppl["logit"], ppl["career"]);
    assert!(logit < emp, "logit {logit} vs empirical {emp}");
    assert!(career < emp, "CAREER {career} vs empirical {emp}");
}
