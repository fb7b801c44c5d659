//! Single-precision matrix product for x86-64 CPUs with AVX2 and FMA, and AVX-512 where the CPU
//! has it.
//!
//! The layout follows the usual blocked scheme: the shared dimension is cut into blocks of at
//! most `kc` steps, the right operand is copied ("packed") into panels of `nr` columns laid out
//! in the order the micro-kernel reads them, and the micro-kernel keeps an `mr × nr` block of
//! the product in registers while it walks the shared dimension. Two micro-kernels exist (see
//! [`Kernel`]): 6 × 16 in twelve 8-lane registers (AVX2), and 8 × 32 in sixteen 16-lane
//! registers (AVX-512, twice the work per instruction). The left operand is read in place where
//! its rows are contiguous (the micro-kernel broadcasts one value of each of its rows per step),
//! and packed into panels of `mr` rows otherwise (a transposed view). Tiles of the product run
//! in parallel on rayon's pool.

use std::cell::RefCell;
use std::sync::OnceLock;

use rayon::prelude::*;

mod micro;
#[cfg(target_arch = "x86_64")]
use micro::{kernel_avx2, kernel_avx512};

/// Most rows of a micro-kernel's tile (over both kernels).
const MAX_MR: usize = 8;
/// Rows of a parallel task (about): its rows of the left operand (`MC × kc`, at most 120 KiB)
/// stay in L2.
const MC: usize = 96;
/// Columns of a packed block of the right operand.
const NC: usize = 2048;
/// Columns of a parallel task (about).
const NT: usize = 256;

/// A micro-kernel, with the sizes of its tile and of its blocks of the shared dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// 6 × 16 with AVX2 and FMA; blocks of at most 320 steps (a packed panel of the right
    /// operand, 20 KiB, stays in L1).
    Avx2,
    /// 8 × 32 with AVX-512F; blocks of at most 256 steps (a packed panel, 32 KiB).
    Avx512,
}

impl Kernel {
    /// Rows of the tile.
    fn mr(self) -> usize {
        match self {
            Kernel::Avx2 => 6,
            Kernel::Avx512 => 8,
        }
    }

    /// Columns of the tile.
    fn nr(self) -> usize {
        match self {
            Kernel::Avx2 => 16,
            Kernel::Avx512 => 32,
        }
    }

    /// Longest block of the shared dimension.
    fn kc(self) -> usize {
        match self {
            Kernel::Avx2 => 320,
            Kernel::Avx512 => 256,
        }
    }

    /// Whether this CPU can run the kernel.
    fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 =
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
            match self {
                Kernel::Avx2 => avx2,
                Kernel::Avx512 => avx2 && std::is_x86_feature_detected!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// The kernel products use on this CPU: AVX-512 where the CPU has it (unless the
    /// environment sets `LABOR_GEMM_AVX512=0`), else AVX2; `None` without AVX2 and FMA.
    pub(crate) fn detected() -> Option<Kernel> {
        static DETECTED: OnceLock<Option<Kernel>> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            let wide = std::env::var("LABOR_GEMM_AVX512").map_or(true, |v| v != "0");
            if wide && Kernel::Avx512.supported() {
                Some(Kernel::Avx512)
            } else {
                Kernel::Avx2.supported().then_some(Kernel::Avx2)
            }
        })
    }

    /// Length of the blocks of the shared dimension: equal blocks of at most [`Kernel::kc`]
    /// (576 = 2 × 288 rather than 320 + 256).
    fn k_block(self, k: usize) -> usize {
        k.div_ceil(k.div_ceil(self.kc()).max(1)).max(1)
    }
}

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
    Kernel::detected().is_some()
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
    strided(Kernel::detected(), mnk, a, b, c, ldc, parallel, false)
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
    strided(Kernel::detected(), mnk, a, b, c, ldc, parallel, true)
}

/// [`sgemm`] (`add` false) or [`sgemm_add`] (`add` true) with the given kernel (none: `false`).
#[allow(clippy::too_many_arguments)]
fn strided(
    kernel: Option<Kernel>,
    [m, n, k]: [usize; 3],
    a: View<'_>,
    b: View<'_>,
    c: &mut [f32],
    ldc: usize,
    parallel: bool,
    add: bool,
) -> bool {
    let Some(kernel) = kernel else {
        return false;
    };
    assert!(b.fits(k, n), "gemm operand too short");
    product(kernel, m, a, Right::Strided(b, n, k), c, ldc, parallel, add);
    true
}

/// A right operand packed once (a weight used by many products), in the order [`sgemm`] reads
/// it: for each block of the shared dimension, for each block of `NC` columns, its panels.
#[derive(Debug)]
pub(crate) struct Packed {
    kernel: Kernel,
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
        Self::with_kernel(Kernel::detected()?, b, k, n)
    }

    /// Packs `b` for `kernel`; `None` where this CPU cannot run it.
    fn with_kernel(kernel: Kernel, b: View<'_>, k: usize, n: usize) -> Option<Self> {
        if !kernel.supported() {
            return None;
        }
        assert!(b.fits(k, n), "gemm operand too short");
        let (mut data, mut starts) = (Vec::new(), Vec::new());
        let (kb, nr) = (kernel.k_block(k), kernel.nr());
        for pc in (0..k).step_by(kb) {
            for jc in (0..n).step_by(NC) {
                let at = data.len();
                starts.push(at);
                let (kc, nc) = (kb.min(k - pc), NC.min(n - jc));
                data.resize(at + nc.div_ceil(nr) * nr * kc, 0.0);
                pack(nr, b, [pc, kc, jc, nc], &mut data[at..], true);
            }
        }
        Some(Self {
            kernel,
            k,
            n,
            data,
            starts,
        })
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
    product(b.kernel, m, a, Right::Packed(b), c, ldc, parallel, false);
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

thread_local! {
    /// Packing buffers, kept between calls (allocating them anew costs page faults each time).
    static BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// The body of [`sgemm`] and [`sgemm_packed`] (the CPU checked): size checks, the empty cases,
/// then the blocked product with this thread's packing buffers (fresh ones if they are in use:
/// rayon may run another product on a thread that waits inside one).
#[allow(clippy::too_many_arguments)]
fn product(
    kernel: Kernel,
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
    let job = Job {
        kernel,
        m,
        a,
        b,
        ldc,
        parallel,
        add,
    };
    BUFFERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut bufs) => {
            let (ap, bp) = &mut *bufs;
            job.run(c, ap, bp)
        }
        Err(_) => job.run(c, &mut Vec::new(), &mut Vec::new()),
    })
}

/// A product whose sizes were checked (`m, n, k >= 1`).
struct Job<'a> {
    kernel: Kernel,
    m: usize,
    a: View<'a>,
    b: Right<'a>,
    ldc: usize,
    parallel: bool,
    /// Whether the product is added to `C`.
    add: bool,
}

impl Job<'_> {
    /// The blocked product, with `ap` and `bp` as packing buffers.
    fn run(&self, c: &mut [f32], ap: &mut Vec<f32>, bp: &mut Vec<f32>) {
        let Job {
            kernel,
            m,
            a,
            b,
            ldc,
            parallel,
            add,
        } = *self;
        let (mr, nr) = (kernel.mr(), kernel.nr());
        let (n, k) = b.dims();
        let out = OutPtr(c.as_mut_ptr());
        // Rows of `A` stored contiguously are read in place by the micro-kernel; other layouts
        // are packed first. The rows of `A` are the columns of `Aᵀ`, packed like those of `B`.
        let direct = a.cs == 1;
        let at = View {
            data: a.data,
            rs: a.cs,
            cs: a.rs,
        };
        let kb = kernel.k_block(k);
        let mut block = 0;
        for pc in (0..k).step_by(kb) {
            let kc = kb.min(k - pc);
            let ap: &[f32] = if direct {
                &[]
            } else {
                let ap = scratch(ap, m.div_ceil(mr) * mr * kc);
                pack(mr, at, [pc, kc, 0, m], ap, parallel);
                ap
            };
            for jc in (0..n).step_by(NC) {
                let nc = NC.min(n - jc);
                let bp: &[f32] = match b {
                    Right::Strided(b, _, _) => {
                        let bp = scratch(bp, nc.div_ceil(nr) * nr * kc);
                        pack(nr, b, [pc, kc, jc, nc], bp, parallel);
                        bp
                    }
                    Right::Packed(p) => &p.data[p.starts[block]..],
                };
                block += 1;
                // Tasks of about `MC` rows and `NT` columns, of near-equal sizes.
                let row_tasks = m.div_ceil(MC);
                let mt = mr * m.div_ceil(mr).div_ceil(row_tasks);
                let row_tasks = m.div_ceil(mt);
                let panels = nc.div_ceil(nr);
                let nt = nr * panels.div_ceil(panels.div_ceil(NT / nr));
                let col_tasks = nc.div_ceil(nt);
                let task = |t: usize| {
                    let (ti, tj) = (t / col_tasks, t % col_tasks);
                    let (i0, i1) = (ti * mt, (ti * mt + mt).min(m));
                    let (j0, j1) = (tj * nt, (tj * nt + nt).min(nc));
                    for jr in (j0..j1).step_by(nr) {
                        let cols = nr.min(j1 - jr);
                        let bpanel = &bp[(jr / nr) * nr * kc..][..nr * kc];
                        for ir in (i0..i1).step_by(mr) {
                            let rows = mr.min(i1 - ir);
                            let apanel = if direct {
                                // Rows past the tile repeat its last row: never stored.
                                APanel::Rows(std::array::from_fn(|r| {
                                    let at = (ir + r.min(rows - 1)) * a.rs + pc;
                                    &a.data[at..at + kc]
                                }))
                            } else {
                                APanel::Packed(&ap[(ir / mr) * mr * kc..][..mr * kc])
                            };
                            // SAFETY: `kernel` runs on this CPU (`product`'s callers checked);
                            // the panels hold `kc` steps; the tile (ir.., jc + jr..) of
                            // `rows × cols` lies inside `c` (checked in `product`) and no other
                            // task writes it.
                            unsafe {
                                out.tile(
                                    kernel,
                                    kc,
                                    apanel,
                                    bpanel,
                                    ir * ldc + jc + jr,
                                    ldc,
                                    [rows, cols],
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
}

/// The left operand of one micro-kernel call: `mr` rows over `kc` steps.
#[derive(Clone, Copy)]
enum APanel<'a> {
    /// Packed: step `s`, row `r` at `s * mr + r`.
    Packed(&'a [f32]),
    /// In place: each row's `kc` values, contiguous (the first `mr` are used).
    Rows([&'a [f32]; MAX_MR]),
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

/// [`pack_panels`] for a panel width `w` that a kernel uses (its `mr` or `nr`).
fn pack(w: usize, x: View<'_>, block: [usize; 4], dst: &mut [f32], parallel: bool) {
    match w {
        6 => pack_panels::<6>(x, block, dst, parallel),
        8 => pack_panels::<8>(x, block, dst, parallel),
        16 => pack_panels::<16>(x, block, dst, parallel),
        32 => pack_panels::<32>(x, block, dst, parallel),
        _ => unreachable!("no kernel has panels of {w}"),
    }
}

/// Packs rows `pc..pc + kc`, columns `jc..jc + nc` of `x` into panels of `W` columns: panel
/// `p`, step `s`, column `c` at `(p * kc + s) * W + c`. `dst` starts with those panels; the
/// padding columns of the last one are left as they are.
fn pack_panels<const W: usize>(
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
            // A transposed view: each column's steps are contiguous where `x.rs == 1`, and
            // blocks of 8 steps × 8 columns go through an 8 × 8 transpose in registers.
            let done = if x.rs == 1 && cols == W && W.is_multiple_of(8) {
                transpose_8x8_blocks::<W>(x, pc, kc / 8 * 8, col0, dst)
            } else {
                0
            };
            for c in 0..cols {
                let col = (col0 + c) * x.cs + pc * x.rs;
                for s in done..kc {
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

/// The first `steps` steps (a multiple of 8) of the panel of `W` columns from `col0` of the
/// column-contiguous view `x` (`x.rs == 1`), from step `pc`, into `dst` (step `s`, column `c`
/// at `s * W + c`), 8 × 8 blocks at a time. Returns the steps done: `steps`, or 0 without AVX2.
///
/// # Panics
/// If `x` lacks a column or a step of the panel, or `dst` is shorter than `steps * W`.
fn transpose_8x8_blocks<const W: usize>(
    x: View<'_>,
    pc: usize,
    steps: usize,
    col0: usize,
    dst: &mut [f32],
) -> usize {
    debug_assert!(x.rs == 1 && W.is_multiple_of(8) && steps.is_multiple_of(8));
    if steps == 0 || !Kernel::Avx2.supported() {
        return 0;
    }
    let dst = &mut dst[..steps * W];
    let columns: [&[f32]; W] = std::array::from_fn(|c| {
        let at = (col0 + c) * x.cs + pc;
        &x.data[at..at + steps]
    });
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX2 was checked; every column holds `steps` values and `dst` `steps * W`.
    unsafe {
        transpose_avx2::<W>(&columns, steps, dst)
    };
    steps
}

/// The body of [`transpose_8x8_blocks`]: `dst[s * W + c] = columns[c][s]` for `s < steps`.
///
/// # Safety
/// The CPU must support AVX2; each of `columns` must hold `steps` values (a multiple of 8) and
/// `dst` `steps * W`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn transpose_avx2<const W: usize>(columns: &[&[f32]; W], steps: usize, dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let out = dst.as_mut_ptr();
    // SAFETY (whole block): reads of 8 values at `s < steps` of each column, writes of 8 values
    // at `s * W + c` for `s < steps`, `c + 8 <= W`: inside the slices (the caller's contract).
    unsafe {
        for c in (0..W).step_by(8) {
            let cols: [*const f32; 8] = std::array::from_fn(|i| columns[c + i].as_ptr());
            for s in (0..steps).step_by(8) {
                let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(cols[i].add(s)));
                // Pairs, then quads of columns interleaved, then the 128-bit halves swapped:
                // `v[j]` ends as step `s + j` of the 8 columns.
                let t = [
                    _mm256_unpacklo_ps(r[0], r[1]),
                    _mm256_unpackhi_ps(r[0], r[1]),
                    _mm256_unpacklo_ps(r[2], r[3]),
                    _mm256_unpackhi_ps(r[2], r[3]),
                    _mm256_unpacklo_ps(r[4], r[5]),
                    _mm256_unpackhi_ps(r[4], r[5]),
                    _mm256_unpacklo_ps(r[6], r[7]),
                    _mm256_unpackhi_ps(r[6], r[7]),
                ];
                let q = [
                    _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                    _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                    _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                    _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                    _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                    _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                    _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                    _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
                ];
                let v = [
                    _mm256_permute2f128_ps::<0x20>(q[0], q[4]),
                    _mm256_permute2f128_ps::<0x20>(q[1], q[5]),
                    _mm256_permute2f128_ps::<0x20>(q[2], q[6]),
                    _mm256_permute2f128_ps::<0x20>(q[3], q[7]),
                    _mm256_permute2f128_ps::<0x31>(q[0], q[4]),
                    _mm256_permute2f128_ps::<0x31>(q[1], q[5]),
                    _mm256_permute2f128_ps::<0x31>(q[2], q[6]),
                    _mm256_permute2f128_ps::<0x31>(q[3], q[7]),
                ];
                for (j, v) in v.into_iter().enumerate() {
                    _mm256_storeu_ps(out.add((s + j) * W + c), v);
                }
            }
        }
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
    /// As [`kernel_avx2`] or [`kernel_avx512`] (per `kernel`), for the tile starting at element
    /// `offset`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile(
        self,
        kernel: Kernel,
        kc: usize,
        a: APanel<'_>,
        b: &[f32],
        offset: usize,
        ldc: usize,
        size: [usize; 2],
        accumulate: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forwarded to the caller.
        unsafe {
            let c = self.0.add(offset);
            let mr = kernel.mr();
            assert!(b.len() >= kc * kernel.nr());
            let b = b.as_ptr();
            match (a, kernel) {
                (APanel::Packed(a), Kernel::Avx2) => {
                    assert!(a.len() >= kc * mr);
                    let a = a.as_ptr();
                    kernel_avx2(kc, |s, r| a.add(s * 6 + r), b, c, ldc, size, accumulate)
                }
                (APanel::Packed(a), Kernel::Avx512) => {
                    assert!(a.len() >= kc * mr);
                    let a = a.as_ptr();
                    kernel_avx512(kc, |s, r| a.add(s * 8 + r), b, c, ldc, size, accumulate)
                }
                (APanel::Rows(rows), _) => {
                    assert!(rows[..mr].iter().all(|r| r.len() >= kc));
                    let rows = rows.map(<[f32]>::as_ptr);
                    if kernel == Kernel::Avx2 {
                        kernel_avx2(kc, |s, r| rows[r].add(s), b, c, ldc, size, accumulate)
                    } else {
                        kernel_avx512(kc, |s, r| rows[r].add(s), b, c, ldc, size, accumulate)
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (kernel, kc, a, b, offset, ldc, size, accumulate);
            unreachable!("sgemm runs only where `available()` is true")
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
        let kernels: Vec<Kernel> = [Kernel::Avx2, Kernel::Avx512]
            .into_iter()
            .filter(|k| k.supported())
            .collect();
        if kernels.len() < 2 {
            eprintln!("note: this CPU has no AVX-512F; only the AVX2 kernel is checked");
        }
        // Sizes straddle every block edge of both kernels: mr, nr, kc, MC, NT and NC.
        for (kernel, &(m, n, k)) in kernels.iter().flat_map(|kernel| {
            [
                (1, 1, 1),
                (7, 17, 3),
                (6, 16, 256),
                (8, 32, 320),
                (97, 260, 257),
                (17, 70, 513),
                (13, 2050, 40),
                (200, 33, 600),
            ]
            .iter()
            .map(move |size| (*kernel, size))
        }) {
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
                assert!(strided(
                    Some(kernel),
                    [m, n, k],
                    a,
                    b,
                    &mut c,
                    ldc,
                    m % 2 == 1,
                    false
                ));
                // The same product with `b` packed beforehand gives the same bits.
                let packed = Packed::with_kernel(kernel, b, k, n).expect("supported");
                let mut again = vec![f32::NAN; m * ldc];
                sgemm_packed(m, a, &packed, &mut again, ldc, m % 2 == 0);
                assert!(
                    c.iter()
                        .zip(&again)
                        .all(|(x, y)| x.to_bits() == y.to_bits())
                );
                // Added to what `C` holds: twice the product.
                let mut twice = c.clone();
                assert!(strided(
                    Some(kernel),
                    [m, n, k],
                    a,
                    b,
                    &mut twice,
                    ldc,
                    m % 3 == 0,
                    true
                ));
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
                            "{kernel:?} {m}x{n}x{k} ({transpose_a}, {transpose_b}) at ({i}, {j}): {got} vs {want}"
                        );
                    }
                    // The padding between rows is never written.
                    assert!(c[i * ldc + n..i * ldc + ldc].iter().all(|v| v.is_nan()));
                }
            }
        }
    }
}
