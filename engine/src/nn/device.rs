//! Which device a run trains on: `FEED_DEVICE` over the file's `training.device`; `auto` takes
//! CUDA only when a GPU is really usable (the driver library is there and a tiny kernel runs).

use crate::config::Device;
use crate::core::{Compute, DeviceChoice};
use crate::error::{Error, Result};

/// Picks the training device. `FEED_DEVICE` (`auto`, `cpu`, `cuda`) overrides the model file.
/// Asking for `cuda` where none is usable is an error, not a silent fallback.
pub fn choose(configured: Device) -> Result<DeviceChoice> {
    let (wanted, source) = match std::env::var("FEED_DEVICE") {
        Ok(v) if !v.trim().is_empty() => (parse_env(&v)?, "FEED_DEVICE"),
        _ => (configured, "training.device"),
    };
    match wanted {
        Device::Cpu => Ok(DeviceChoice {
            compute: Compute::Cpu,
            reason: format!("cpu ({source} = cpu)"),
        }),
        Device::Cuda => match cuda_usable() {
            Ok(name) => Ok(DeviceChoice {
                compute: Compute::Cuda,
                reason: format!("cuda: {name} ({source} = cuda)"),
            }),
            Err(why) => Err(Error::invalid(
                source,
                format!("{source} = cuda, but no CUDA GPU is usable: {why}; use `auto` or `cpu`"),
            )),
        },
        Device::Auto => Ok(match cuda_usable() {
            Ok(name) => DeviceChoice {
                compute: Compute::Cuda,
                reason: format!("cuda: {name} ({source} = auto)"),
            },
            Err(why) => DeviceChoice {
                compute: Compute::Cpu,
                reason: format!("cpu ({source} = auto; no CUDA: {why})"),
            },
        }),
    }
}

fn parse_env(value: &str) -> Result<Device> {
    match value.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(Device::Auto),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => Ok(Device::Cuda),
        other => Err(Error::invalid(
            "FEED_DEVICE",
            format!("FEED_DEVICE = `{other}`: expected `auto`, `cpu` or `cuda`"),
        )),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda_usable() -> std::result::Result<String, String> {
    Err("this feedctl was built without the `cuda` feature".into())
}

/// The GPU's name when CUDA works here: the driver library must exist (cubecl panics without
/// it), then a tiny computation must succeed (a driver/toolkit mismatch shows up only then).
#[cfg(feature = "cuda")]
fn cuda_usable() -> std::result::Result<String, String> {
    use burn::backend::cuda::{Cuda, CudaDevice};
    use burn::tensor::Tensor;

    let driver = driver_library().ok_or("libcuda.so.1 not found (no NVIDIA driver)")?;
    let probe = std::panic::catch_unwind(|| {
        let device = CudaDevice::default();
        let t = Tensor::<Cuda, 1>::from_floats([1.0, 2.0, 3.0], &device);
        t.sum().into_scalar()
    });
    match probe {
        Ok(sum) if (sum - 6.0).abs() < 1e-6 => Ok(gpu_name().unwrap_or_else(|| driver.clone())),
        Ok(sum) => Err(format!("a test sum on the GPU gave {sum}, not 6")),
        Err(e) => Err(format!(
            "the CUDA runtime failed to start ({}); is the CUDA toolkit (NVRTC) installed and CUDA_PATH set?",
            e.downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| e.downcast_ref::<&str>().copied())
                .unwrap_or("panic")
        )),
    }
}

#[cfg(feature = "cuda")]
fn driver_library() -> Option<String> {
    let mut dirs: Vec<String> = std::env::var("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect();
    dirs.extend(
        [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib64",
            "/usr/lib",
            "/usr/local/nvidia/lib64",
            "/usr/lib/wsl/lib",
        ]
        .map(String::from),
    );
    dirs.into_iter()
        .map(|d| format!("{d}/libcuda.so.1"))
        .find(|p| std::path::Path::new(p).exists())
}

#[cfg(feature = "cuda")]
fn gpu_name() -> Option<String> {
    let gpus = std::fs::read_dir("/proc/driver/nvidia/gpus").ok()?;
    for gpu in gpus.flatten() {
        let info = std::fs::read_to_string(gpu.path().join("information")).ok()?;
        if let Some(line) = info.lines().find(|l| l.starts_with("Model:")) {
            return Some(line["Model:".len()..].trim().to_string());
        }
    }
    None
}

/// Calls a training function generic over an autodiff backend on the device a run chose:
/// `on_device!(ctx.device.compute, fit, args…)` is `fit::<Autodiff<Cpu>>(Default::default(),
/// args…)` or its CUDA twin, and an internal error for CUDA in a build without it. The one
/// dispatch every neural policy trains through.
macro_rules! on_device {
    ($compute:expr, $($fit:ident)::+, $($arg:expr),* $(,)?) => {
        match $compute {
            $crate::core::Compute::Cpu => {
                $($fit)::+::<burn::backend::Autodiff<$crate::nn::Cpu>>(Default::default(), $($arg),*)
            }
            #[cfg(feature = "cuda")]
            $crate::core::Compute::Cuda => {
                $($fit)::+::<burn::backend::Autodiff<burn::backend::Cuda>>(Default::default(), $($arg),*)
            }
            #[cfg(not(feature = "cuda"))]
            $crate::core::Compute::Cuda => Err($crate::error::Error::Internal(
                "CUDA was chosen in a build without CUDA".into(),
            )),
        }
    };
}
pub(crate) use on_device;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!(parse_env(" CPU ").unwrap(), Device::Cpu);
        assert_eq!(parse_env("gpu").unwrap(), Device::Cuda);
        let e = parse_env("tpu").unwrap_err().to_string();
        assert!(
            e.contains("FEED_DEVICE") && e.contains("`auto`, `cpu` or `cuda`"),
            "{e}"
        );
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn auto_falls_back_to_the_cpu_and_says_why() {
        let c = choose(Device::Auto).unwrap();
        assert_eq!(c.compute, Compute::Cpu);
        assert!(c.reason.contains("no CUDA"), "{}", c.reason);
        let e = choose(Device::Cuda).unwrap_err().to_string();
        assert!(e.contains("no CUDA GPU is usable"), "{e}");
    }
}
