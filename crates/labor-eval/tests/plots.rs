//! The figures decode as PNG of the documented size and show their data.

use labor_eval::{
    Bootstrap, Calibration, Evaluator, LossCurve, ModelPredictions, Subgroups, TargetRow, plots,
};

fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    plots::decode_rgb(bytes).unwrap()
}

/// Pixels of roughly colour `c` (RGB).
fn count_colour(buf: &[u8], c: [u8; 3]) -> usize {
    buf.chunks(3)
        .filter(|p| p.iter().zip(c).all(|(a, b)| a.abs_diff(b) < 8))
        .count()
}

fn save(name: &str, bytes: &[u8]) {
    // Kept for a look: target/tmp/labor-eval-plots/<name>.png
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("labor-eval-plots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
}

#[test]
fn reliability_diagram() {
    let p: Vec<f64> = (0..200).map(|i| (i as f64 + 0.5) / 200.0).collect();
    let calibrated: Vec<bool> = (0..200).map(|i| (i * 37 % 200) < i).collect();
    let over: Vec<bool> = (0..200).map(|i| (i * 37 % 200) < i / 2).collect();
    let a = Calibration::binary(&p, &calibrated, 10).unwrap();
    let b = Calibration::binary(&p, &over, 10).unwrap();
    let png = plots::reliability_png(&[("career", &a), ("llm", &b)], "Top-1 calibration").unwrap();
    save("reliability", &png);
    let (w, h, buf) = decode(&png);
    assert_eq!((w, h), (plots::WIDTH, plots::HEIGHT));
    // Both models' colours are drawn (Okabe-Ito blue and vermillion).
    assert!(count_colour(&buf, [0, 114, 178]) > 200);
    assert!(count_colour(&buf, [213, 94, 0]) > 200);
}

#[test]
fn subgroup_error_bars_from_an_evaluation() {
    let mut m = ModelPredictions::new("truth", 4);
    let mut e = ModelPredictions::new("empirical", 4);
    let mut sg = Subgroups::new(&["gender"]);
    for w in 0..60 {
        let id = format!("w{w}");
        sg.insert(&id, vec![if w % 3 == 0 { "female" } else { "male" }])
            .unwrap();
        for k in 0..5u32 {
            let lp = -0.5 - 0.2 * ((w * 7 + k as usize * 3) % 5) as f64;
            m.push(
                TargetRow::new(&id, 1985 + 4 * k as i32, k, 0, None, lp),
                None,
            )
            .unwrap();
            e.push(
                TargetRow::new(&id, 1985 + 4 * k as i32, k, 0, None, lp - 0.3),
                None,
            )
            .unwrap();
        }
    }
    let out = Evaluator::builder()
        .with_bootstrap(Bootstrap::new().with_resamples(100))
        .build()
        .unwrap()
        .run(&[e, m], Some(&sg))
        .unwrap();
    for dim in ["gender", "decade"] {
        let rows: Vec<(&str, &[labor_eval::GroupEstimate])> = out
            .models
            .iter()
            .map(|m| (m.name.as_str(), m.subgroups[dim].as_slice()))
            .collect();
        let png = plots::subgroup_png(dim, &rows, 1.96).unwrap();
        save(&format!("subgroups_{dim}"), &png);
        let (w, h, buf) = decode(&png);
        assert_eq!((w, h), (plots::WIDTH, plots::HEIGHT));
        assert!(count_colour(&buf, [0, 114, 178]) > 50);
        assert!(count_colour(&buf, [213, 94, 0]) > 50);
    }
    assert!(plots::subgroup_png("gender", &[], 1.96).is_err());
}

#[test]
fn loss_curves() {
    let mut a = String::from("step,epoch,tokens,train_loss,valid_loss,learning_rate\n");
    let mut b = a.clone();
    for s in 1..=100 {
        let t = s as f64;
        let valid = if s % 20 == 0 {
            format!("{:.4}", 2.2 + 3.0 / t.sqrt())
        } else {
            String::new()
        };
        a.push_str(&format!(
            "{s},{:.2},{},{:.4},{valid},0.001\n",
            t / 50.0,
            s * 4096,
            2.0 + 3.0 / t.sqrt()
        ));
        b.push_str(&format!(
            "{s},{:.2},{},{:.4},,0.0005\n",
            t / 50.0,
            s * 4096,
            2.5 + 2.0 / t.sqrt()
        ));
    }
    let curves = [
        LossCurve::from_csv_str("career", &a).unwrap(),
        LossCurve::from_csv_str("llm", &b).unwrap(),
    ];
    assert_eq!(
        curves[0]
            .points
            .iter()
            .filter(|p| p.valid_loss.is_some())
            .count(),
        5
    );
    let png = plots::loss_curves_png(&curves).unwrap();
    save("loss", &png);
    let (_, _, buf) = decode(&png);
    assert!(count_colour(&buf, [0, 114, 178]) > 200);
    assert!(count_colour(&buf, [213, 94, 0]) > 200);
    let empty = LossCurve::from_csv_str("x", "step,train_loss\n1,\n").unwrap();
    assert!(plots::loss_curves_png(&[empty]).is_err());
}
