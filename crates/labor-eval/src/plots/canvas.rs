//! An RGB canvas with anti-aliased lines, discs and text (glyphs rasterised by `ab_glyph` from
//! an embedded subset of DejaVu Sans).

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};

/// An RGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rgb(pub u8, pub u8, pub u8);

pub(crate) const WHITE: Rgb = Rgb(255, 255, 255);
pub(crate) const BLACK: Rgb = Rgb(0, 0, 0);

impl Rgb {
    /// This colour mixed with white (`t` = share of this colour).
    pub(crate) fn light(self, t: f64) -> Rgb {
        let m = |c: u8| (f64::from(c) * t + 255.0 * (1.0 - t)).round() as u8;
        Rgb(m(self.0), m(self.1), m(self.2))
    }
}

/// Horizontal text anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HAlign {
    Left,
    Center,
    Right,
}

/// Vertical text anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VAlign {
    Top,
    Middle,
    Bottom,
}

pub(crate) struct Canvas {
    pub(crate) w: usize,
    pub(crate) h: usize,
    pub(crate) px: Vec<u8>,
    clip: (f64, f64, f64, f64),
    font: FontRef<'static>,
}

impl Canvas {
    pub(crate) fn new(w: usize, h: usize, font: FontRef<'static>) -> Self {
        Self {
            w,
            h,
            px: vec![255; w * h * 3],
            clip: (0.0, 0.0, w as f64, h as f64),
            font,
        }
    }

    /// Restricts drawing to a rectangle (`None`: the whole canvas).
    pub(crate) fn set_clip(&mut self, r: Option<(f64, f64, f64, f64)>) {
        self.clip = r.unwrap_or((0.0, 0.0, self.w as f64, self.h as f64));
    }

    fn blend(&mut self, x: i64, y: i64, c: Rgb, a: f64) {
        if a <= 0.0 || x < 0 || y < 0 || x as usize >= self.w || y as usize >= self.h {
            return;
        }
        let (fx, fy) = (x as f64 + 0.5, y as f64 + 0.5);
        let (x0, y0, x1, y1) = self.clip;
        if fx < x0 || fx > x1 || fy < y0 || fy > y1 {
            return;
        }
        let a = a.min(1.0);
        let i = (y as usize * self.w + x as usize) * 3;
        for (k, v) in [c.0, c.1, c.2].into_iter().enumerate() {
            let old = f64::from(self.px[i + k]);
            self.px[i + k] = (old + (f64::from(v) - old) * a).round() as u8;
        }
    }

    pub(crate) fn fill_rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, c: Rgb) {
        for y in y0.round() as i64..y1.round() as i64 {
            for x in x0.round() as i64..x1.round() as i64 {
                self.blend(x, y, c, 1.0);
            }
        }
    }

    /// An anti-aliased segment of the given width (pixels).
    pub(crate) fn line(&mut self, a: (f64, f64), b: (f64, f64), width: f64, c: Rgb) {
        let r = width / 2.0;
        let (minx, maxx) = (a.0.min(b.0) - r - 1.0, a.0.max(b.0) + r + 1.0);
        let (miny, maxy) = (a.1.min(b.1) - r - 1.0, a.1.max(b.1) + r + 1.0);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = dx * dx + dy * dy;
        for y in miny.floor() as i64..=maxy.ceil() as i64 {
            for x in minx.floor() as i64..=maxx.ceil() as i64 {
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                let t = if len2 > 0.0 {
                    (((px - a.0) * dx + (py - a.1) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (qx, qy) = (a.0 + t * dx - px, a.1 + t * dy - py);
                let d = (qx * qx + qy * qy).sqrt();
                self.blend(x, y, c, (r + 0.5 - d).clamp(0.0, 1.0));
            }
        }
    }

    /// A polyline.
    pub(crate) fn path(&mut self, pts: &[(f64, f64)], width: f64, c: Rgb) {
        for w in pts.windows(2) {
            self.line(w[0], w[1], width, c);
        }
    }

    /// A filled anti-aliased disc.
    pub(crate) fn disc(&mut self, center: (f64, f64), radius: f64, c: Rgb) {
        for y in (center.1 - radius - 1.0).floor() as i64..=(center.1 + radius + 1.0).ceil() as i64
        {
            for x in
                (center.0 - radius - 1.0).floor() as i64..=(center.0 + radius + 1.0).ceil() as i64
            {
                let d = ((x as f64 + 0.5 - center.0).powi(2) + (y as f64 + 0.5 - center.1).powi(2))
                    .sqrt();
                self.blend(x, y, c, (radius + 0.5 - d).clamp(0.0, 1.0));
            }
        }
    }

    /// Width and height (ascent − descent) of `s` at `size` pixels.
    pub(crate) fn measure(&self, s: &str, size: f64) -> (f64, f64) {
        let f = self.font.as_scaled(PxScale::from(size as f32));
        let mut w = 0.0f32;
        let mut prev = None;
        for ch in s.chars() {
            let id = f.glyph_id(ch);
            if let Some(p) = prev {
                w += f.kern(p, id);
            }
            w += f.h_advance(id);
            prev = Some(id);
        }
        (f64::from(w), f64::from(f.ascent() - f.descent()))
    }

    /// Glyph coverage of `s` as a `(width, height, alpha)` bitmap with the baseline at the
    /// font's ascent.
    fn rasterise(&self, s: &str, size: f64) -> (usize, usize, Vec<f32>) {
        let (tw, th) = self.measure(s, size);
        let (bw, bh) = (tw.ceil() as usize + 2, th.ceil() as usize + 2);
        let mut buf = vec![0.0f32; bw * bh];
        let f = self.font.as_scaled(PxScale::from(size as f32));
        let mut caret = 0.0f32;
        let mut prev = None;
        for ch in s.chars() {
            let id = f.glyph_id(ch);
            if let Some(p) = prev {
                caret += f.kern(p, id);
            }
            let glyph =
                id.with_scale_and_position(PxScale::from(size as f32), point(caret, f.ascent()));
            if let Some(o) = self.font.outline_glyph(glyph) {
                let bb = o.px_bounds();
                o.draw(|gx, gy, cov| {
                    let x = bb.min.x as i64 + i64::from(gx);
                    let y = bb.min.y as i64 + i64::from(gy);
                    if x >= 0 && y >= 0 && (x as usize) < bw && (y as usize) < bh {
                        let cell = &mut buf[y as usize * bw + x as usize];
                        *cell = (*cell + cov).min(1.0);
                    }
                });
            }
            caret += f.h_advance(id);
            prev = Some(id);
        }
        (bw, bh, buf)
    }

    /// Draws `s` anchored at `(x, y)`; `vertical` turns it 90° counter-clockwise (for a y-axis
    /// title), the anchor then referring to the turned box.
    pub(crate) fn text(
        &mut self,
        s: &str,
        (x, y): (f64, f64),
        size: f64,
        c: Rgb,
        (ha, va): (HAlign, VAlign),
        vertical: bool,
    ) {
        let (bw, bh, buf) = self.rasterise(s, size);
        let (w, h) = if vertical { (bh, bw) } else { (bw, bh) };
        let x0 = match ha {
            HAlign::Left => x,
            HAlign::Center => x - w as f64 / 2.0,
            HAlign::Right => x - w as f64,
        }
        .round() as i64;
        let y0 = match va {
            VAlign::Top => y,
            VAlign::Middle => y - h as f64 / 2.0,
            VAlign::Bottom => y - h as f64,
        }
        .round() as i64;
        for j in 0..h {
            for i in 0..w {
                // Counter-clockwise: the text's first column ends up at the bottom.
                let a = if vertical {
                    buf[i * bw + (bw - 1 - j)]
                } else {
                    buf[j * bw + i]
                };
                self.blend(x0 + i as i64, y0 + j as i64, c, f64::from(a));
            }
        }
    }
}
