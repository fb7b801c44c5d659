//! Devices by name, and a check that one starts.

use burn::tensor::Device;

use crate::error::{Error, Result};

/// The backends this build can run on: `flex` (the CPU, always) and `ndarray`, `wgpu`, `cuda`
/// when their features are on.
pub fn backends() -> Vec<&'static str> {
    [
        ("flex", true),
        ("ndarray", cfg!(feature = "ndarray")),
        ("wgpu", cfg!(feature = "wgpu")),
        ("cuda", cfg!(feature = "cuda")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

/// A device named by its backend as [`backends`] lists them, optionally with an index for GPU
/// backends: `flex` (the CPU), `cuda` or `cuda:1`, `wgpu` or `wgpu:1` (the first, or that
/// discrete GPU).
///
/// ```
/// assert!(labor_model::device_named("flex").is_ok());
/// let err = labor_model::device_named("tpu").unwrap_err().to_string();
/// assert!(err.contains("built: flex"), "{err}");
/// assert!(labor_model::device_named("flex:1").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidOption`] for a backend that is unknown or not built in (naming the feature
/// that builds it), or an index that is not a number.
pub fn device_named(name: &str) -> Result<Device> {
    let (backend, index) = match name.split_once(':') {
        Some((b, i)) => match i.parse::<usize>() {
            Ok(i) if b != "flex" && b != "ndarray" => (b, Some(i)),
            _ => {
                return Err(Error::InvalidOption {
                    name: "device",
                    detail: format!(
                        "`{name}`: an index is a number, and only GPU backends take one"
                    ),
                });
            }
        },
        None => (name, None),
    };
    #[cfg(not(any(feature = "cuda", feature = "wgpu")))]
    let _ = index;
    match backend {
        "flex" => return Ok(Device::flex()),
        // Deprecated upstream (removed in burn 0.23); kept for backend comparisons.
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => return Ok(Device::new(burn::backend::NdArrayDevice::Cpu)),
        #[cfg(feature = "wgpu")]
        "wgpu" => {
            return Ok(Device::wgpu(match index {
                Some(i) => burn::tensor::DeviceKind::DiscreteGpu(i),
                None => Default::default(),
            }));
        }
        #[cfg(feature = "cuda")]
        "cuda" => return Ok(Device::cuda(index.unwrap_or(0))),
        _ => {}
    }
    let built = backends();
    let missing: Vec<String> = ["ndarray", "wgpu", "cuda"]
        .into_iter()
        .filter(|b| !built.contains(b))
        .map(|b| format!("{b} needs `--features {b}`"))
        .collect();
    Err(Error::InvalidOption {
        name: "backend",
        detail: format!(
            "`{backend}` is not built in (built: {}{}{})",
            built.join(", "),
            if missing.is_empty() { "" } else { "; " },
            missing.join(", ")
        ),
    })
}

/// Checks that `device` starts. With a GPU backend built in, burn's default device is the GPU,
/// and on a machine where it cannot start (no driver, no NVRTC) cubecl panics at the first
/// operation; one small operation here turns that into an error that says what to do. Without a
/// GPU feature there is nothing to check.
///
/// # Errors
/// [`Error::InvalidOption`] naming the device when it does not start.
pub fn check_device(device: &Device) -> Result<()> {
    if !cfg!(any(feature = "cuda", feature = "wgpu")) {
        return Ok(());
    }
    let d = device.clone();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        burn::tensor::Tensor::<1>::zeros([1], &d).into_data();
    }))
    .map_err(|_| Error::InvalidOption {
        name: "device",
        detail: format!(
            "{device:?} could not be started (see the message above); `BURN_DEVICE=flex` runs \
             on the CPU{}",
            if cfg!(feature = "cuda") {
                ", and CUDA needs the NVIDIA driver and NVRTC (CUDA_PATH, LD_LIBRARY_PATH; \
                 docs/gpu.md)"
            } else {
                ""
            }
        ),
    })
}

/// The devices of a comma-separated list or of several names (see [`device_named`]), e.g.
/// `cuda:0,cuda:1`; `flex,flex` gives the CPU twice (two shards on threads of one CPU).
///
/// ```
/// let d = labor_model::devices_named(&["flex,flex".to_string()]).unwrap();
/// assert_eq!(d.len(), 2);
/// assert!(labor_model::devices_named(&[]).is_err());
/// ```
///
/// # Errors
/// An empty list; as [`device_named`].
pub fn devices_named(names: &[String]) -> Result<Vec<Device>> {
    let devices: Vec<Device> = names
        .iter()
        .flat_map(|n| n.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(device_named)
        .collect::<Result<_>>()?;
    if devices.is_empty() {
        return Err(Error::InvalidOption {
            name: "devices",
            detail: "no device named".into(),
        });
    }
    Ok(devices)
}

/// The devices of a `--devices` list (see [`devices_named`]), or burn's default device when the
/// list is empty, each checked to start ([`check_device`]).
///
/// # Errors
/// As [`devices_named`] and [`check_device`].
pub fn devices_or_default(names: &[String]) -> Result<Vec<Device>> {
    let devices = if names.is_empty() {
        vec![Device::default()]
    } else {
        devices_named(names)?
    };
    devices.iter().try_for_each(check_device)?;
    Ok(devices)
}
