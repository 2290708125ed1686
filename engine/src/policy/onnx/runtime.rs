//! ONNX Runtime, loaded once per process from its shared library (`ort` with `load-dynamic`):
//! Feed links no ONNX Runtime of its own, so the one a user has (the `onnxruntime` wheel from
//! PyPI, or a system package) is the one that scores, and a build without it stays small.

use std::path::PathBuf;
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;

/// The version `scripts/setup` installs and the tests run against.
pub const WHEEL: &str = "onnxruntime==1.32.0";

/// The process's ONNX Runtime, or why there is none (the same answer for the process's life:
/// a library can be loaded only once).
pub fn environment() -> Result<&'static Environment, String> {
    static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let path = library()?;
        let builder = ort::init_from(&path)
            .map_err(|e| format!("loading ONNX Runtime from {}: {e}", path.display()))?;
        builder
            .with_name("feed")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("starting ONNX Runtime from {}: {e}", path.display()))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// A session over the model in `bytes`, on one thread per run: serving runs many requests at
/// once, each small, so parallelism comes from requests rather than from within one.
pub fn session(bytes: &[u8]) -> Result<Session, String> {
    let env = environment()?;
    Session::builder(env)
        .and_then(|b| b.with_intra_threads(1).map_err(Into::into))
        .and_then(|mut b| b.commit_from_memory(bytes))
        .map_err(|e| format!("ONNX Runtime cannot load the model: {e}"))
}

/// Where the shared library is: `ORT_DYLIB_PATH` (the `ort` crate's convention) when set,
/// else the `onnxruntime` package of the machine's `python3`.
fn library() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "ORT_DYLIB_PATH is {}, which is not a file; point it at libonnxruntime.so",
                path.display()
            ))
        };
    }
    let script = "import glob, os, onnxruntime\n\
                  capi = os.path.join(os.path.dirname(onnxruntime.__file__), 'capi')\n\
                  found = sorted(glob.glob(os.path.join(capi, 'libonnxruntime.so*')) + glob.glob(os.path.join(capi, 'libonnxruntime*.dylib')))\n\
                  print(found[0] if found else '')";
    let missing = || {
        format!(
            "ONNX Runtime was not found: install it with `python3 -m pip install {WHEEL}`, or set ORT_DYLIB_PATH to its libonnxruntime.so"
        )
    };
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .map_err(|_| missing())?;
    let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || found.is_empty() {
        return Err(missing());
    }
    Ok(PathBuf::from(found))
}
