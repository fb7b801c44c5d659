//! Weights packed once for the matrix product, kept while their tensor lives.

use std::sync::{Arc, Mutex, OnceLock, Weak};

use burn::backend::flex::FlexTensor;
use burn::tensor::{Bytes, Tensor};

use crate::gemm;
use crate::host::{host, strided};

/// Fewest rows of a product on our kernel: a single row (one decoding step) runs 1.7-2.3×
/// faster on burn's product (the `gemm` crate) than on ours, packed or not, while from 64 rows
/// up ours is 1.2-2.9× faster on every measured shape but one, where the two were level
/// (`benches/benches/gemm.rs`, docs/llm-speed.md).
pub(crate) const MIN_ROWS: usize = 2;

/// The values of `x · w`, row-major `[batch · seq, out]`; `None` for fewer than [`MIN_ROWS`]
/// rows or tensors the kernels do not take.
pub(crate) fn project(x: &Tensor<3>, w: &Tensor<2>) -> Option<Vec<f32>> {
    let [b, s, k] = x.dims();
    if b * s < MIN_ROWS {
        return None;
    }
    let (xf, wf) = (host(x)?, host(w)?);
    let [_, n] = w.dims();
    let x_flat = xf.layout().is_contiguous().then(|| {
        let (data, _) = strided::<3>(&xf);
        gemm::View { data, rs: k, cs: 1 }
    })?;
    let (wd, ws) = strided::<2>(&wf);
    let m = b * s;
    let mut out = vec![0.0f32; m * n];
    let w_view = gemm::View {
        data: wd,
        rs: ws[0],
        cs: ws[1],
    };
    times(x_flat, &wf, w_view, [m, n, k], &mut out)?;
    Some(out)
}

/// `out ← a · w` (`[m, n, k]`), with `w` (the view `w_view` of the weight `wf`) packed once and
/// kept while it lives, within the budget of [`packed_weight`].
pub(crate) fn times(
    a: gemm::View<'_>,
    wf: &FlexTensor,
    w_view: gemm::View<'_>,
    [m, n, k]: [usize; 3],
    out: &mut [f32],
) -> Option<()> {
    match packed_weight(wf, w_view, k, n) {
        Some(p) => {
            gemm::sgemm_packed(m, a, &p, out, n, true);
            Some(())
        }
        None => gemm::sgemm([m, n, k], a, w_view, out, n, true).then_some(()),
    }
}

/// A weight packed for the matrix product, with the storage it was packed from (held weakly:
/// the entry goes when the weight does) and the view of it.
pub(crate) struct PackedEntry {
    storage: Weak<Bytes>,
    view: (usize, usize, usize, usize, usize),
    packed: Arc<gemm::Packed>,
}

/// Packed weights of the models in use.
pub(crate) static PACKED: Mutex<Vec<PackedEntry>> = Mutex::new(Vec::new());

/// Most bytes of packed weights kept: `LABOR_PACKED_WEIGHTS_MB` (default 2048; 0 packs every
/// product's weight anew, as burn does).
pub(crate) fn packed_budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::env::var("LABOR_PACKED_WEIGHTS_MB")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(2048)
            << 20
    })
}

/// The packed form of the weight `w` (`k × n`, the view `view` of the tensor `f`): from the
/// cache, or packed now and kept if the budget allows. A weight is packed once, however many
/// products use it (the scorer runs each weight hundreds of times); entries whose weight was
/// dropped are removed on the way.
pub(crate) fn packed_weight(
    f: &FlexTensor,
    view: gemm::View<'_>,
    k: usize,
    n: usize,
) -> Option<Arc<gemm::Packed>> {
    let budget = packed_budget();
    if budget == 0 {
        return None;
    }
    let storage = Arc::downgrade(&f.data_arc());
    let key = (f.layout().start_offset(), view.rs, view.cs, k, n);
    let mut cache = PACKED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache.retain(|e| e.storage.strong_count() > 0);
    if let Some(e) = cache
        .iter()
        .find(|e| Weak::ptr_eq(&e.storage, &storage) && e.view == key)
    {
        return Some(Arc::clone(&e.packed));
    }
    let used: usize = cache.iter().map(|e| e.packed.bytes()).sum();
    if used + k * n * std::mem::size_of::<f32>() > budget {
        return None;
    }
    let packed = Arc::new(gemm::Packed::new(view, k, n)?);
    cache.push(PackedEntry {
        storage,
        view: key,
        packed: Arc::clone(&packed),
    });
    Some(packed)
}
