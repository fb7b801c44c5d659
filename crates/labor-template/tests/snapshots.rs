//! The texts of the LABOR-LLM talk, reproduced byte for byte.

use std::sync::Arc;

use labor_data::{Education, Ethnicity, Gender, Panel, Region, Taxonomy, Worker, YearRecord};
use labor_template::{Error, Rendered, TemplateBuilder, TemplateKind, Wording};

/// A taxonomy with the titles the talk shows.
fn talk_taxonomy() -> Arc<Taxonomy> {
    let csv = "code,title\n\
        1,Secretaries and administrative assistants\n\
        2,\"Carpet, floor, and tile installers and finishers\"\n\
        3,Elementary and middle school teachers\n\
        4,Adult Basic and Secondary Education and Literacy Teachers and Instructors\n\
        5,Sales Representatives Services All Other\n\
        6,\"Wholesale and retail buyers, except farm products\"\n\
        7,Postsecondary teachers\n\
        8,Cooks\n\
        9,\"Food servers, nonrestaurant\"\n";
    Arc::new(Taxonomy::from_csv_reader("talk", csv.as_bytes()).unwrap())
}

fn worker(
    tax: &Taxonomy,
    id: &str,
    dataset: &str,
    g: Gender,
    e: Ethnicity,
    r: Region,
    birth: Option<i32>,
    recs: &[(i32, Education, &str)],
) -> Worker {
    let mut w = Worker::new(id, dataset);
    w.gender = g;
    w.ethnicity = e;
    w.region = r;
    w.birth_year = birth;
    w.records = recs
        .iter()
        .map(|(y, ed, code)| YearRecord::new(*y, tax.id_of_code(code).unwrap(), *ed))
        .collect();
    w
}

fn nlsy79_resume_worker(tax: &Taxonomy) -> Worker {
    use Education::GraduateDegree as G;
    worker(
        tax,
        "n79",
        "nlsy79",
        Gender::Male,
        Ethnicity::White,
        Region::NorthCentral,
        Some(1960),
        &[
            (1988, G, "1"),
            (1989, G, "2"),
            (1990, G, "3"),
            (1991, G, "3"),
            (1992, G, "4"),
        ],
    )
}

fn psid_prompt_worker(tax: &Taxonomy) -> Worker {
    use Education::{College as C, GraduateDegree as G};
    worker(
        tax,
        "p1",
        "psid",
        Gender::Female,
        Ethnicity::Black,
        Region::South,
        Some(1963),
        &[
            (1986, C, "5"),
            (1987, C, "6"),
            (1988, G, "3"),
            (1989, G, "3"),
            (1990, G, "7"),
        ],
    )
}

#[test]
fn fine_tuning_resume() {
    let tax = talk_taxonomy();
    let t = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Resume)
        .build()
        .unwrap();
    let Rendered::Shared(doc) = t.render(&nlsy79_resume_worker(&tax)).unwrap() else {
        panic!("shared")
    };
    insta::assert_snapshot!(doc.text, @r"
    <A Resume from the NLSY79 Dataset>
    The following is the resume of a male white US worker residing in the northcentral region.
    The worker has the following work experience on the resume, one entry per line, including job code, year, education level and a description of the job:
    1988 to 1989 (graduate degree): Secretaries and administrative assistants
    1989 to 1990 (graduate degree): Carpet, floor, and tile installers and finishers
    1990 to 1991 (graduate degree): Elementary and middle school teachers
    1991 to 1992 (graduate degree): Elementary and middle school teachers
    1992 to present (graduate degree): Adult Basic and Secondary Education and Literacy Teachers and Instructors
    <END OF RESUME>
    ");
    assert!(doc.text.ends_with("Instructors\n<END OF RESUME>"));
    assert_eq!(doc.targets.len(), 5);
    let third = &doc.targets[2];
    assert_eq!(
        doc.continuation(third),
        " Elementary and middle school teachers\n"
    );
    // The fine-tuned model's inference prompt of the talk is the prefix up to that target.
    insta::assert_snapshot!(doc.prompt(third), @r"
    <A Resume from the NLSY79 Dataset>
    The following is the resume of a male white US worker residing in the northcentral region.
    The worker has the following work experience on the resume, one entry per line, including job code, year, education level and a description of the job:
    1988 to 1989 (graduate degree): Secretaries and administrative assistants
    1989 to 1990 (graduate degree): Carpet, floor, and tile installers and finishers
    1990 to 1991 (graduate degree):
    ");
    assert!(doc.prompt(third).ends_with("(graduate degree):"));
}

#[test]
fn prompt_without_titles() {
    let tax = talk_taxonomy();
    let t = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Prompt)
        .build()
        .unwrap();
    let w = psid_prompt_worker(&tax);
    let prompt = t.prompt(&w, 4).unwrap();
    insta::assert_snapshot!(prompt, @r"
    <A worker from the PSID dataset>
    The following information is available about the work history of a female Black or African American US worker residing in the south region.
    The worker was born in 1963.
    The worker has the following records of work experience, one entry per line, including year, education level, and the job title:
    1986 (college): Sales Representatives Services All Other
    1987 (college): Wholesale and retail buyers, except farm products
    1988 (graduate degree): Elementary and middle school teachers
    1989 (graduate degree): Elementary and middle school teachers
    1990 (graduate degree):
    ");
    assert!(prompt.ends_with("1990 (graduate degree):"));
    let Rendered::Shared(doc) = t.render(&w).unwrap() else {
        panic!("shared")
    };
    assert_eq!(
        doc.continuation(&doc.targets[4]),
        " Postsecondary teachers\n"
    );
}

/// The talk's second prompt writes the race label in lower case: a change of wording only.
#[test]
fn prompt_with_lower_case_labels() {
    let tax = talk_taxonomy();
    let mut wording = Wording::default();
    wording.ethnicity[1] = "black or african american".into();
    let t = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Prompt)
        .with_wording(wording)
        .build()
        .unwrap();
    use Education::SomeCollege as S;
    let w = worker(
        &tax,
        "p2",
        "psid",
        Gender::Female,
        Ethnicity::Black,
        Region::South,
        Some(1963),
        &[
            (1984, S, "8"),
            (1985, S, "8"),
            (1987, S, "9"),
            (1989, S, "8"),
        ],
    );
    insta::assert_snapshot!(t.prompt(&w, 3).unwrap(), @r"
    <A worker from the PSID dataset>
    The following information is available about the work history of a female black or african american US worker residing in the south region.
    The worker was born in 1963.
    The worker has the following records of work experience, one entry per line, including year, education level, and the job title:
    1984 (some college): Cooks
    1985 (some college): Cooks
    1987 (some college): Food servers, nonrestaurant
    1989 (some college):
    ");
}

#[test]
fn prompt_with_the_list_of_titles() {
    let tax = talk_taxonomy();
    let t = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::PromptWithTitles)
        .build()
        .unwrap();
    let w = psid_prompt_worker(&tax);
    let p = t.prompt(&w, 1).unwrap();
    insta::assert_snapshot!(p, @r"
    The valid job titles are the following, one per line:
    Secretaries and administrative assistants
    Carpet, floor, and tile installers and finishers
    Elementary and middle school teachers
    Adult Basic and Secondary Education and Literacy Teachers and Instructors
    Sales Representatives Services All Other
    Wholesale and retail buyers, except farm products
    Postsecondary teachers
    Cooks
    Food servers, nonrestaurant
    In education
    Unemployed
    Not in labor force

    <A worker from the PSID dataset>
    The following information is available about the work history of a female Black or African American US worker residing in the south region.
    The worker was born in 1963.
    The worker has the following records of work experience, one entry per line, including year, education level, and the job title:
    1986 (college): Sales Representatives Services All Other
    1987 (college):
    ");
}

#[test]
fn numbered_titles_replace_every_title() {
    let tax = talk_taxonomy();
    let t = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Prompt)
        .with_numbered_titles(3)
        .build()
        .unwrap();
    let w = psid_prompt_worker(&tax);
    let Rendered::Shared(doc) = t.render(&w).unwrap() else {
        panic!("shared")
    };
    let numbered = tax.numbered(3);
    for (target, rec) in doc.targets.iter().zip(&w.records) {
        assert_eq!(
            doc.continuation(target),
            format!(" {}\n", numbered.label(rec.state))
        );
        assert!(target.title.starts_with("job_") && target.title.len() == 7);
    }
    assert!(!doc.text.contains("teachers"));
    let line = doc.text.lines().nth(4).unwrap();
    assert!(line.starts_with("1986 (college): job_"), "{line}");
}

#[test]
fn unknown_covariates_are_left_out_not_invented() {
    let tax = talk_taxonomy();
    let t = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Prompt)
        .build()
        .unwrap();
    let w = worker(
        &tax,
        "u",
        "mysurvey",
        Gender::Unknown,
        Ethnicity::Unknown,
        Region::Unknown,
        None,
        &[(2000, Education::Unknown, "8")],
    );
    insta::assert_snapshot!(t.prompt(&w, 0).unwrap(), @r"
    <A worker from the mysurvey dataset>
    The following information is available about the work history of a US worker.
    The worker has the following records of work experience, one entry per line, including year, education level, and the job title:
    2000:
    ");
}

#[test]
fn bad_inputs_give_typed_errors() {
    let tax = talk_taxonomy();
    let t = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Resume)
        .build()
        .unwrap();
    let empty = Worker::new("e", "psid");
    assert!(matches!(t.render(&empty), Err(Error::EmptyWorker { .. })));
    let mut bad = nlsy79_resume_worker(&tax);
    bad.records[1].state = labor_data::StateId(999);
    let err = t.render(&bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "worker `n79`, year 1989: state id 999 is not in taxonomy `talk`"
    );
    assert!(matches!(
        t.prompt(&nlsy79_resume_worker(&tax), 5),
        Err(Error::RecordOutOfRange {
            index: 5,
            len: 5,
            ..
        })
    ));
    let no_pool =
        TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Icl { with_titles: false }).build();
    assert!(matches!(
        no_pool,
        Err(Error::InvalidOption { name: "icl", .. })
    ));
    let bad_term = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Prompt)
        .with_terminator(",")
        .build();
    assert!(matches!(
        bad_term,
        Err(Error::InvalidOption {
            name: "terminator",
            ..
        })
    ));
    let other = Arc::new(Panel::new(Arc::new(Taxonomy::occ1990dd()), vec![]).unwrap());
    let mismatch = TemplateBuilder::new(Arc::clone(&tax), TemplateKind::Icl { with_titles: false })
        .with_icl_pool(other)
        .build();
    assert!(matches!(
        mismatch,
        Err(Error::InvalidOption { name: "icl", .. })
    ));
}
