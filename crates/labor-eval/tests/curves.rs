use labor_eval::{Error, LossCurve};

#[test]
fn columns_in_any_order_and_empty_values() {
    let c = LossCurve::from_csv_str(
        "run",
        "valid_loss,step,train_loss,extra\n,1,3.5,x\n2.75,2,3.25,y\n\n",
    )
    .unwrap();
    assert_eq!(c.points.len(), 2);
    assert_eq!(c.points[0].step, 1);
    assert_eq!(c.points[0].train_loss, Some(3.5));
    assert_eq!(c.points[0].valid_loss, None);
    assert_eq!(c.points[1].valid_loss, Some(2.75));
    assert_eq!(c.points[1].epoch, None);
}

#[test]
fn malformed_files_name_the_line() {
    let e = LossCurve::from_csv_str("run", "step,train_loss\n1,2.0\n2,abc\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "loss curve `run`, line 3: `train_loss` = `abc` is not a number"
    );
    assert!(matches!(
        LossCurve::from_csv_str("run", "epoch,train_loss\n1,2\n"),
        Err(Error::Malformed { line: 1, .. })
    ));
    assert!(LossCurve::from_csv_str("run", "").is_err());
    assert!(LossCurve::from_csv_str("run", "step\n1.5\n").is_err());
}

#[test]
fn a_file_is_read_or_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.csv");
    std::fs::write(&path, "step,train_loss\n1,2.0\n").unwrap();
    let c = LossCurve::from_csv_path("run", &path).unwrap();
    assert_eq!(
        c,
        LossCurve::from_csv_str("run", "step,train_loss\n1,2.0\n").unwrap()
    );
    let missing = dir.path().join("missing.csv");
    let e = LossCurve::from_csv_path("run", &missing).unwrap_err();
    assert!(matches!(e, Error::Read { .. }));
    assert_eq!(e.to_string(), format!("cannot read {}", missing.display()));
}
