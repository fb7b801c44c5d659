//! PNG figures (feature `plots`, on by default): the reliability diagram, perplexity by
//! subgroup with error bars, training loss curves, and perplexity against training size.
//!
//! Drawn by a small anti-aliased rasteriser into memory and written by a small PNG encoder of
//! this crate; text is rasterised by `ab_glyph` from an embedded subset of DejaVu Sans
//! (Bitstream Vera licence, `assets/LICENSE-DejaVu.txt`), so no system font is needed. None of
//! it shares a dependency with the ML stack, so enabling the feature never changes the features
//! (and builds) of the crates a model depends on. Each function returns the PNG bytes;
//! [`decode_rgb`] reads them back.
//!
//! ```
//! use labor_eval::{Calibration, plots};
//! let cal = Calibration::binary(&[0.1, 0.4, 0.8, 0.9], &[false, true, true, true], 10).unwrap();
//! let png = plots::reliability_png(&[("model", &cal)], "Top-1 calibration").unwrap();
//! let (w, h, rgb) = plots::decode_rgb(&png).unwrap();
//! assert_eq!((w, h, rgb.len()), (plots::WIDTH, plots::HEIGHT, (w * h * 3) as usize));
//! ```

mod canvas;
mod png;

use ab_glyph::FontRef;

use self::canvas::{BLACK, Canvas, HAlign, Rgb, VAlign, WHITE};
pub use self::png::decode_rgb;
use crate::curves::LossCurve;
use crate::error::{Error, Result};
use crate::metrics::Calibration;
use crate::report::GroupEstimate;

/// Width of every figure, in pixels.
pub const WIDTH: u32 = 960;
/// Height of every figure, in pixels.
pub const HEIGHT: u32 = 640;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");

/// Colour-blind-safe colours (Okabe and Ito), one per model.
const COLOURS: [Rgb; 7] = [
    Rgb(0, 114, 178),
    Rgb(213, 94, 0),
    Rgb(0, 158, 115),
    Rgb(204, 121, 167),
    Rgb(230, 159, 0),
    Rgb(86, 180, 233),
    Rgb(0, 0, 0),
];
const GRID: Rgb = Rgb(228, 228, 228);
const GREY: Rgb = Rgb(150, 150, 150);

/// A vertical error bar from `top` to `bot` with caps `cap` pixels wide each side and a disc of
/// `radius` at `mid`.
fn error_bar(
    c: &mut Canvas,
    (top, mid, bot): ((f64, f64), (f64, f64), (f64, f64)),
    width: f64,
    cap: f64,
    radius: f64,
    col: Rgb,
) {
    c.line(top, bot, width, col);
    c.line((top.0 - cap, top.1), (top.0 + cap, top.1), width, col);
    c.line((bot.0 - cap, bot.1), (bot.0 + cap, bot.1), width, col);
    c.disc(mid, radius, col);
}

/// A bootstrap SE to draw: 0 (no bar) when it is not finite.
fn drawn_se(se: f64) -> f64 {
    if se.is_finite() { se } else { 0.0 }
}

fn colour(i: usize) -> Rgb {
    COLOURS[i % COLOURS.len()]
}

fn err(figure: &str, detail: impl Into<String>) -> Error {
    Error::Plot {
        figure: figure.to_string(),
        detail: detail.into(),
    }
}

/// Tick positions at 1, 2 or 5 × 10^k covering `[lo, hi]` (at most about `n`), and the
/// decimals their labels need.
fn ticks(lo: f64, hi: f64, n: usize) -> (Vec<f64>, usize) {
    let range = (hi - lo).max(1e-12);
    let raw = range / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| range / s <= n as f64)
        .unwrap_or(10.0 * mag);
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    (out, decimals)
}

/// How a legend entry is drawn.
enum Mark {
    Line(Rgb, f64),
    Dot(Rgb),
    LineDot(Rgb, Rgb),
}

/// A plot area with axes on a canvas.
struct Chart {
    c: Canvas,
    area: (f64, f64, f64, f64),
    x: (f64, f64),
    y: (f64, f64),
}

struct Axes<'a> {
    title: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    x: (f64, f64),
    y: (f64, f64),
    x_ticks: bool,
}

impl Chart {
    /// A label under the x axis at data position `x` (`y_lo`: the bottom of the y range).
    fn x_label(&mut self, x: f64, y_lo: f64, text: &str) {
        let (px, py) = self.map((x, y_lo));
        self.c.text(
            text,
            (px, py + 8.0),
            16.0,
            BLACK,
            (HAlign::Center, VAlign::Top),
            false,
        );
    }

    fn new(figure: &str, a: &Axes<'_>) -> Result<Self> {
        let font = FontRef::try_from_slice(FONT).map_err(|e| err(figure, e.to_string()))?;
        let (w, h) = (WIDTH as f64, HEIGHT as f64);
        let mut c = Canvas::new(WIDTH as usize, HEIGHT as usize, font);
        let area = (92.0, 56.0, w - 28.0, h - 84.0);
        let mut chart = Chart {
            c: Canvas::new(
                1,
                1,
                FontRef::try_from_slice(FONT).map_err(|e| err(figure, e.to_string()))?,
            ),
            area,
            x: a.x,
            y: a.y,
        };
        c.text(
            a.title,
            (w / 2.0, 14.0),
            26.0,
            BLACK,
            (HAlign::Center, VAlign::Top),
            false,
        );
        let (yt, yd) = ticks(a.y.0, a.y.1, 8);
        for t in yt {
            let (_, py) = chart.map((a.x.0, t));
            c.line((area.0, py), (area.2, py), 1.0, GRID);
            c.line((area.0 - 5.0, py), (area.0, py), 1.0, BLACK);
            c.text(
                &format!("{t:.yd$}"),
                (area.0 - 8.0, py),
                15.0,
                BLACK,
                (HAlign::Right, VAlign::Middle),
                false,
            );
        }
        if a.x_ticks {
            let (xt, xd) = ticks(a.x.0, a.x.1, 10);
            for t in xt {
                let (px, _) = chart.map((t, a.y.0));
                c.line((px, area.1), (px, area.3), 1.0, GRID);
                c.line((px, area.3), (px, area.3 + 5.0), 1.0, BLACK);
                c.text(
                    &format!("{t:.xd$}"),
                    (px, area.3 + 8.0),
                    15.0,
                    BLACK,
                    (HAlign::Center, VAlign::Top),
                    false,
                );
            }
        }
        c.line((area.0, area.1), (area.0, area.3), 1.0, BLACK);
        c.line((area.0, area.3), (area.2, area.3), 1.0, BLACK);
        c.text(
            a.x_desc,
            ((area.0 + area.2) / 2.0, h - 10.0),
            18.0,
            BLACK,
            (HAlign::Center, VAlign::Bottom),
            false,
        );
        c.text(
            a.y_desc,
            (8.0, (area.1 + area.3) / 2.0),
            18.0,
            BLACK,
            (HAlign::Left, VAlign::Middle),
            true,
        );
        chart.c = c;
        Ok(chart)
    }

    fn map(&self, (x, y): (f64, f64)) -> (f64, f64) {
        let (l, t, r, b) = self.area;
        (
            l + (x - self.x.0) / (self.x.1 - self.x.0) * (r - l),
            b - (y - self.y.0) / (self.y.1 - self.y.0) * (b - t),
        )
    }

    /// Draws in data coordinates, clipped to the plot area.
    fn plot(&mut self, f: impl FnOnce(&mut Canvas, &dyn Fn((f64, f64)) -> (f64, f64))) {
        let area = self.area;
        let (x, y) = (self.x, self.y);
        let map = move |(vx, vy): (f64, f64)| {
            (
                area.0 + (vx - x.0) / (x.1 - x.0) * (area.2 - area.0),
                area.3 - (vy - y.0) / (y.1 - y.0) * (area.3 - area.1),
            )
        };
        self.c.set_clip(Some(area));
        f(&mut self.c, &map);
        self.c.set_clip(None);
    }

    fn legend(&mut self, entries: &[(String, Mark)], right: bool) {
        if entries.is_empty() {
            return;
        }
        let size = 16.0;
        let line_h = 24.0;
        let text_w = entries
            .iter()
            .map(|(s, _)| self.c.measure(s, size).0)
            .fold(0.0, f64::max);
        let (bw, bh) = (text_w + 56.0, entries.len() as f64 * line_h + 12.0);
        let x0 = if right {
            self.area.2 - 10.0 - bw
        } else {
            self.area.0 + 10.0
        };
        let y0 = self.area.1 + 10.0;
        self.c.fill_rect(x0, y0, x0 + bw, y0 + bh, WHITE);
        for (a, b) in [
            ((x0, y0), (x0 + bw, y0)),
            ((x0 + bw, y0), (x0 + bw, y0 + bh)),
            ((x0 + bw, y0 + bh), (x0, y0 + bh)),
            ((x0, y0 + bh), (x0, y0)),
        ] {
            self.c.line(a, b, 1.0, Rgb(180, 180, 180));
        }
        for (i, (s, m)) in entries.iter().enumerate() {
            let y = y0 + 6.0 + line_h * (i as f64 + 0.5);
            let (a, b) = ((x0 + 10.0, y), (x0 + 40.0, y));
            match *m {
                Mark::Line(c, w) => self.c.line(a, b, w, c),
                Mark::Dot(c) => self.c.disc((x0 + 25.0, y), 5.0, c),
                Mark::LineDot(l, d) => {
                    self.c.line(a, b, 2.0, l);
                    self.c.disc((x0 + 25.0, y), 4.0, d);
                }
            }
            self.c.text(
                s,
                (x0 + 48.0, y),
                size,
                BLACK,
                (HAlign::Left, VAlign::Middle),
                false,
            );
        }
    }

    fn png(self) -> Vec<u8> {
        png::encode_rgb(WIDTH, HEIGHT, &self.c.px)
    }
}

/// Reliability diagram: observed frequency against mean confidence per bin, one line per
/// model (empty bins skipped), the diagonal of perfect calibration, ECE in the legend.
///
/// # Errors
/// [`Error::Plot`] if the embedded font cannot be read.
pub fn reliability_png(models: &[(&str, &Calibration)], title: &str) -> Result<Vec<u8>> {
    let mut ch = Chart::new(
        "reliability",
        &Axes {
            title,
            x_desc: "predicted probability (mean confidence in bin)",
            y_desc: "observed frequency",
            x: (0.0, 1.0),
            y: (0.0, 1.0),
            x_ticks: true,
        },
    )?;
    let mut legend = vec![("perfect calibration".to_string(), Mark::Line(GREY, 1.0))];
    ch.plot(|c, map| c.line(map((0.0, 0.0)), map((1.0, 1.0)), 1.0, GREY));
    for (i, (name, cal)) in models.iter().enumerate() {
        let col = colour(i);
        let pts: Vec<(f64, f64)> = cal
            .bins
            .iter()
            .filter(|b| b.count > 0)
            .map(|b| (b.confidence, b.frequency))
            .collect();
        ch.plot(|c, map| {
            let px: Vec<(f64, f64)> = pts.iter().map(|&p| map(p)).collect();
            c.path(&px, 2.5, col);
            for p in px {
                c.disc(p, 4.5, col);
            }
        });
        legend.push((
            format!("{name} (ECE {:.3})", cal.ece),
            Mark::LineDot(col, col),
        ));
    }
    ch.legend(&legend, false);
    Ok(ch.png())
}

/// Perplexity by subgroup: one point per (group, model) with error bars of ±`z` bootstrap SEs
/// (`z = 1.96` gives 95% normal intervals), models side by side within a group.
///
/// # Errors
/// [`Error::Plot`] when there is no group.
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
    let se = |g: &GroupEstimate| drawn_se(g.bootstrap_se);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (_, rows) in models {
        for g in rows.iter() {
            lo = lo.min(g.perplexity - z * se(g));
            hi = hi.max(g.perplexity + z * se(g));
        }
    }
    let pad = ((hi - lo) * 0.12).max(hi.abs() * 0.02).max(1e-3);
    // Head room for the legend box (one line per model) above the highest error bar.
    let legend_room = (hi - lo + 2.0 * pad) * (0.06 + 0.06 * models.len() as f64);
    let (lo, hi) = ((lo - pad).max(0.0), hi + pad + legend_room);
    let n = groups.len() as f64;
    let k = models.len().max(1) as f64;
    let mut ch = Chart::new(
        fig,
        &Axes {
            title: &format!("Perplexity by {dimension}"),
            x_desc: &format!("{dimension} (error bars: ±{z} bootstrap SE)"),
            y_desc: "perplexity",
            x: (-0.5, n - 0.5),
            y: (lo, hi),
            x_ticks: false,
        },
    )?;
    for (gi, g) in groups.iter().enumerate() {
        ch.x_label(gi as f64, lo, g);
    }
    let mut legend = Vec::new();
    for (mi, (name, rows)) in models.iter().enumerate() {
        let col = colour(mi);
        let offset = if k > 1.0 {
            (mi as f64 - (k - 1.0) / 2.0) * (0.6 / k)
        } else {
            0.0
        };
        ch.plot(|c, map| {
            for g in rows.iter() {
                let Some(gi) = groups.iter().position(|x| *x == g.group) else {
                    continue;
                };
                let x = gi as f64 + offset;
                let bar = (
                    map((x, g.perplexity + z * se(g))),
                    map((x, g.perplexity)),
                    map((x, g.perplexity - z * se(g))),
                );
                error_bar(c, bar, 2.5, 6.0, 6.0, col);
            }
        });
        legend.push((name.to_string(), Mark::Dot(col)));
    }
    ch.legend(&legend, true);
    Ok(ch.png())
}

/// One model's perplexity at one training size, for [`data_efficiency_png`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizePoint {
    /// Training workers.
    pub workers: usize,
    /// Test perplexity.
    pub perplexity: f64,
    /// Its bootstrap standard error (drawn as ±z·SE; not finite: no bar).
    pub bootstrap_se: f64,
}

/// Data efficiency: test perplexity against the number of training workers (log scale), one
/// line per model, error bars ±`z` bootstrap SE.
///
/// ```
/// use labor_eval::plots::{self, SizePoint};
/// let p = |workers, perplexity| SizePoint { workers, perplexity, bootstrap_se: 0.3 };
/// let career = [p(250, 19.0), p(1000, 16.0), p(2822, 14.2)];
/// let png = plots::data_efficiency_png(&[("career", &career)], 1.96).unwrap();
/// assert_eq!(plots::decode_rgb(&png).unwrap().0, plots::WIDTH);
/// ```
///
/// # Errors
/// [`Error::Plot`] without a point with a finite perplexity and at least one worker.
pub fn data_efficiency_png(models: &[(&str, &[SizePoint])], z: f64) -> Result<Vec<u8>> {
    let fig = "data efficiency";
    let ok = |p: &&SizePoint| p.workers > 0 && p.perplexity.is_finite();
    let se = |p: &SizePoint| drawn_se(p.bootstrap_se);
    let mut sizes: Vec<usize> = Vec::new();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (_, pts) in models {
        for p in pts.iter().filter(ok) {
            if !sizes.contains(&p.workers) {
                sizes.push(p.workers);
            }
            lo = lo.min(p.perplexity - z * se(p));
            hi = hi.max(p.perplexity + z * se(p));
        }
    }
    if sizes.is_empty() {
        return Err(err(fig, "no point with a finite perplexity"));
    }
    sizes.sort_unstable();
    let lx = |w: usize| (w as f64).ln();
    let (x0, x1) = (lx(sizes[0]), lx(sizes[sizes.len() - 1]));
    let xpad = ((x1 - x0) * 0.08).max(0.3);
    let pad = ((hi - lo) * 0.12).max(hi.abs() * 0.02).max(1e-3);
    let legend_room = (hi - lo + 2.0 * pad) * (0.06 + 0.06 * models.len() as f64);
    let (lo, hi) = ((lo - pad).max(0.0), hi + pad + legend_room);
    let mut ch = Chart::new(
        fig,
        &Axes {
            title: "Test perplexity against training workers",
            x_desc: &format!("training workers, log scale (error bars: ±{z} bootstrap SE)"),
            y_desc: "perplexity",
            x: (x0 - xpad, x1 + xpad),
            y: (lo, hi),
            x_ticks: false,
        },
    )?;
    for &w in &sizes {
        ch.x_label(lx(w), lo, &w.to_string());
    }
    let mut legend = Vec::new();
    for (mi, (name, pts)) in models.iter().enumerate() {
        let col = colour(mi);
        let mut pts: Vec<SizePoint> = pts.iter().filter(ok).copied().collect();
        pts.sort_by_key(|p| p.workers);
        ch.plot(|c, map| {
            let line: Vec<(f64, f64)> = pts
                .iter()
                .map(|p| map((lx(p.workers), p.perplexity)))
                .collect();
            c.path(&line, 2.0, col);
            for p in &pts {
                let x = lx(p.workers);
                let bar = (
                    map((x, p.perplexity + z * se(p))),
                    map((x, p.perplexity)),
                    map((x, p.perplexity - z * se(p))),
                );
                error_bar(c, bar, 2.0, 5.0, 5.0, col);
            }
        });
        legend.push((name.to_string(), Mark::LineDot(col, col)));
    }
    ch.legend(&legend, true);
    Ok(ch.png())
}

/// Training loss curves: training loss (line) and validation loss (light line with dots)
/// against the optimiser step, one colour per run.
///
/// # Errors
/// [`Error::Plot`] when no run has a finite loss.
pub fn loss_curves_png(curves: &[LossCurve]) -> Result<Vec<u8>> {
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
        return Err(err("loss curves", "no finite loss in any run"));
    }
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let (lo, hi) = ((lo - pad).max(0.0), hi + pad);
    let mut ch = Chart::new(
        "loss curves",
        &Axes {
            title: "Training loss",
            x_desc: "optimiser step",
            y_desc: "loss (nats per token)",
            x: (0.0, x_max.max(1) as f64 * 1.02),
            y: (lo, hi),
            x_ticks: true,
        },
    )?;
    let mut legend = Vec::new();
    for (i, c) in curves.iter().enumerate() {
        let col = colour(i);
        let series = |f: fn(&crate::curves::LossPoint) -> Option<f64>| -> Vec<(f64, f64)> {
            c.points
                .iter()
                .filter_map(|p| f(p).filter(|v| v.is_finite()).map(|v| (p.step as f64, v)))
                .collect()
        };
        let train = series(|p| p.train_loss);
        let valid = series(|p| p.valid_loss);
        if !train.is_empty() {
            ch.plot(|cv, map| {
                let px: Vec<(f64, f64)> = train.iter().map(|&p| map(p)).collect();
                cv.path(&px, 2.0, col);
            });
            legend.push((format!("{} train", c.name), Mark::Line(col, 2.0)));
        }
        if !valid.is_empty() {
            ch.plot(|cv, map| {
                let px: Vec<(f64, f64)> = valid.iter().map(|&p| map(p)).collect();
                cv.path(&px, 2.0, col.light(0.55));
                for p in px {
                    cv.disc(p, 4.0, col);
                }
            });
            legend.push((
                format!("{} valid", c.name),
                Mark::LineDot(col.light(0.55), col),
            ));
        }
    }
    ch.legend(&legend, true);
    Ok(ch.png())
}
