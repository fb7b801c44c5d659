use std::collections::HashSet;

use labor_data::{Scheme, SpecialState, StateId, Taxonomy, normalize_code};
use proptest::prelude::*;

use crate::{fixtures, shared_reference};

#[test]
fn builtin_has_occ1990dd_plus_three_special_states() {
    let t = Taxonomy::occ1990dd();
    assert_eq!(t.name(), "occ1990dd");
    assert_eq!(t.occupation_ids().len(), 341);
    assert_eq!(t.len(), 344);
    for s in SpecialState::ALL {
        let id = t.special(s);
        assert_eq!(t.special_of(id), Some(s));
        assert_eq!(t.code(id), s.code());
        assert!(!t.is_occupation(id));
    }
    assert_eq!(
        t.title(t.special(SpecialState::NotInLaborForce)),
        "Not in labor force"
    );
}

#[test]
fn lookups_both_ways_for_every_outcome() {
    let t = Taxonomy::occ1990dd();
    for (id, o) in t.outcomes() {
        assert_eq!(t.id_of_code(&o.code), Some(id));
        assert_eq!(t.id_of_title(&o.title), Some(id));
        assert_eq!(t.id_of_title(&o.title.to_uppercase()), Some(id));
        assert!(!o.title.contains('\n'));
    }
    assert_eq!(t.id_of_code("0436"), t.id_of_code("436"));
    assert_eq!(t.title(t.id_of_code("436").unwrap()), "Cooks");
}

/// Spot checks against the public Census classifications: a code of each vintage whose
/// occ1990dd destination is unambiguous.
#[test]
fn crosswalk_spot_checks() {
    let t = Taxonomy::occ1990dd();
    let cases = [
        ("census1970", "372", "313"), // secretaries, n.e.c.
        ("census1970", "910", "434"), // bartenders
        ("census1970", "001", "23"),  // accountants
        ("census1980", "313", "313"), // secretaries
        ("census1980", "436", "436"), // cooks, except short order
        ("census1980", "007", "7"),   // financial managers
        ("census1990", "313", "313"),
        ("census1990", "436", "436"),
        ("census2000", "570", "313"), // secretaries and administrative assistants
        ("census2000", "472", "276"), // cashiers
        ("census2000", "402", "436"), // cooks
        ("census2010", "2310", "156"), // elementary and middle school teachers
        ("census2010", "5700", "313"),
        ("census2010", "4720", "276"),
        ("census2010", "0010", "4"),   // chief executives
        ("census2010", "6230", "567"), // carpenters
    ];
    for (scheme, src, dst) in cases {
        let s: Scheme = scheme.parse().unwrap();
        assert_eq!(
            t.resolve(&s, src).map(|id| t.code(id).to_string()),
            Some(dst.to_string()),
            "{scheme} {src}"
        );
    }
    assert_eq!(t.resolve(&"census2010".parse().unwrap(), "9999"), None);
}

#[test]
fn every_occupation_is_reached_from_1990_and_1980_codes() {
    let t = Taxonomy::occ1990dd();
    for scheme in ["census1980", "census1990"] {
        let reached: HashSet<StateId> = t
            .crosswalk(scheme)
            .unwrap()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        assert_eq!(reached.len(), 341, "{scheme}");
    }
    let sizes: Vec<usize> = [
        "census1970",
        "census1980",
        "census1990",
        "census2000",
        "census2010",
    ]
    .iter()
    .map(|s| t.crosswalk(s).unwrap().len())
    .collect();
    assert_eq!(sizes, vec![428, 502, 500, 505, 529]);
}

/// Coverage against the third-party Census 2010 → occ1990dd table in `shared/reference`
/// (present in this workplace, not shipped with the crate).
#[test]
fn census2010_agrees_with_reference_table() {
    let Some(dir) = shared_reference() else {
        eprintln!("shared/reference not present: cross-check not run");
        return;
    };
    let t = Taxonomy::occ1990dd();
    let scheme: Scheme = "census2010".parse().unwrap();
    let mut rdr =
        csv::Reader::from_path(dir.join("onet_census2010_to_occ1990dd_webb2020.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let occ = headers.iter().position(|h| h == "occ").unwrap();
    let dd = headers.iter().position(|h| h == "occ1990dd").unwrap();
    let (mut n, mut agree) = (0, 0);
    let mut seen = HashSet::new();
    for r in rdr.records() {
        let r = r.unwrap();
        let (src, dst) = (
            r.get(occ).unwrap().to_string(),
            r.get(dd).unwrap().to_string(),
        );
        if src.is_empty() || !seen.insert(src.clone()) {
            continue;
        }
        n += 1;
        if t.resolve(&scheme, &src).map(|id| t.code(id)) == Some(normalize_code(&dst).as_str()) {
            agree += 1;
        }
    }
    assert_eq!(n, 476);
    assert_eq!(agree, n, "{agree} of {n} Census 2010 codes agree");
}

#[test]
fn occ1990dd_codes_match_reference_title_list() {
    let Some(dir) = shared_reference() else {
        eprintln!("shared/reference not present: cross-check not run");
        return;
    };
    let t = Taxonomy::occ1990dd();
    let mut rdr = csv::Reader::from_path(dir.join("occ1990dd_titles_webb2020.csv")).unwrap();
    let codes: HashSet<String> = rdr
        .records()
        .map(|r| r.unwrap().get(0).unwrap().to_string())
        .collect();
    let ours: HashSet<String> = t
        .occupation_ids()
        .iter()
        .map(|id| t.code(*id).to_string())
        .collect();
    assert_eq!(codes, ours);
}

#[test]
fn user_taxonomy_with_crosswalk() {
    let dir = fixtures().join("taxonomy");
    let t = Taxonomy::from_csv_path(dir.join("toy.csv"))
        .unwrap()
        .with_crosswalk_reader(
            "isco08",
            std::fs::File::open(dir.join("toy_crosswalk.csv")).unwrap(),
        )
        .unwrap();
    assert_eq!(t.name(), "toy");
    assert_eq!(t.len(), 7);
    let isco: Scheme = "isco08".parse().unwrap();
    assert_eq!(
        t.resolve(&isco, "2341").map(|id| t.title(id)),
        Some("Teachers")
    );
    assert_eq!(
        t.resolve(&Scheme::Title, "cooks").map(|id| t.code(id)),
        Some("C1")
    );
    assert_eq!(
        t.resolve(&isco, "unemployed"),
        Some(t.special(SpecialState::Unemployed))
    );
    let err = Taxonomy::from_csv_path(dir.join("toy.csv"))
        .unwrap()
        .with_crosswalk_reader("bad", "source_code,target_code\n1,ZZ\n".as_bytes())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "<crosswalk bad>:2: column `target_code`: invalid taxonomy table: target code `ZZ` is not in taxonomy `toy`"
    );
    // Round trip through the embedded CSV form.
    let back = Taxonomy::from_csv_reader("toy", t.to_csv_string().as_bytes()).unwrap();
    assert_eq!(back, t);
}

#[test]
fn taxonomy_and_crosswalks_from_files_name_the_file_at_fault() {
    let dir = fixtures().join("taxonomy");
    let (toy, crosswalk) = (dir.join("toy.csv"), dir.join("toy_crosswalk.csv"));
    let t = Taxonomy::from_files(Some(&toy), &[("isco08".into(), crosswalk.clone())]).unwrap();
    let by_reader = Taxonomy::from_csv_path(&toy)
        .unwrap()
        .with_crosswalk_reader("isco08", std::fs::File::open(&crosswalk).unwrap())
        .unwrap();
    assert_eq!(t, by_reader);
    assert_eq!(
        Taxonomy::from_files(None, &[]).unwrap(),
        Taxonomy::occ1990dd()
    );
    assert!(Taxonomy::from_files(None, &[("isco08".into(), crosswalk)]).is_err());
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, "source_code,target_code\n1,ZZ\n").unwrap();
    let err = Taxonomy::from_files(Some(&toy), &[("bad".into(), bad.clone())]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2:", bad.display())),
        "{err}"
    );
    std::fs::write(&bad, "id,name\n").unwrap();
    let err = Taxonomy::from_files(Some(&bad), &[]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:1:", bad.display())),
        "{err}"
    );
}

proptest! {
    /// Every crosswalk maps each of its source codes, written with any number of leading zeros,
    /// onto an occupation of the taxonomy (never a special state).
    #[test]
    fn crosswalks_are_total_on_their_codes(scheme_i in 0usize..5, pick in any::<prop::sample::Index>(), zeros in 0usize..3) {
        let t = Taxonomy::occ1990dd();
        let scheme = ["census1970", "census1980", "census1990", "census2000", "census2010"][scheme_i];
        let table = t.crosswalk(scheme).unwrap();
        let (code, id) = table[pick.index(table.len())];
        let padded = format!("{}{code}", "0".repeat(zeros));
        let s: Scheme = scheme.parse().unwrap();
        prop_assert_eq!(t.resolve(&s, &padded), Some(id));
        prop_assert!(t.is_occupation(id));
    }

    /// Numbered titles are a bijection for any seed.
    #[test]
    fn numbered_titles_round_trip(seed in any::<u64>()) {
        let t = Taxonomy::occ1990dd();
        let n = t.numbered(seed);
        for (id, _) in t.outcomes() {
            prop_assert_eq!(n.id_of_label(n.label(id)), Some(id));
        }
    }
}
