//! Offline stand-in for `cubecl-llvm` 0.11.3.
//!
//! cubecl-cuda 0.11 compiles two kernel compilers and picks one at run time: CUDA C++ handed to
//! NVRTC, and a pliron/LLVM lowering to PTX. The second links LLVM 23, which can only be fetched
//! from GitHub while building. This crate keeps the names cubecl-cuda uses from the LLVM path so
//! that it compiles, and refuses every compilation on that path with a clear error. With
//! cubecl-cuda's `cpp` feature on (labor-model's `cuda` feature turns it on) the LLVM path is
//! never chosen.

use cubecl_core::ir::DeviceProperties;
use cubecl_core::ir::nvidia::SmArch;
use cubecl_core::prelude::KernelDefinition;
use cubecl_runtime::compiler::{CompilationError, Compiler};
use cubecl_runtime::kernel::BufferIOAttr;

/// Why every compilation on the LLVM path fails in this build.
pub const REASON: &str = "this build of cubecl-cuda has no LLVM backend (labor builds burn's CUDA \
backend offline with the CUDA C++ / NVRTC compiler only); the `cpp` feature of cubecl-cuda selects it";

/// The targets of the LLVM backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LlvmTarget {
    /// The CPU (the real crate's default).
    #[default]
    Cpu,
    /// AMD GPUs.
    AmdGpu,
    /// NVIDIA GPUs (PTX).
    Nvptx,
}

/// The LLVM compiler; compiling always fails here.
#[derive(Clone, Debug, Default)]
pub struct PlironCompiler {
    /// The target it would compile for.
    pub target: LlvmTarget,
}

/// An AMD architecture; never constructed here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GfxArch {}

/// Options of the LLVM compiler (the fields cubecl-cuda sets).
#[derive(Clone, Debug, Default)]
pub struct PlironOptions {
    /// AMD architecture.
    pub arch: Option<GfxArch>,
    /// NVIDIA architecture.
    pub sm_arch: Option<SmArch>,
    /// PTX version to emit.
    pub ptx_version: Option<nvptx::ptx_version::PtxVersion>,
    /// Scalars in the parameter block.
    pub grid_constants: bool,
}

/// A compiled PTX module. Never produced here.
#[derive(Clone, Debug)]
pub struct NvptxModule {
    /// NUL-terminated PTX.
    pub ptx: Vec<core::ffi::c_char>,
    /// Entry point.
    pub entrypoint: String,
    /// IR text.
    pub ir: String,
    /// Shared memory per launch, in bytes.
    pub shared_memory_size: usize,
    /// Buffer access modes.
    pub io: Vec<BufferIOAttr>,
}

/// What the LLVM compiler produces.
#[derive(Clone, Debug)]
pub enum PlironArtifact {
    /// PTX for an NVIDIA GPU.
    NvptxCode(NvptxModule),
}

impl core::fmt::Display for PlironArtifact {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PlironArtifact::NvptxCode(module) => f.write_str(&module.ir),
        }
    }
}

impl Compiler for PlironCompiler {
    type Representation = PlironArtifact;
    type CompilationOptions = PlironOptions;

    fn compile(
        &mut self,
        _kernel: KernelDefinition,
        _options: &Self::CompilationOptions,
    ) -> Result<Self::Representation, CompilationError> {
        Err(CompilationError::Generic {
            reason: REASON.to_string(),
            backtrace: Default::default(),
        })
    }

    fn extension(&self) -> &'static str {
        "ll"
    }

    fn lang_tag(&self) -> &'static str {
        "llvm"
    }
}

/// NVIDIA specifics.
pub mod nvptx {
    /// PTX ISA versions.
    pub mod ptx_version {
        use core::fmt;

        /// A PTX ISA version (8.7 is `87`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct PtxVersion(u32);

        impl PtxVersion {
            /// Only the LLVM backend emits a PTX version of its choosing; the NVRTC path writes
            /// its toolkit's own, so no version is chosen here.
            pub fn for_driver(_driver: i32) -> Option<Self> {
                None
            }
        }

        impl fmt::Display for PtxVersion {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "ptx{}", self.0)
            }
        }
    }
}

/// Shared between targets.
pub mod shared {
    /// Device features the LLVM backend can lower.
    pub mod lowered_features {
        use super::super::DeviceProperties;

        /// The GPU a device's features would be narrowed for.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum GpuTarget {
            /// NVIDIA.
            Nvptx,
        }

        /// Narrows the advertised features to the LLVM backend's. Called only when that backend
        /// is selected, which never compiles here, so the properties are left as they are.
        pub fn restrict_features(_props: &mut DeviceProperties, _target: GpuTarget) {}
    }
}
