use std::collections::BTreeMap;
use std::sync::Arc;

use labor_data::ingest::{Format, IngestBuilder, Ingested, OnError};
use labor_data::{Education, Ethnicity, Gender, Region, Taxonomy};
use proptest::prelude::*;

use crate::fixtures;

fn ingest(
    format: Format,
    dir: &str,
    input: &str,
    mapping: &str,
    policy: OnError,
) -> labor_data::Result<Ingested> {
    let d = fixtures().join(dir);
    IngestBuilder::new(format, d.join(input), d.join(mapping))
        .with_on_error(policy)
        .build()?
        .run()
}

/// (year, state code, education key) of one worker.
fn records(out: &Ingested, id: &str) -> Vec<(i32, String, &'static str)> {
    let tax = out.panel.taxonomy();
    let w = out
        .panel
        .workers()
        .iter()
        .find(|w| w.id == id)
        .unwrap_or_else(|| panic!("worker {id}"));
    w.records
        .iter()
        .map(|r| (r.year, tax.code(r.state).to_string(), r.education.key()))
        .collect()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn long_csv_with_drop_policy_counts_every_bad_row() {
    let out = ingest(
        Format::Long,
        "long",
        "panel.csv",
        "mapping.toml",
        OnError::Drop,
    )
    .unwrap();
    let r = &out.report;
    assert_eq!(r.rows_read, 22);
    assert_eq!((r.workers, r.worker_years), (5, 16));
    assert_eq!(
        r.dropped,
        counts(&[
            ("duplicate_worker_year", 1),
            ("malformed", 1),
            ("unknown_occupation", 1),
            ("unmapped_value", 1),
            ("year_out_of_range", 1),
        ])
    );
    assert_eq!(r.gaps, counts(&[("missing_state", 1)]));
    let file = fixtures().join("long/panel.csv").display().to_string();
    assert_eq!(
        r.examples[0],
        format!("{file}:18: worker `104` already has a record for 2002")
    );
    assert_eq!(
        r.examples[1],
        format!("{file}:19: column `occ2010`: unknown census2010 occupation code `9999`")
    );
    assert_eq!(
        r.examples[2],
        format!("{file}:20: column `sex`: value `7` is not mapped onto a gender category")
    );
    assert_eq!(
        r.examples[3],
        format!("{file}:21: column `year`: year 1850 is outside 1970..=2030")
    );
    assert_eq!(
        r.examples[4],
        format!("{file}:22: malformed row: 8 fields, the header has 9")
    );

    assert_eq!(
        records(&out, "101"),
        vec![
            (2001, "education".into(), "high_school"),
            (2002, "education".into(), "some_college"),
            (2003, "276".into(), "some_college"),
            (2004, "276".into(), "some_college"),
            (2006, "156".into(), "college"),
            (2008, "156".into(), "college"),
        ]
    );
    assert_eq!(
        records(&out, "102"),
        vec![
            (2001, "567".into(), "less_than_high_school"),
            (2002, "567".into(), "less_than_high_school"),
            (2003, "unemployed".into(), "less_than_high_school"),
            (2005, "804".into(), "high_school"),
        ]
    );
    let w101 = &out.panel.workers()[0];
    assert_eq!(
        (w101.gender, w101.ethnicity, w101.region),
        (Gender::Female, Ethnicity::Black, Region::South)
    );
    assert_eq!((w101.birth_year, w101.weight), (Some(1983), Some(1520.5)));
    assert_eq!(w101.gaps(), vec![2005, 2007]);
    let w104 = out.panel.workers().iter().find(|w| w.id == "104").unwrap();
    assert_eq!(w104.weight, None);
    assert_eq!(w104.records.len(), 2);
}

#[test]
fn long_csv_with_fail_policy_stops_at_the_first_bad_row() {
    let err = ingest(
        Format::Long,
        "long",
        "panel.csv",
        "mapping.toml",
        OnError::Fail,
    )
    .unwrap_err();
    let file = fixtures().join("long/panel.csv").display().to_string();
    assert_eq!(
        err.to_string(),
        format!("{file}:18: worker `104` already has a record for 2002")
    );
}

#[test]
fn long_parquet_gives_the_same_panel_as_csv() {
    let csv_out = ingest(
        Format::Long,
        "long",
        "panel.csv",
        "mapping.toml",
        OnError::Drop,
    )
    .unwrap();
    // Write the fixture's rows to Parquet with numeric columns typed as numbers.
    let text = std::fs::read_to_string(fixtures().join("long/panel.csv")).unwrap();
    let mut cols: Vec<Vec<String>> = vec![Vec::new(); 9];
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 9 {
            continue;
        }
        for (i, v) in f.iter().enumerate() {
            cols[i].push(v.to_string());
        }
    }
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    let int = |c: &Vec<String>| -> ArrayRef {
        Arc::new(Int64Array::from_iter(
            c.iter().map(|v| v.parse::<i64>().ok()),
        ))
    };
    let s = |c: &Vec<String>| -> ArrayRef { Arc::new(StringArray::from_iter_values(c.iter())) };
    let batch = RecordBatch::try_from_iter(vec![
        ("pid", int(&cols[0])),
        ("year", int(&cols[1])),
        ("occ2010", s(&cols[2])),
        ("grade", int(&cols[3])),
        ("sex", int(&cols[4])),
        ("race", int(&cols[5])),
        ("reg", int(&cols[6])),
        ("byear", int(&cols[7])),
        (
            "wt",
            Arc::new(Float64Array::from_iter(
                cols[8].iter().map(|v| v.parse::<f64>().ok()),
            )) as ArrayRef,
        ),
    ])
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("panel.parquet");
    let f = std::fs::File::create(&path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let pq_out = IngestBuilder::new(Format::Long, &path, fixtures().join("long/mapping.toml"))
        .with_on_error(OnError::Drop)
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(pq_out.panel, csv_out.panel);
    assert_eq!(pq_out.report.rows_read, 21);
}

#[test]
fn nlsy79_wide_csv() {
    let out = ingest(
        Format::Nlsy79,
        "nlsy79",
        "extract.csv",
        "variables.toml",
        OnError::Fail,
    )
    .unwrap();
    let r = &out.report;
    assert_eq!((r.rows_read, r.workers, r.worker_years), (5, 4, 18));
    assert_eq!(r.workers_without_records, 1);
    assert_eq!(
        r.gaps,
        counts(&[("missing_occupation", 1), ("non_interview", 6)])
    );
    assert_eq!(r.imputed, counts(&[("education_carried_forward", 1)]));
    let codes = |id| {
        records(&out, id)
            .into_iter()
            .map(|(y, c, _)| (y, c))
            .collect::<Vec<_>>()
    };
    let v = |pairs: &[(i32, &str)]| {
        pairs
            .iter()
            .map(|(y, c)| (*y, c.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        codes("1"),
        v(&[
            (1979, "education"),
            (1980, "education"),
            (1982, "313"),
            (1984, "313"),
            (2002, "313")
        ])
    );
    assert_eq!(
        codes("2"),
        v(&[
            (1979, "434"),
            (1980, "434"),
            (1982, "unemployed"),
            (2002, "434")
        ])
    );
    assert_eq!(
        codes("3"),
        v(&[
            (1979, "education"),
            (1980, "education"),
            (1982, "785"),
            (1984, "785"),
            (2002, "not_in_labor_force")
        ])
    );
    assert_eq!(
        codes("4"),
        v(&[(1979, "4"), (1980, "4"), (1984, "243"), (2002, "23")])
    );
    let w1 = &out.panel.workers()[0];
    assert_eq!(
        (w1.birth_year, w1.gender, w1.ethnicity, w1.region),
        (
            Some(1958),
            Gender::Female,
            Ethnicity::White,
            Region::Northeast
        )
    );
    assert_eq!(
        w1.records.iter().map(|r| r.education).collect::<Vec<_>>(),
        vec![
            Education::HighSchool,
            Education::SomeCollege,
            Education::SomeCollege,
            Education::SomeCollege,
            Education::College
        ]
    );
    // Respondent 3's 1984 grade is -3: 1982's value is carried forward.
    assert_eq!(records(&out, "3")[3].2, "less_than_high_school");
}

#[test]
fn nlsy97_codes_times_ten() {
    let out = ingest(
        Format::Nlsy97,
        "nlsy97",
        "extract.csv",
        "variables.toml",
        OnError::Fail,
    )
    .unwrap();
    assert_eq!((out.report.workers, out.report.worker_years), (3, 8));
    let codes: Vec<Vec<String>> = ["1", "2", "3"]
        .iter()
        .map(|id| records(&out, id).into_iter().map(|r| r.1).collect())
        .collect();
    assert_eq!(codes[0], ["education", "276", "156"]);
    assert_eq!(codes[1], ["435", "435", "unemployed"]);
    assert_eq!(codes[2], ["education", "313"]);
    assert_eq!(out.panel.workers()[2].ethnicity, Ethnicity::Hispanic);
}

#[test]
fn psid_fixed_width() {
    let out = ingest(
        Format::Psid,
        "psid",
        "individual.txt",
        "variables.toml",
        OnError::Fail,
    )
    .unwrap();
    assert_eq!((out.report.workers, out.report.worker_years), (4, 7));
    let ids: Vec<&str> = out.panel.workers().iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["1234001", "1234002", "2001003", "2002001"]);
    let codes = |id| {
        records(&out, id)
            .into_iter()
            .map(|r| r.1)
            .collect::<Vec<_>>()
    };
    assert_eq!(codes("1234001"), ["274", "274"]);
    assert_eq!(codes("1234002"), ["not_in_labor_force", "313"]);
    assert_eq!(codes("2001003"), ["education"]);
    assert_eq!(codes("2002001"), ["434", "unemployed"]);
    assert_eq!(out.report.gaps, counts(&[("non_interview", 1)]));
    let w = out
        .panel
        .workers()
        .iter()
        .find(|w| w.id == "2002001")
        .unwrap();
    assert_eq!(
        (w.ethnicity, w.region, w.birth_year),
        (Ethnicity::Hispanic, Region::West, Some(1945))
    );
}

#[test]
fn psid_short_record_names_the_variable_and_its_columns() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("short.txt");
    std::fs::write(&input, "1234  1119501 2851213 285121\n").unwrap();
    let err = IngestBuilder::new(Format::Psid, &input, fixtures().join("psid/variables.toml"))
        .build()
        .unwrap()
        .run()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:1: column `REG1999 (columns 29-29)`: malformed row: record has 28 characters, too short for this variable",
            input.display()
        )
    );
}

#[test]
fn wide_unknown_code_and_unmapped_status_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.csv");
    let text = std::fs::read_to_string(fixtures().join("nlsy79/extract.csv")).unwrap();
    // Respondent 4's 1984 occupation becomes 1980 code 999, which does not exist.
    std::fs::write(&input, text.replace("243,17,1,2", "999,17,1,2")).unwrap();
    let b = IngestBuilder::new(
        Format::Nlsy79,
        &input,
        fixtures().join("nlsy79/variables.toml"),
    );
    let err = b.clone().build().unwrap().run().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:5: column `R1423500`: unknown census1980 occupation code `999`",
            input.display()
        )
    );
    let out = b
        .with_on_error(OnError::Drop)
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(out.report.dropped, counts(&[("unknown_occupation", 1)]));
    assert_eq!(out.report.worker_years, 17);
}

#[test]
fn mapping_errors_name_the_mapping_file() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("m.toml");
    let d = fixtures().join("long");
    let text = std::fs::read_to_string(d.join("mapping.toml")).unwrap();
    std::fs::write(
        &mapping,
        text.replace("scheme = \"census2010\"", "scheme = \"isco08\""),
    )
    .unwrap();
    let err = IngestBuilder::new(Format::Long, d.join("panel.csv"), &mapping)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: invalid mapping: occupation scheme `isco08` has no crosswalk in taxonomy `occ1990dd` (known: native, title, census1970, census1980, census1990, census2000, census2010)",
            mapping.display()
        )
    );
    std::fs::write(
        &mapping,
        text.replace("\"2\" = \"female\"", "\"2\" = \"woman\""),
    )
    .unwrap();
    let err = IngestBuilder::new(Format::Long, d.join("panel.csv"), &mapping)
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("[values.gender] maps `2` to `woman`, which is not a gender category"),
        "{err}"
    );
    std::fs::write(
        &mapping,
        text.replace("occupation = \"occ2010\"", "occupation = \"occ\""),
    )
    .unwrap();
    let err = IngestBuilder::new(Format::Long, d.join("panel.csv"), &mapping)
        .build()
        .unwrap()
        .run()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: column `occ` named in the mapping is not in the file",
            d.join("panel.csv").display()
        )
    );
}

#[test]
fn user_taxonomy_with_titles() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("t.csv");
    std::fs::write(
        &input,
        "id,year,job\na,2000,Bakers\na,2001,unemployed\nb,2000,cooks\n",
    )
    .unwrap();
    let mapping = dir.path().join("m.toml");
    std::fs::write(&mapping, "dataset = \"mine\"\n[columns]\nworker_id = \"id\"\nyear = \"year\"\noccupation = \"job\"\n[occupation]\nscheme = \"title\"\n").unwrap();
    let tax = Arc::new(Taxonomy::from_csv_path(fixtures().join("taxonomy/toy.csv")).unwrap());
    let out = IngestBuilder::new(Format::Long, &input, &mapping)
        .with_taxonomy(tax)
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(
        records(&out, "a"),
        vec![
            (2000, "B1".into(), "unknown"),
            (2001, "unemployed".into(), "unknown")
        ]
    );
    assert_eq!(records(&out, "b"), vec![(2000, "C1".into(), "unknown")]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any valid long panel written as CSV is read back record for record, whatever the row order.
    #[test]
    fn long_reader_keeps_every_valid_row(
        rows in prop::collection::btree_map((0u8..6, 1980..2020i32), (0usize..529, 0i64..20), 1..60),
        shuffle_seed in any::<u64>(),
    ) {
        let tax = Taxonomy::occ1990dd();
        let table = tax.crosswalk("census2010").unwrap();
        let mut lines: Vec<String> = rows
            .iter()
            .map(|((w, y), (c, g))| format!("w{w},{y},{:04},{g}", table[*c].0.parse::<u32>().unwrap()))
            .collect();
        labor_data::SeededRng::new(shuffle_seed).shuffle(&mut lines);
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("p.csv");
        std::fs::write(&input, format!("pid,year,occ,grade\n{}\n", lines.join("\n"))).unwrap();
        let mapping = dir.path().join("m.toml");
        std::fs::write(&mapping, "dataset = \"p\"\neducation_coding = \"years_of_schooling\"\n[columns]\nworker_id = \"pid\"\nyear = \"year\"\noccupation = \"occ\"\neducation = \"grade\"\n[occupation]\nscheme = \"census2010\"\n").unwrap();
        let out = IngestBuilder::new(Format::Long, &input, &mapping).build().unwrap().run().unwrap();
        prop_assert_eq!(out.report.worker_years as usize, rows.len());
        for ((w, y), (c, g)) in &rows {
            let worker = out.panel.workers().iter().find(|x| x.id == format!("w{w}")).unwrap();
            let rec = worker.records.iter().find(|r| r.year == *y).unwrap();
            prop_assert_eq!(rec.state, table[*c].1);
            prop_assert_eq!(rec.education, Education::from_years_of_schooling(*g));
        }
    }
}
