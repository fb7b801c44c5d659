use std::sync::Arc;

use arrow_array::RecordBatch;
use labor_data::{
    Education, Ethnicity, Gender, Panel, Region, StateId, Taxonomy, Worker, YearRecord, io,
};
use proptest::prelude::*;

use crate::fixtures;

fn arb_worker(n_states: u16) -> impl Strategy<Value = Worker> {
    (
        "[a-z0-9-]{1,12}",
        prop::sample::select(vec!["nlsy79", "nlsy97", "psid", "my survey"]),
        prop::sample::select(Gender::ALL.to_vec()),
        prop::sample::select(Ethnicity::ALL.to_vec()),
        prop::sample::select(Region::ALL.to_vec()),
        prop::option::of(1900..2010i32),
        prop::option::of(0.0..1e6f64),
        prop::collection::btree_map(
            1950..2030i32,
            (0..n_states, prop::sample::select(Education::ALL.to_vec())),
            1..25,
        ),
    )
        .prop_map(|(id, ds, g, e, r, b, wt, recs)| Worker {
            id,
            dataset: ds.to_string(),
            gender: g,
            ethnicity: e,
            region: r,
            birth_year: b,
            weight: wt,
            records: recs
                .into_iter()
                .map(|(y, (s, ed))| YearRecord::new(y, StateId(s), ed))
                .collect(),
        })
}

fn arb_panel() -> impl Strategy<Value = Panel> {
    prop::collection::vec(arb_worker(344), 1..20).prop_map(|mut ws| {
        // Make ids unique.
        for (i, w) in ws.iter_mut().enumerate() {
            w.id = format!("{}-{i}", w.id);
        }
        Panel::new(Arc::new(Taxonomy::occ1990dd()), ws).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn parquet_and_jsonl_round_trip(panel in arb_panel()) {
        let dir = tempfile::tempdir().unwrap();
        io::write_parquet(&panel, dir.path().join("p.parquet")).unwrap();
        prop_assert_eq!(&io::read_parquet(dir.path().join("p.parquet")).unwrap(), &panel);
        io::write_jsonl(&panel, dir.path().join("p.jsonl")).unwrap();
        prop_assert_eq!(&io::read_jsonl(dir.path().join("p.jsonl"), panel.taxonomy().clone()).unwrap(), &panel);
    }
}

#[test]
fn user_taxonomy_travels_inside_the_parquet_file() {
    let tax = Arc::new(Taxonomy::from_csv_path(fixtures().join("taxonomy/toy.csv")).unwrap());
    let mut w = Worker::new("a", "toy");
    w.records = vec![
        YearRecord::new(2000, tax.id_of_code("B1").unwrap(), Education::HighSchool),
        YearRecord::new(
            2001,
            tax.id_of_code("unemployed").unwrap(),
            Education::HighSchool,
        ),
    ];
    let panel = Panel::new(Arc::clone(&tax), vec![w]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toy.parquet");
    io::write_parquet(&panel, &path).unwrap();
    let back = io::read_parquet(&path).unwrap();
    assert_eq!(back.taxonomy().name(), "toy");
    assert_eq!(back, panel);
}

fn write_batch(path: &std::path::Path, batch: &RecordBatch) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

#[test]
fn bad_parquet_rows_name_file_row_and_column() {
    let tax = Taxonomy::occ1990dd();
    let mut w = Worker::new("a", "x");
    w.records = vec![YearRecord::new(
        2000,
        tax.id_of_code("436").unwrap(),
        Education::College,
    )];
    let panel = Panel::new(
        Arc::new(tax),
        vec![w.clone(), {
            let mut b = w.clone();
            b.id = "b".into();
            b
        }],
    )
    .unwrap();
    let batch = io::to_record_batches(&panel).unwrap().remove(0);
    let dir = tempfile::tempdir().unwrap();

    // Unknown state code in row 2.
    let mut cols = batch.columns().to_vec();
    let i = batch.schema().index_of("state_code").unwrap();
    cols[i] = Arc::new(arrow_array::StringArray::from(vec!["436", "99999"]));
    let bad = RecordBatch::try_new(batch.schema(), cols).unwrap();
    let path = dir.path().join("bad.parquet");
    write_batch(&path, &bad);
    let err = io::read_parquet(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: column `state_code`: unknown occ1990dd occupation code `99999`",
            path.display()
        )
    );

    // The same worker-year twice.
    let mut cols = batch.columns().to_vec();
    let i = batch.schema().index_of("worker_id").unwrap();
    cols[i] = Arc::new(arrow_array::StringArray::from(vec!["a", "a"]));
    let dup = RecordBatch::try_new(batch.schema(), cols).unwrap();
    write_batch(&path, &dup);
    let err = io::read_parquet(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: worker `a` already has a record for 2000",
            path.display()
        )
    );

    // A missing column.
    let proj = batch.project(&[0, 1, 2]).unwrap();
    write_batch(&path, &proj);
    let err = io::read_parquet(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: column `ethnicity` named in the mapping is not in the file",
            path.display()
        )
    );
}

#[test]
fn jsonl_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jsonl");
    std::fs::write(&path, "{\"id\":\"a\",\"dataset\":\"d\",\"gender\":\"male\",\"ethnicity\":\"white\",\"region\":\"west\",\"birth_year\":null,\"weight\":null,\"records\":[{\"year\":2000,\"state\":\"436\",\"education\":\"college\"}]}\n{not json}\n").unwrap();
    let err = io::read_jsonl(&path, Arc::new(Taxonomy::occ1990dd())).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:2: invalid JSON", path.display())
    );
}

#[test]
fn json_lines_keep_their_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    std::fs::write(&path, "{\"text\":\"a\"}\n\n  \n{\"text\":\"b\"}\n").unwrap();
    let rows: Vec<(u64, serde_json::Value)> = io::read_json_lines(&path).unwrap();
    let got: Vec<(u64, &str)> = rows
        .iter()
        .map(|(n, v)| (*n, v["text"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [(1, "a"), (4, "b")]);
    std::fs::write(&path, "{\"text\":\"a\"}\n\n[1,\n").unwrap();
    let err = io::read_json_lines::<serde_json::Value>(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:3: invalid JSON", path.display())
    );
}

#[test]
fn write_panel_picks_the_format_by_extension_and_makes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let panel = labor_data::SynthBuilder::new(labor_data::Preset::Nlsy79)
        .with_workers(5)
        .with_seed(2)
        .build()
        .unwrap()
        .generate()
        .panel;
    let (pq, jl) = (dir.path().join("a/p.parquet"), dir.path().join("b/p.jsonl"));
    io::write_panel(&panel, &pq).unwrap();
    io::write_panel(&panel, &jl).unwrap();
    assert_eq!(io::read_parquet(&pq).unwrap(), panel);
    assert_eq!(
        io::read_jsonl(&jl, panel.taxonomy().clone()).unwrap(),
        panel
    );
}
