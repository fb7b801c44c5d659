//! The crate's matrix product on plain row-major slices: what the models' linear layers run,
//! exposed for benchmarks against other implementations (`benches/benches/gemm.rs` sets it
//! beside the `gemm` crate that burn-flex uses).
//!
//! ```
//! use labor_kernels::matmul::{PackedMatrix, matmul, matmul_packed};
//! let (m, n, k) = (3, 5, 4);
//! let a: Vec<f32> = (0..m * k).map(|i| i as f32 / 10.0).collect();
//! let b: Vec<f32> = (0..k * n).map(|i| 1.0 - i as f32 / 20.0).collect();
//! let mut c = vec![0.0; m * n];
//! if matmul(&a, &b, &mut c, [m, n, k]) {
//!     // Row 1, column 2: Σ_p a[1, p] · b[p, 2].
//!     let want: f32 = (0..k).map(|p| a[k + p] * b[p * n + 2]).sum();
//!     assert!((c[n + 2] - want).abs() < 1e-5);
//!     let packed = PackedMatrix::new(&b, k, n).expect("AVX2/FMA here");
//!     let mut d = vec![0.0; m * n];
//!     matmul_packed(&a, &packed, &mut d, m);
//!     assert!(c.iter().zip(&d).all(|(x, y)| (x - y).abs() < 1e-5));
//! } // else: no AVX2/FMA on this CPU, and the models take burn's product.
//! ```

use crate::gemm::{self, Packed, View};

/// `c = a · b` for `[m, n, k]` (all row-major: `a` is `m × k`, `b` is `k × n`, `c` is `m × n`),
/// on rayon's threads. Returns `false`, leaving `c` untouched, where this CPU has no AVX2/FMA.
///
/// # Panics
/// If a slice is shorter than its matrix.
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], [m, n, k]: [usize; 3]) -> bool {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "a matrix is shorter than its sizes"
    );
    gemm::sgemm(
        [m, n, k],
        View {
            data: a,
            rs: k,
            cs: 1,
        },
        View {
            data: b,
            rs: n,
            cs: 1,
        },
        c,
        n,
        true,
    )
}

/// A right operand (`k × n`, row-major) packed once in the order the micro-kernel reads it, as
/// the models keep their weights.
#[derive(Debug)]
pub struct PackedMatrix {
    packed: Packed,
    k: usize,
    n: usize,
}

impl PackedMatrix {
    /// Packs `b`; `None` where this CPU has no AVX2/FMA.
    ///
    /// # Panics
    /// If `b` is shorter than `k × n`.
    pub fn new(b: &[f32], k: usize, n: usize) -> Option<Self> {
        assert!(b.len() >= k * n, "the matrix is shorter than its sizes");
        let packed = Packed::new(
            View {
                data: b,
                rs: n,
                cs: 1,
            },
            k,
            n,
        )?;
        Some(Self { packed, k, n })
    }
}

/// `c = a · b` with `b` packed beforehand; `a` is `m × k` and `c` is `m × n` (row-major).
///
/// # Panics
/// If a slice is shorter than its matrix.
pub fn matmul_packed(a: &[f32], b: &PackedMatrix, c: &mut [f32], m: usize) {
    assert!(
        a.len() >= m * b.k && c.len() >= m * b.n,
        "a matrix is shorter than its sizes"
    );
    gemm::sgemm_packed(
        m,
        View {
            data: a,
            rs: b.k,
            cs: 1,
        },
        &b.packed,
        c,
        b.n,
        true,
    );
}
