//! The bridge between burn's tensors and the kernels: whether the kernels run, and the host
//! storage of a flex tensor.

use std::cell::Cell;
use std::sync::OnceLock;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Device, Tensor};

use crate::{attention, gemm, grad};

/// Whether the kernels run in this process: the CPU has AVX2 and FMA, and `LABOR_CPU_KERNELS`
/// is not `0`.
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        gemm::available() && std::env::var("LABOR_CPU_KERNELS").map_or(true, |v| v != "0")
    })
}

thread_local! {
    /// Kernels turned off on this thread (tests compare both paths in one process).
    static OFF: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with burn's operations instead of the kernels on this thread (to compare the two
/// paths in one process; the kernels come back when `f` returns, or unwinds).
pub fn with_burn_ops<R>(f: impl FnOnce() -> R) -> R {
    /// Turns the kernels back on when dropped.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            OFF.with(|off| off.set(self.0));
        }
    }
    let _restore = Restore(OFF.with(|off| off.replace(true)));
    f()
}

/// Whether `device` is burn-flex, the CPU, plain or under autodiff: where the kernels can run
/// (they do when [`enabled`], and under autodiff only without gradient checkpointing, whose
/// nodes they do not record).
pub fn on_cpu(device: &Device) -> bool {
    let plain = if device.is_autodiff() {
        device.clone().inner()
    } else {
        device.clone()
    };
    matches!(plain.as_dispatch(), burn::backend::DispatchDevice::Flex(_))
}

/// Whether the kernels run on this thread now.
pub(crate) fn active() -> bool {
    enabled() && !OFF.with(Cell::get)
}

/// The flex primitive of a float tensor, where it is an `f32` tensor on the flex device without
/// autodiff and its strides are non-negative.
pub(crate) fn host<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    if !active() {
        return None;
    }
    let f = t.clone().try_into_primitive::<Flex>().ok()?;
    (f.dtype() == DType::F32 && f.layout().has_positive_strides()).then_some(f)
}

/// Whether the kernels apply to `t`, with or without autodiff.
pub(crate) fn on_kernels<const D: usize>(t: &Tensor<D>) -> bool {
    host(t).is_some() || grad::tracked(t).is_some()
}

/// The storage of `f` from its first element, and its strides.
pub(crate) fn strided<const D: usize>(f: &FlexTensor) -> (&[f32], [usize; D]) {
    let layout = f.layout();
    let mut strides = [0usize; D];
    for (s, &v) in strides.iter_mut().zip(layout.strides()) {
        *s = v.unsigned_abs();
    }
    (&f.storage::<f32>()[layout.start_offset()..], strides)
}

/// The strided view of the 4-d tensor `f` of `shape`.
pub(crate) fn array4(f: &FlexTensor, shape: [usize; 4]) -> attention::Array4<'_> {
    let (data, strides) = strided::<4>(f);
    attention::Array4 {
        data,
        shape,
        strides,
    }
}

/// Elements per parallel task of the elementwise kernels (fits L1 with its inputs).
pub(crate) const CHUNK: usize = 2048;
