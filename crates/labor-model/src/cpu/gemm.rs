//! Single-precision matrix product for x86-64 CPUs with AVX2 and FMA.
//!
//! The layout follows the usual blocked scheme: the shared dimension is cut into blocks of
//! [`KC`], the right operand is copied ("packed") into panels of [`NR`] columns laid out in the
//! order the micro-kernel reads them, and a 6 × 16 micro-kernel keeps its block of the product
//! in twelve 8-lane registers while it walks the shared dimension. The left operand is read in
//! place where its rows are contiguous (the micro-kernel broadcasts one value of each of its six
//! rows per step), and packed into panels of [`MR`] rows otherwise (a transposed view). Tiles of
//! the product run in parallel on rayon's pool.

use std::cell::RefCell;

use rayon::prelude::*;

/// Rows of the micro-kernel's tile.
const MR: usize = 6;
/// Columns of the micro-kernel's tile (two 8-lane registers).
const NR: usize = 16;
/// Longest block of the shared dimension: a packed `NR`-column panel of it (20 KiB) stays in L1.
const KC: usize = 320;
/// Rows of a parallel task (about): its packed rows (`MC × KC`, 120 KiB) stay in L2.
const MC: usize = 96;
/// Columns of a packed block of the right operand.
const NC: usize = 2048;
/// Columns of a parallel task (about).
const NT: usize = 256;

/// A read-only strided matrix: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View<'a> {
    /// Storage, starting at element `(0, 0)`.
    pub data: &'a [f32],
    /// Row stride, in elements.
    pub rs: usize,
    /// Column stride, in elements.
    pub cs: usize,
}

impl View<'_> {
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// Whether [`sgemm`] can run on this CPU.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `C = A · B` for sizes `[m, n, k]`, with `A` of `m × k`, `B` of `k × n` and `C` row-major
/// with row stride `ldc` (overwritten). With `parallel`, tiles of `C` are spread over rayon's
/// threads.
///
/// Returns `false`, leaving `C` untouched, where [`available`] is false.
///
/// # Panics
/// If a view or `c` is too short for the given sizes.
pub(crate) fn sgemm(
    mnk: [usize; 3],
    a: View<'_>,
    b: View<'_>,
    c: &mut [f32],
    ldc: usize,
    parallel: bool,
) -> bool {
    strided(mnk, a, b, c, ldc, parallel, false)
}

/// `C += A · B`: as [`sgemm`], adding the product to `C` instead of overwriting it.
///
/// # Panics
/// As [`sgemm`].
pub(crate) fn sgemm_add(
    mnk: [usize; 3],
    a: View<'_>,
    b: View<'_>,
    c: &mut [f32],
    ldc: usize,
    parallel: bool,
) -> bool {
    strided(mnk, a, b, c, ldc, parallel, true)
}

/// [`sgemm`] (`add` false) or [`sgemm_add`] (`add` true).
fn strided(
    [m, n, k]: [usize; 3],
    a: View<'_>,
    b: View<'_>,
    c: &mut [f32],
    ldc: usize,
    parallel: bool,
    add: bool,
) -> bool {
    if !available() {
        return false;
    }
    assert!(b.fits(k, n), "gemm operand too short");
    product(m, a, Right::Strided(b, n, k), c, ldc, parallel, add);
    true
}

/// A right operand packed once (a weight used by many products), in the order [`sgemm`] reads
/// it: for each block of the shared dimension, for each block of `NC` columns, its panels.
#[derive(Debug)]
pub(crate) struct Packed {
    k: usize,
    n: usize,
    data: Vec<f32>,
    /// Start of each block in `data`, in product order.
    starts: Vec<usize>,
}

impl Packed {
    /// Packs `b` (`k × n`); `None` where [`available`] is false.
    ///
    /// # Panics
    /// If `b` is too short for the sizes.
    pub(crate) fn new(b: View<'_>, k: usize, n: usize) -> Option<Self> {
        if !available() {
            return None;
        }
        assert!(b.fits(k, n), "gemm operand too short");
        let (mut data, mut starts) = (Vec::new(), Vec::new());
        let kb = k_block(k);
        for pc in (0..k).step_by(kb) {
            for jc in (0..n).step_by(NC) {
                let at = data.len();
                starts.push(at);
                let (kc, nc) = (kb.min(k - pc), NC.min(n - jc));
                data.resize(at + nc.div_ceil(NR) * NR * kc, 0.0);
                pack::<NR>(b, [pc, kc, jc, nc], &mut data[at..], true);
            }
        }
        Some(Self { k, n, data, starts })
    }

    /// Size of the packed values, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }
}

/// `C = A · B` with `B` packed beforehand; `A` is `m × k` for the `k × n` of `b`.
///
/// # Panics
/// As [`sgemm`].
pub(crate) fn sgemm_packed(
    m: usize,
    a: View<'_>,
    b: &Packed,
    c: &mut [f32],
    ldc: usize,
    parallel: bool,
) {
    product(m, a, Right::Packed(b), c, ldc, parallel, false);
}

/// The right operand of a product.
#[derive(Clone, Copy)]
enum Right<'a> {
    /// A strided `k × n` matrix (with `n`, `k`), packed block by block as the product goes.
    Strided(View<'a>, usize, usize),
    /// Packed beforehand.
    Packed(&'a Packed),
}

impl Right<'_> {
    /// `(n, k)`: columns and rows.
    fn dims(&self) -> (usize, usize) {
        match *self {
            Right::Strided(_, n, k) => (n, k),
            Right::Packed(p) => (p.n, p.k),
        }
    }
}

/// Length of the blocks of the shared dimension: equal blocks of at most `KC` (576 = 2 × 288
/// rather than 256 + 256 + 64).
fn k_block(k: usize) -> usize {
    k.div_ceil(k.div_ceil(KC).max(1)).max(1)
}

thread_local! {
    /// Packing buffers, kept between calls (allocating them anew costs page faults each time).
    static BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// The body of [`sgemm`] and [`sgemm_packed`] (the CPU checked): size checks, the empty cases,
/// then the blocked product with this thread's packing buffers (fresh ones if they are in use:
/// rayon may run another product on a thread that waits inside one).
fn product(
    m: usize,
    a: View<'_>,
    b: Right<'_>,
    c: &mut [f32],
    ldc: usize,
    parallel: bool,
    add: bool,
) {
    let (n, k) = b.dims();
    assert!(a.fits(m, k), "gemm operand too short");
    assert!(
        m == 0 || n == 0 || (m - 1) * ldc + n <= c.len(),
        "gemm output too short"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if add {
            return;
        }
        for i in 0..m {
            c[i * ldc..i * ldc + n].fill(0.0);
        }
        return;
    }
    BUFFERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut bufs) => {
            let (ap, bp) = &mut *bufs;
            blocked(m, a, b, c, ldc, parallel, add, ap, bp)
        }
        Err(_) => blocked(
            m,
            a,
            b,
            c,
            ldc,
            parallel,
            add,
            &mut Vec::new(),
            &mut Vec::new(),
        ),
    })
}

/// The blocked product (`m, n, k >= 1`, sizes checked), added to `C` with `add`.
#[allow(clippy::too_many_arguments)]
fn blocked(
    m: usize,
    a: View<'_>,
    b: Right<'_>,
    c: &mut [f32],
    ldc: usize,
    parallel: bool,
    add: bool,
    ap: &mut Vec<f32>,
    bp: &mut Vec<f32>,
) {
    let (n, k) = b.dims();
    let out = OutPtr(c.as_mut_ptr());
    // Rows of `A` stored contiguously are read in place by the micro-kernel; other layouts are
    // packed first. The rows of `A` are the columns of `Aᵀ`, packed like those of `B`.
    let direct = a.cs == 1;
    let at = View {
        data: a.data,
        rs: a.cs,
        cs: a.rs,
    };
    let kb = k_block(k);
    let mut block = 0;
    for pc in (0..k).step_by(kb) {
        let kc = kb.min(k - pc);
        let ap: &[f32] = if direct {
            &[]
        } else {
            let ap = scratch(ap, m.div_ceil(MR) * MR * kc);
            pack::<MR>(at, [pc, kc, 0, m], ap, parallel);
            ap
        };
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            let bp: &[f32] = match b {
                Right::Strided(b, _, _) => {
                    let bp = scratch(bp, nc.div_ceil(NR) * NR * kc);
                    pack::<NR>(b, [pc, kc, jc, nc], bp, parallel);
                    bp
                }
                Right::Packed(p) => &p.data[p.starts[block]..],
            };
            block += 1;
            // Tasks of about `MC` rows and `NT` columns, of near-equal sizes.
            let row_tasks = m.div_ceil(MC);
            let mt = MR * m.div_ceil(MR).div_ceil(row_tasks);
            let row_tasks = m.div_ceil(mt);
            let panels = nc.div_ceil(NR);
            let nt = NR * panels.div_ceil(panels.div_ceil(NT / NR));
            let col_tasks = nc.div_ceil(nt);
            let task = |t: usize| {
                let (ti, tj) = (t / col_tasks, t % col_tasks);
                let (i0, i1) = (ti * mt, (ti * mt + mt).min(m));
                let (j0, j1) = (tj * nt, (tj * nt + nt).min(nc));
                for jr in (j0..j1).step_by(NR) {
                    let nr = NR.min(j1 - jr);
                    let bpanel = &bp[(jr / NR) * NR * kc..][..NR * kc];
                    for ir in (i0..i1).step_by(MR) {
                        let mr = MR.min(i1 - ir);
                        let apanel = if direct {
                            // Rows past the tile repeat its last row: never stored.
                            let rows: [&[f32]; MR] = std::array::from_fn(|r| {
                                let at = (ir + r.min(mr - 1)) * a.rs + pc;
                                &a.data[at..at + kc]
                            });
                            APanel::Rows(rows)
                        } else {
                            APanel::Packed(&ap[(ir / MR) * MR * kc..][..MR * kc])
                        };
                        // SAFETY: `available()` checked AVX2 and FMA; the panels hold `kc`
                        // steps; the tile (ir.., jc + jr..) of `mr × nr` lies inside `c` (checked
                        // above) and no other task writes it.
                        unsafe {
                            out.tile(
                                kc,
                                apanel,
                                bpanel,
                                ir * ldc + jc + jr,
                                ldc,
                                mr,
                                nr,
                                add || pc > 0,
                            )
                        };
                    }
                }
            };
            let tasks = row_tasks * col_tasks;
            if parallel && tasks > 1 {
                (0..tasks).into_par_iter().for_each(task);
            } else {
                (0..tasks).for_each(task);
            }
        }
    }
}

/// The left operand of one micro-kernel call: `MR` rows over `kc` steps.
#[derive(Clone, Copy)]
enum APanel<'a> {
    /// Packed: step `s`, row `r` at `s * MR + r`.
    Packed(&'a [f32]),
    /// In place: each row's `kc` values, contiguous.
    Rows([&'a [f32]; MR]),
}

/// Grows `buf` to `len` values and returns them. Values left from an earlier product stay in
/// the padding of the last panel: they only reach rows or columns of the micro-kernel's tile
/// that are never stored.
fn scratch(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// Packs rows `pc..pc + kc`, columns `jc..jc + nc` of `x` into panels of `W` columns: panel
/// `p`, step `s`, column `c` at `(p * kc + s) * W + c`. `dst` starts with those panels; the
/// padding columns of the last one are left as they are.
fn pack<const W: usize>(
    x: View<'_>,
    [pc, kc, jc, nc]: [usize; 4],
    dst: &mut [f32],
    parallel: bool,
) {
    let panels = nc.div_ceil(W);
    let fill = |(p, dst): (usize, &mut [f32])| {
        let cols = W.min(nc - p * W);
        let col0 = jc + p * W;
        if x.cs == 1 && cols == W {
            // Whole panels: copies of a size known here, which compile to vector moves.
            for (s, d) in dst.chunks_exact_mut(W).take(kc).enumerate() {
                let src = (pc + s) * x.rs + col0;
                let row: &[f32; W] = x.data[src..src + W].try_into().expect("W values");
                d.copy_from_slice(row);
            }
        } else if x.cs == 1 {
            for s in 0..kc {
                let src = (pc + s) * x.rs + col0;
                dst[s * W..s * W + cols].copy_from_slice(&x.data[src..src + cols]);
            }
        } else {
            for c in 0..cols {
                let col = (col0 + c) * x.cs + pc * x.rs;
                for s in 0..kc {
                    dst[s * W + c] = x.data[col + s * x.rs];
                }
            }
        }
    };
    let dst = &mut dst[..panels * W * kc];
    if parallel && panels > 8 {
        dst.par_chunks_mut(W * kc).enumerate().for_each(fill);
    } else {
        dst.chunks_mut(W * kc).enumerate().for_each(fill);
    }
}

/// The output matrix, shared by the parallel tasks, each writing its own tiles.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);

// SAFETY: tasks write disjoint tiles of the output (see `sgemm`).
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// # Safety
    /// As [`kernel`], for the tile starting at element `offset`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile(
        self,
        kc: usize,
        a: APanel<'_>,
        b: &[f32],
        offset: usize,
        ldc: usize,
        mr: usize,
        nr: usize,
        accumulate: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forwarded to the caller.
        unsafe {
            let c = self.0.add(offset);
            match a {
                APanel::Packed(a) => {
                    assert!(a.len() >= kc * MR);
                    let a = a.as_ptr();
                    kernel(kc, |s, r| a.add(s * MR + r), b, c, ldc, mr, nr, accumulate)
                }
                APanel::Rows(rows) => {
                    assert!(rows.iter().all(|r| r.len() >= kc));
                    let rows = rows.map(<[f32]>::as_ptr);
                    kernel(kc, |s, r| rows[r].add(s), b, c, ldc, mr, nr, accumulate)
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (kc, a, b, offset, ldc, mr, nr, accumulate);
            unreachable!("sgemm runs only where `available()` is true")
        }
    }
}

/// The 6 × 16 micro-kernel: `C[..mr, ..nr] (+)= Apanel · Bpanel` over `kc` steps, with
/// `a(s, r)` the address of row `r`'s value at step `s`.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `a(s, r)` must be readable for every `s < kc`, `r < MR`,
/// and `b` must hold `kc * NR` values; `c` must point to an `mr × nr` tile (row stride `ldc`)
/// that nobody else accesses meanwhile.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn kernel(
    kc: usize,
    a: impl Fn(usize, usize) -> *const f32,
    b: &[f32],
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    assert!(b.len() >= kc * NR);
    let b = b.as_ptr();
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    // SAFETY (whole block): the reads stay within the `kc` steps checked above; the writes
    // within the caller's tile.
    unsafe {
        // The tile of C is read (or written) at the end: start fetching it now.
        for r in 0..mr {
            _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc + nr - 1) as *const i8);
        }
        for s in 0..kc {
            let b0 = _mm256_loadu_ps(b.add(s * NR));
            let b1 = _mm256_loadu_ps(b.add(s * NR + 8));
            for (r, row) in acc.iter_mut().enumerate() {
                let x = _mm256_broadcast_ss(&*a(s, r));
                row[0] = _mm256_fmadd_ps(x, b0, row[0]);
                row[1] = _mm256_fmadd_ps(x, b1, row[1]);
            }
        }
        if mr == MR && nr == NR {
            for (r, row) in acc.iter().enumerate() {
                let p = c.add(r * ldc);
                let (mut v0, mut v1) = (row[0], row[1]);
                if accumulate {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(p));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(p.add(8)));
                }
                _mm256_storeu_ps(p, v0);
                _mm256_storeu_ps(p.add(8), v1);
            }
        } else {
            let mut tmp = [0.0f32; MR * NR];
            for (r, row) in acc.iter().enumerate() {
                _mm256_storeu_ps(tmp.as_mut_ptr().add(r * NR), row[0]);
                _mm256_storeu_ps(tmp.as_mut_ptr().add(r * NR + 8), row[1]);
            }
            for r in 0..mr {
                let p = c.add(r * ldc);
                for j in 0..nr {
                    let v = tmp[r * NR + j];
                    *p.add(j) = if accumulate { *p.add(j) + v } else { v };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: View<'_>, b: View<'_>) -> Vec<f64> {
        let mut c = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| {
                        a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64
                    })
                    .sum();
            }
        }
        c
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn matches_a_naive_product_on_every_edge_and_layout() {
        if !available() {
            eprintln!("SKIPPED: this CPU has no AVX2/FMA; the gemm is not used here");
            return;
        }
        // Sizes straddle every block edge: MR, NR, KC, MC, NT and NC.
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 17, 3),
            (6, 16, 256),
            (97, 260, 257),
            (13, 2050, 40),
            (200, 33, 600),
        ] {
            for (transpose_a, transpose_b) in [(false, false), (true, true), (false, true)] {
                // Row-major A with gaps between its rows (a view into a wider matrix).
                let lda = if transpose_b { k + 3 } else { k };
                let ad = values(m * lda.max(m), 1);
                let bd = values(k * n, 2);
                let a = if transpose_a {
                    View {
                        data: &ad,
                        rs: 1,
                        cs: m,
                    }
                } else {
                    View {
                        data: &ad,
                        rs: lda,
                        cs: 1,
                    }
                };
                let b = if transpose_b {
                    View {
                        data: &bd,
                        rs: 1,
                        cs: k,
                    }
                } else {
                    View {
                        data: &bd,
                        rs: n,
                        cs: 1,
                    }
                };
                let ldc = n + 3;
                let mut c = vec![f32::NAN; m * ldc];
                assert!(sgemm([m, n, k], a, b, &mut c, ldc, m % 2 == 1));
                // The same product with `b` packed beforehand gives the same bits.
                let packed = Packed::new(b, k, n).expect("AVX2");
                let mut again = vec![f32::NAN; m * ldc];
                sgemm_packed(m, a, &packed, &mut again, ldc, m % 2 == 0);
                assert!(
                    c.iter()
                        .zip(&again)
                        .all(|(x, y)| x.to_bits() == y.to_bits())
                );
                // Added to what `C` holds: twice the product.
                let mut twice = c.clone();
                assert!(sgemm_add([m, n, k], a, b, &mut twice, ldc, m % 3 == 0));
                for i in 0..m {
                    for j in 0..n {
                        let (x, y) = (c[i * ldc + j], twice[i * ldc + j]);
                        assert!(
                            (y - 2.0 * x).abs() <= 1e-6 * x.abs().max(1.0),
                            "{y} vs 2 × {x}"
                        );
                    }
                }
                let want = naive(m, n, k, a, b);
                for i in 0..m {
                    for j in 0..n {
                        let (got, want) = (c[i * ldc + j] as f64, want[i * n + j]);
                        assert!(
                            (got - want).abs() <= 1e-5 * (k as f64).sqrt() * 4.0,
                            "{m}x{n}x{k} ({transpose_a}, {transpose_b}) at ({i}, {j}): {got} vs {want}"
                        );
                    }
                    // The padding between rows is never written.
                    assert!(c[i * ldc + n..i * ldc + ldc].iter().all(|v| v.is_nan()));
                }
            }
        }
    }
}
