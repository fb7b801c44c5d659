//! Invariants over random synthetic panels.

use std::collections::HashSet;
use std::sync::Arc;

use labor_data::{Panel, Preset, SplitterBuilder, SynthBuilder, Taxonomy};
use labor_template::{
    DemographicFields, IclSampling, Layout, Rendered, TargetRule, Template, TemplateBuilder,
    TemplateKind,
};
use proptest::prelude::*;

fn panel(seed: u64, n: usize) -> Panel {
    SynthBuilder::new(Preset::Psid81)
        .with_workers(n)
        .with_seed(seed)
        .build()
        .unwrap()
        .generate()
        .panel
}

/// The continuation of each target is " title\n" and names the observed state; for shared
/// layouts the standalone prompt equals the text's prefix.
fn check_spans(
    t: &dyn Template,
    panel: &Panel,
    numbered: Option<u64>,
) -> Result<(), TestCaseError> {
    let tax = panel.taxonomy();
    let labels = numbered.map(|s| tax.numbered(s));
    for w in panel.workers() {
        let rendered = t.render(w).unwrap();
        prop_assert_eq!(
            t.layout() == Layout::Shared,
            matches!(rendered, Rendered::Shared(_))
        );
        for doc in rendered.documents() {
            for target in &doc.targets {
                prop_assert_eq!(target.prompt_end, target.continuation_start);
                let cont = doc.continuation(target);
                prop_assert!(cont.starts_with(' ') && cont.ends_with('\n'));
                let title = &cont[1..cont.len() - 1];
                let back = match &labels {
                    Some(l) => l.id_of_label(title),
                    None => tax.id_of_title(title),
                };
                prop_assert_eq!(back, Some(target.state_id));
                prop_assert_eq!(target.state_id, w.records[target.record].state);
                prop_assert_eq!(doc.prompt(target), t.prompt(w, target.record).unwrap());
                prop_assert!(doc.text.is_char_boundary(target.prompt_end));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn resume_and_prompts_are_prefix_consistent(seed in any::<u64>(), numbered in prop::option::of(any::<u64>())) {
        let p = panel(seed, 12);
        for kind in [TemplateKind::Resume, TemplateKind::Prompt, TemplateKind::PromptWithTitles] {
            let mut b = TemplateBuilder::new(p.taxonomy().clone(), kind);
            if let Some(s) = numbered {
                b = b.with_numbered_titles(s);
            }
            let t = b.build().unwrap();
            prop_assert_eq!(t.layout(), Layout::Shared);
            check_spans(t.as_ref(), &p, numbered)?;
        }
    }

    #[test]
    fn target_rules_select_what_they_say(seed in any::<u64>()) {
        let p = panel(seed, 10);
        for rule in TargetRule::ALL {
            let t = TemplateBuilder::new(p.taxonomy().clone(), TemplateKind::Resume).with_targets(rule).build().unwrap();
            for w in p.workers() {
                let r = t.render(w).unwrap();
                let targets = &r.documents()[0].targets;
                let got: Vec<usize> = targets.iter().map(|t| t.record).collect();
                let want: Vec<usize> = (0..w.records.len()).filter(|k| rule.selects_record(w, *k)).collect();
                prop_assert_eq!(&got, &want);
                for t in targets {
                    let previous = t.record.checked_sub(1).map(|j| w.records[j].state);
                    prop_assert_eq!(t.previous_state_id, previous);
                    match rule {
                        TargetRule::Changes => prop_assert!(previous.is_some_and(|p| p != t.state_id)),
                        TargetRule::Stays => prop_assert_eq!(previous, Some(t.state_id)),
                        _ => {}
                    }
                }
                if rule == TargetRule::All {
                    prop_assert_eq!(got.len(), w.records.len());
                }
            }
        }
    }

    /// In-context examples come only from the training pool, never the worker itself, and the
    /// same seed gives the same texts.
    #[test]
    fn icl_uses_only_other_training_workers(seed in any::<u64>(), k in 1usize..5) {
        let p = panel(seed, 60);
        let parts = SplitterBuilder::new().with_seed(seed).build().unwrap().split(&p);
        prop_assume!(parts.train.len() > k + 1 && !parts.test.is_empty());
        let train = Arc::new(parts.train.clone());
        let train_ids: HashSet<&str> = train.workers().iter().map(|w| w.id.as_str()).collect();
        for sampling in [IclSampling::PerTarget, IclSampling::PerWorker] {
            let build = || TemplateBuilder::new(p.taxonomy().clone(), TemplateKind::Icl { with_titles: false })
                .with_icl_pool(Arc::clone(&train))
                .with_icl_examples(k)
                .with_icl_seed(seed)
                .with_icl_sampling(sampling)
                .build()
                .unwrap();
            let t = build();
            // Test workers and training workers alike never see themselves.
            for w in parts.test.workers().iter().chain(train.workers().iter().take(5)) {
                let rendered = t.render(w).unwrap();
                prop_assert_eq!(&rendered, &build().render(w).unwrap());
                for doc in rendered.documents() {
                    // Each example is one "<A worker from" header; the worker's own comes last.
                    prop_assert_eq!(doc.text.matches("<A worker from").count(), k + 1);
                }
            }
            check_spans(t.as_ref(), &parts.test, None)?;
        }
        // The example indices themselves: distinct positions of the training pool, never the worker's.
        let icl = TemplateBuilder::new(p.taxonomy().clone(), TemplateKind::Icl { with_titles: false })
            .with_icl_pool(Arc::clone(&train))
            .with_icl_examples(k)
            .with_icl_seed(seed)
            .build_icl()
            .unwrap();
        for w in parts.test.workers().iter().chain(train.workers().iter()) {
            for rec in 0..w.records.len() {
                let idx = icl.examples(w, rec).unwrap();
                let distinct: HashSet<usize> = idx.iter().copied().collect();
                prop_assert_eq!(distinct.len(), k);
                for i in idx {
                    let ex = &train.workers()[i];
                    prop_assert!(train_ids.contains(ex.id.as_str()));
                    prop_assert_ne!(&ex.id, &w.id);
                }
            }
        }
    }

    #[test]
    fn randomisation_draws_from_training_and_is_seeded(seed in any::<u64>()) {
        let p = panel(seed, 40);
        let parts = SplitterBuilder::new().build().unwrap().split(&p);
        prop_assume!(!parts.train.is_empty());
        let train = Arc::new(parts.train.clone());
        let fields: DemographicFields = "gender,region".parse().unwrap();
        let build = |s| TemplateBuilder::new(p.taxonomy().clone(), TemplateKind::Prompt)
            .with_randomization(fields, s, Arc::clone(&train))
            .build()
            .unwrap();
        let (a, b) = (build(seed), build(seed));
        let pairs: HashSet<(String, String)> = train
            .workers()
            .iter()
            .map(|w| (labor_data::Gender::key(w.gender).to_string(), labor_data::Region::key(w.region).to_string()))
            .collect();
        for w in parts.test.workers() {
            let ta = a.render(w).unwrap();
            prop_assert_eq!(&ta, &b.render(w).unwrap());
            // Ethnicity is untouched; the careers are unchanged.
            let plain = TemplateBuilder::new(p.taxonomy().clone(), TemplateKind::Prompt).build().unwrap().render(w).unwrap();
            let (da, dp) = (&ta.documents()[0], &plain.documents()[0]);
            let tail = |d: &labor_template::Document| d.text.lines().skip(2).collect::<Vec<_>>().join("\n");
            prop_assert_eq!(tail(da), tail(dp));
            let intro = da.text.lines().nth(1).unwrap();
            prop_assert!(pairs.iter().any(|(g, r)| intro.contains(&format!(" {g} ")) && intro.contains(&format!(" {r} region"))), "{}", intro);
        }
    }
}

#[test]
fn icl_example_indices_exclude_the_worker() {
    let p = panel(5, 30);
    let pool = Arc::new(p.clone());
    let build = |k| {
        TemplateBuilder::new(
            p.taxonomy().clone(),
            TemplateKind::Icl { with_titles: true },
        )
        .with_icl_pool(Arc::clone(&pool))
        .with_icl_examples(k)
    };
    // 29 examples out of a pool of 30 that holds the worker: all the others, never the worker.
    let icl = build(29).build_icl().unwrap();
    let w = &p.workers()[7];
    let mut idx = icl.examples(w, 0).unwrap();
    idx.sort();
    assert_eq!(idx, (0..30).filter(|i| *i != 7).collect::<Vec<_>>());
    let doc = &icl.render(w).unwrap().documents()[0].clone();
    assert!(
        doc.text
            .starts_with("The valid job titles are the following, one per line:\n")
    );
    assert_eq!(doc.text.matches("The valid job titles").count(), 1);
    // 30 examples cannot be drawn without the worker itself.
    assert!(build(30).build().unwrap().render(w).is_err());
    assert!(
        TemplateBuilder::new(Arc::new(Taxonomy::occ1990dd()), TemplateKind::Resume)
            .build_icl()
            .is_err()
    );
}
