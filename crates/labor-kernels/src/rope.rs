//! Rotary tables on the host and the rotation they apply.

/// Rotary tables on the host: `cos`/`sin` of `rows × seq × head_dim` values, the frequencies
/// repeated for both halves of a head (Hugging Face's rotate-half layout); `rows` is 1 when
/// every batch row has the same positions.
#[derive(Debug, Clone)]
pub(crate) struct RopeTables {
    /// Cosines.
    pub cos: Vec<f32>,
    /// Sines.
    pub sin: Vec<f32>,
    /// Rows of the tables (1, or the batch).
    pub rows: usize,
    /// Width of a head.
    pub head_dim: usize,
}

impl RopeTables {
    /// Whether the tables cover `batch` rows of `seq` positions of `width` (whole heads).
    pub(crate) fn fits(&self, batch: usize, seq: usize, width: usize) -> bool {
        let hd = self.head_dim;
        hd != 0
            && hd.is_multiple_of(2)
            && width.is_multiple_of(hd)
            && self.cos.len() == self.rows * seq * hd
            && self.sin.len() == self.cos.len()
            && (self.rows == 1 || self.rows == batch)
    }

    /// Rotates every head of `x` (rows of `width` values, `seq` positions per batch row) by
    /// its position's angles, or by their opposites with `inverse` (the transpose of the
    /// rotation, for the gradient).
    pub(crate) fn rotate(&self, x: &mut [f32], seq: usize, width: usize, inverse: bool) {
        use rayon::prelude::*;
        let hd = self.head_dim;
        let half = hd / 2;
        let sign = if inverse { -1.0 } else { 1.0 };
        x.par_chunks_mut(width).enumerate().for_each(|(r, row)| {
            let (bi, i) = (r / seq, r % seq);
            let t = (if self.rows == 1 { i } else { bi * seq + i }) * hd;
            let (cos, sin) = (&self.cos[t..t + hd], &self.sin[t..t + hd]);
            for head in row.chunks_mut(hd) {
                let (x1, x2) = head.split_at_mut(half);
                for j in 0..half {
                    let (a, c) = (x1[j], x2[j]);
                    x1[j] = a * cos[j] - sign * c * sin[j];
                    x2[j] = c * cos[half + j] + sign * a * sin[half + j];
                }
            }
        });
    }
}
