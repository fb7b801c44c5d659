use std::sync::Arc;

use labor_data::{
    Education, Gender, Panel, PanelSummary, SpecialState, Taxonomy, Worker, YearRecord,
};

#[test]
fn summary_of_a_hand_made_panel() {
    let tax = Arc::new(Taxonomy::occ1990dd());
    let cook = tax.id_of_code("436").unwrap();
    let waiter = tax.id_of_code("435").unwrap();
    let un = tax.special(SpecialState::Unemployed);
    let mut a = Worker::new("a", "psid");
    a.gender = Gender::Female;
    a.birth_year = Some(1960);
    a.records = vec![
        YearRecord::new(1990, cook, Education::HighSchool),
        YearRecord::new(1991, cook, Education::HighSchool),
        YearRecord::new(1993, waiter, Education::HighSchool),
        YearRecord::new(1994, un, Education::HighSchool),
    ];
    let mut b = Worker::new("b", "nlsy79");
    b.gender = Gender::Male;
    b.birth_year = Some(1970);
    b.records = vec![YearRecord::new(2000, un, Education::College)];
    let s = PanelSummary::of(&Panel::new(tax, vec![a, b]).unwrap());
    assert_eq!(s.workers, 2);
    assert_eq!(s.worker_years, 5);
    assert_eq!(s.mean_years_per_worker, 2.5);
    assert_eq!(s.years, Some((1990, 2000)));
    assert_eq!(s.birth_years, Some((1960, 1970)));
    assert_eq!(s.gap_years, 1);
    assert_eq!(s.distinct_occupations, 2);
    // Pairs: cook-cook, cook-waiter, waiter-unemployed: two changes out of three.
    assert!((s.transition_rate - 2.0 / 3.0).abs() < 1e-12);
    // Occupation pairs: cook-cook (stay), cook-waiter (move).
    assert_eq!(s.occupational_persistence, 0.5);
    assert_eq!(s.state_shares["unemployed"], 0.4);
    assert_eq!(s.state_shares["occupation"], 0.6);
    assert_eq!(s.gender_shares["female"], 0.5);
    assert_eq!(s.education_shares["high_school"], 0.8);
}
