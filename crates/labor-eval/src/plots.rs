//! PNG figures (feature `plots`, on by default): the reliability diagram, perplexity by
//! subgroup with error bars, and training loss curves.
//!
//! Drawn with `plotters`' bitmap backend into memory and encoded with `png`; text uses an
//! embedded subset of DejaVu Sans (Bitstream Vera licence, `assets/LICENSE-DejaVu.txt`), so no
//! system font is needed. Each function returns the PNG bytes.
//!
//! ```
//! use labor_eval::{Calibration, plots};
//! let cal = Calibration::binary(&[0.1, 0.4, 0.8, 0.9], &[false, true, true, true], 10).unwrap();
//! let png = plots::reliability_png(&[("model", &cal)], "Top-1 calibration").unwrap();
//! assert_eq!(&png[1..4], b"PNG");
//! ```

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::curves::LossCurve;
use crate::error::{Error, Result};
use crate::evaluate::GroupEstimate;
use crate::metrics::Calibration;

/// Width of every figure, in pixels.
pub const WIDTH: u32 = 960;
/// Height of every figure, in pixels.
pub const HEIGHT: u32 = 640;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

/// Colour-blind-safe colours (Okabe and Ito), one per model.
const COLOURS: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

fn err(figure: &str, e: impl std::fmt::Display) -> Error {
    Error::Plot {
        figure: figure.to_string(),
        detail: e.to_string(),
    }
}

fn ensure_font() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(err("font", "the embedded font does not parse"))
    }
}

/// Draws with `draw` on a white RGB canvas and encodes it as PNG.
fn render(
    figure: &str,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
) -> Result<Vec<u8>> {
    ensure_font()?;
    let mut buf = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(figure, e))?;
        draw(&root)?;
        root.present().map_err(|e| err(figure, e))?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| err(figure, e))?;
        w.write_image_data(&buf).map_err(|e| err(figure, e))?;
        w.finish().map_err(|e| err(figure, e))?;
    }
    Ok(png_bytes)
}

fn text(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// Reliability diagram: observed frequency against mean confidence per bin, one line per
/// model (empty bins skipped), the diagonal of perfect calibration, ECE in the legend.
///
/// # Errors
/// [`Error::Plot`] if drawing or encoding fails.
pub fn reliability_png(models: &[(&str, &Calibration)], title: &str) -> Result<Vec<u8>> {
    let fig = "reliability";
    render(fig, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, text(26.0))
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0f64..1.0, 0.0f64..1.0)
            .map_err(|e| err(fig, e))?;
        chart
            .configure_mesh()
            .x_desc("predicted probability (mean confidence in bin)")
            .y_desc("observed frequency")
            .axis_desc_style(text(18.0))
            .label_style(text(15.0))
            .light_line_style(RGBColor(244, 244, 244))
            .draw()
            .map_err(|e| err(fig, e))?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                RGBColor(150, 150, 150).stroke_width(1),
            ))
            .map_err(|e| err(fig, e))?
            .label("perfect calibration")
            .legend(|(x, y)| {
                PathElement::new(
                    [(x, y), (x + 24, y)],
                    RGBColor(150, 150, 150).stroke_width(1),
                )
            });
        for (i, (name, cal)) in models.iter().enumerate() {
            let c = colour(i);
            let pts: Vec<(f64, f64)> = cal
                .bins
                .iter()
                .filter(|b| b.count > 0)
                .map(|b| (b.confidence, b.frequency))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
                .map_err(|e| err(fig, e))?
                .label(format!("{name} (ECE {:.3})", cal.ece))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], c.stroke_width(2)));
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
                .map_err(|e| err(fig, e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(text(16.0))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(|e| err(fig, e))?;
        Ok(())
    })
}

/// Perplexity by subgroup: one point per (group, model) with error bars of ±`z` bootstrap SEs
/// (`z = 1.96` gives 95% normal intervals), models side by side within a group.
///
/// # Errors
/// [`Error::Plot`] if drawing or encoding fails, or when there is no group.
pub fn subgroup_png(
    dimension: &str,
    models: &[(&str, &[GroupEstimate])],
    z: f64,
) -> Result<Vec<u8>> {
    let fig = "subgroups";
    let mut groups: Vec<&str> = Vec::new();
    for (_, rows) in models {
        for g in rows.iter() {
            if !groups.contains(&g.group.as_str()) {
                groups.push(&g.group);
            }
        }
    }
    if groups.is_empty() {
        return Err(err(fig, format!("no group for `{dimension}`")));
    }
    let finite = |x: f64| x.is_finite().then_some(x);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (_, rows) in models {
        for g in rows.iter() {
            let se = finite(g.bootstrap_se).unwrap_or(0.0);
            lo = lo.min(g.perplexity - z * se);
            hi = hi.max(g.perplexity + z * se);
        }
    }
    let pad = ((hi - lo) * 0.12).max(hi.abs() * 0.02).max(1e-3);
    // Head room for the legend box (one line per model) above the highest error bar.
    let legend = (hi - lo + 2.0 * pad) * (0.06 + 0.05 * models.len() as f64);
    let (lo, hi) = ((lo - pad).max(0.0), hi + pad + legend);
    let n = groups.len() as f64;
    let k = models.len().max(1) as f64;
    let digits = if hi - lo > 20.0 {
        0
    } else if hi - lo > 2.0 {
        1
    } else {
        2
    };
    render(fig, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("Perplexity by {dimension}"), text(26.0))
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5f64..n - 0.5, lo..hi)
            .map_err(|e| err(fig, e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_desc(format!("{dimension} (error bars: ±{z} bootstrap SE)"))
            .y_desc("perplexity")
            .y_label_formatter(&|y| format!("{y:.digits$}"))
            .axis_desc_style(text(18.0))
            .label_style(text(15.0))
            .light_line_style(RGBColor(244, 244, 244))
            .draw()
            .map_err(|e| err(fig, e))?;
        // Group names under the axis, at the group centres.
        for (gi, g) in groups.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(gi as f64, lo));
            root.draw(&Text::new(
                g.to_string(),
                (px, py + 8),
                text(16.0).pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(|e| err(fig, e))?;
        }
        for (mi, (name, rows)) in models.iter().enumerate() {
            let c = colour(mi);
            let offset = if k > 1.0 {
                (mi as f64 - (k - 1.0) / 2.0) * (0.6 / k)
            } else {
                0.0
            };
            let pts: Vec<(f64, f64, f64)> = rows
                .iter()
                .filter_map(|g| {
                    let gi = groups.iter().position(|x| *x == g.group)?;
                    Some((
                        gi as f64 + offset,
                        g.perplexity,
                        finite(g.bootstrap_se).unwrap_or(0.0),
                    ))
                })
                .collect();
            chart
                .draw_series(pts.iter().map(|&(x, y, se)| {
                    ErrorBar::new_vertical(x, y - z * se, y, y + z * se, c.stroke_width(2), 10)
                }))
                .map_err(|e| err(fig, e))?
                .label(name.to_string())
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, c.filled()));
            chart
                .draw_series(
                    pts.iter()
                        .map(|&(x, y, _)| Circle::new((x, y), 5, c.filled())),
                )
                .map_err(|e| err(fig, e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(text(16.0))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(|e| err(fig, e))?;
        Ok(())
    })
}

/// Training loss curves: training loss (line) and validation loss (line with dots) against the
/// optimiser step, one colour per run.
///
/// # Errors
/// [`Error::Plot`] if drawing or encoding fails, or when no run has a loss.
pub fn loss_curves_png(curves: &[LossCurve]) -> Result<Vec<u8>> {
    let fig = "loss curves";
    let (mut x_max, mut lo, mut hi) = (0u64, f64::INFINITY, f64::NEG_INFINITY);
    for c in curves {
        for p in &c.points {
            for v in [p.train_loss, p.valid_loss].into_iter().flatten() {
                if v.is_finite() {
                    x_max = x_max.max(p.step);
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
        }
    }
    if !lo.is_finite() {
        return Err(err(fig, "no finite loss in any run"));
    }
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let (lo, hi) = ((lo - pad).max(0.0), hi + pad);
    let x_max = (x_max.max(1)) as f64;
    render(fig, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Training loss", text(26.0))
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0..x_max * 1.02, lo..hi)
            .map_err(|e| err(fig, e))?;
        chart
            .configure_mesh()
            .x_desc("optimiser step")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc("loss (nats per token)")
            .axis_desc_style(text(18.0))
            .label_style(text(15.0))
            .light_line_style(RGBColor(244, 244, 244))
            .draw()
            .map_err(|e| err(fig, e))?;
        for (i, c) in curves.iter().enumerate() {
            let col = colour(i);
            let train: Vec<(f64, f64)> = c
                .points
                .iter()
                .filter_map(|p| {
                    p.train_loss
                        .filter(|v| v.is_finite())
                        .map(|v| (p.step as f64, v))
                })
                .collect();
            let valid: Vec<(f64, f64)> = c
                .points
                .iter()
                .filter_map(|p| {
                    p.valid_loss
                        .filter(|v| v.is_finite())
                        .map(|v| (p.step as f64, v))
                })
                .collect();
            if !train.is_empty() {
                chart
                    .draw_series(LineSeries::new(train, col.stroke_width(2)))
                    .map_err(|e| err(fig, e))?
                    .label(format!("{} train", c.name))
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 24, y)], col.stroke_width(2))
                    });
            }
            if !valid.is_empty() {
                let light = col.mix(0.55);
                chart
                    .draw_series(LineSeries::new(
                        valid.iter().copied(),
                        light.stroke_width(2),
                    ))
                    .map_err(|e| err(fig, e))?
                    .label(format!("{} valid", c.name))
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new([(0, 0), (24, 0)], col.mix(0.55).stroke_width(2))
                            + Circle::new((12, 0), 4, col.filled())
                    });
                chart
                    .draw_series(valid.iter().map(|&p| Circle::new(p, 4, col.filled())))
                    .map_err(|e| err(fig, e))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(text(16.0))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(|e| err(fig, e))?;
        Ok(())
    })
}
