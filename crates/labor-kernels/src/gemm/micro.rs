//! The micro-kernels of the matrix product: an `mr × nr` tile of the product kept in registers
//! while the shared dimension is walked (6 × 16 on AVX2, 8 × 32 on AVX-512).

/// Starts fetching the `rows × cols` tile at `c` (row stride `ldc`) into L1: a micro-kernel
/// reads or writes it only at the end.
///
/// # Safety
/// `c` must point to such a tile (prefetches do not fault, but the addresses must be in bounds
/// of its allocation).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn prefetch_tile(c: *mut f32, ldc: usize, [rows, cols]: [usize; 2]) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: the addresses lie in the caller's tile.
    unsafe {
        for r in 0..rows {
            _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc + cols - 1) as *const i8);
        }
    }
}

/// The 6 × 16 AVX2 micro-kernel: `C[..rows, ..cols] (+)= Apanel · Bpanel` over `kc` steps, with
/// `a(s, r)` the address of row `r`'s value at step `s` and `b` the panel (16 values a step).
///
/// # Safety
/// The CPU must support AVX2 and FMA; `a(s, r)` must be readable for every `s < kc`, `r < 6`,
/// and `b` must hold `kc * 16` values; `c` must point to a `rows × cols` tile (row stride `ldc`,
/// at most 6 × 16) that nobody else accesses meanwhile.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) unsafe fn kernel_avx2(
    kc: usize,
    a: impl Fn(usize, usize) -> *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    [rows, cols]: [usize; 2],
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    const MR: usize = 6;
    const NR: usize = 16;
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    // SAFETY (whole block): the reads stay within the `kc` steps of the caller's contract; the
    // writes within the caller's tile.
    unsafe {
        prefetch_tile(c, ldc, [rows, cols]);
        for s in 0..kc {
            let b0 = _mm256_loadu_ps(b.add(s * NR));
            let b1 = _mm256_loadu_ps(b.add(s * NR + 8));
            for (r, row) in acc.iter_mut().enumerate() {
                let x = _mm256_broadcast_ss(&*a(s, r));
                row[0] = _mm256_fmadd_ps(x, b0, row[0]);
                row[1] = _mm256_fmadd_ps(x, b1, row[1]);
            }
        }
        if rows == MR && cols == NR {
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
            for r in 0..rows {
                let p = c.add(r * ldc);
                for j in 0..cols {
                    let v = tmp[r * NR + j];
                    *p.add(j) = if accumulate { *p.add(j) + v } else { v };
                }
            }
        }
    }
}

/// The 8 × 32 AVX-512 micro-kernel: as [`kernel_avx2`], with 32 values a step in `b` and
/// partial tiles stored through lane masks.
///
/// # Safety
/// As [`kernel_avx2`], for a CPU with AVX-512F, `r < 8`, `kc * 32` values in `b` and a tile of
/// at most 8 × 32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn kernel_avx512(
    kc: usize,
    a: impl Fn(usize, usize) -> *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    [rows, cols]: [usize; 2],
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    const MR: usize = 8;
    const NR: usize = 32;
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    // SAFETY (whole block): as in `kernel_avx2`; masked loads and stores touch only the lanes
    // of the tile's columns.
    unsafe {
        prefetch_tile(c, ldc, [rows, cols]);
        for s in 0..kc {
            let b0 = _mm512_loadu_ps(b.add(s * NR));
            let b1 = _mm512_loadu_ps(b.add(s * NR + 16));
            for (r, row) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*a(s, r));
                row[0] = _mm512_fmadd_ps(x, b0, row[0]);
                row[1] = _mm512_fmadd_ps(x, b1, row[1]);
            }
        }
        // Lanes of the tile's columns in each half.
        let lanes = |n: usize| -> __mmask16 { ((1u32 << n.min(16)) - 1) as __mmask16 };
        let (m0, m1) = (lanes(cols), lanes(cols.saturating_sub(16)));
        for (r, row) in acc.iter().take(rows).enumerate() {
            let p = c.add(r * ldc);
            let (mut v0, mut v1) = (row[0], row[1]);
            if accumulate {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, p));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, p.add(16)));
            }
            _mm512_mask_storeu_ps(p, m0, v0);
            _mm512_mask_storeu_ps(p.add(16), m1, v1);
        }
    }
}
