//! Checkpoints: a parameter set with its optimizer's state in one safetensors file, so that
//! training can stop and resume on the same course.
//!
//! Save with [`Fused::save`](crate::Fused::save) or
//! [`cpu::Reference::save`](crate::cpu::Reference::save), load with `load` on either: a file
//! written from the GPU loads into the CPU reference and the other way round. For notes of
//! your own (an epoch count, say), take a [`Checkpoint`] with `checkpoint`, add them with
//! [`Checkpoint::set_user`], [`Checkpoint::write`] it, and build the optimizer with
//! `from_checkpoint` after [`Checkpoint::read`].
//!
//! # File layout (format version 1)
//!
//! Tensors are stored in their own shapes, little-endian; for each tensor `<t>` of the set:
//!
//! | name | dtype | shape | holds |
//! | --- | --- | --- | --- |
//! | `param/<t>` | F32 | the tensor's | its parameters |
//! | `state/<t>/<state>` | F32 | the tensor's | one per state of the optimizer, in PyTorch's words: `exp_avg` and `exp_avg_sq` (Adam, AdamW), `max_exp_avg_sq` (with AMSGrad), `momentum_buffer` (SGD with momentum), `velocity` (Momentum) |
//! | `state/<t>/step` | I64 | `[]` (scalar) | updates the tensor has received |
//!
//! PyTorch keeps `step` as a float tensor; here it is an integer, because step counts are
//! never floats (SPEC.md). Tensor names may contain `/`: the state name is what follows the
//! last one.
//!
//! The safetensors metadata (`__metadata__`, a map of strings) holds:
//!
//! | key | value |
//! | --- | --- |
//! | `format` | `wgpu-optim checkpoint` |
//! | `format_version` | `1` ([`FORMAT_VERSION`]) |
//! | `crate_version` | the version of this crate that wrote the file |
//! | `optimizer` | the optimizer: `gd`, `momentum`, `sgd`, `adam` or `adamw` ([`Rule::NAME`](crate::Rule::NAME)) |
//! | `optimizer.<field>` | every field of its config, named as in the struct: f64 in Rust's shortest text that parses back to the same value (`0.001`, `1e-8`), bools `true` or `false` |
//! | `user.<key>` | the caller's notes ([`Checkpoint::set_user`]) |
//!
//! # What loading checks
//!
//! Everything, before anything is written to the set or an optimizer is created: the file's
//! structure, the format and its version, the optimizer's kind and every field of its config
//! (which is then validated like any config), that the file holds exactly the set's tensors in
//! their shapes with every state the optimizer needs and nothing else, and every element type.
//! Each failure is its own [`Error`] variant. The values themselves carry no checksum: a
//! flipped bit in the data loads as a different number.

mod drivers;
mod hyperparameters;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{ArrayViewD, IxDyn};
use safetensors::Dtype;

pub use hyperparameters::Hyperparameters;

use crate::layout::Layout;
use crate::{Error, Result};

/// The format version this crate writes, and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;

/// Value of the `format` metadata key, which marks the file as one of ours.
const FORMAT: &str = "wgpu-optim checkpoint";

const PARAM_PREFIX: &str = "param/";
const STATE_PREFIX: &str = "state/";
const USER_PREFIX: &str = "user.";
const STEP: &str = "step";

/// A parameter set and its optimizer's state, step counts, kind and hyperparameters, as read
/// from or about to be written to a file.
#[derive(Clone)]
pub struct Checkpoint {
    optimizer: String,
    crate_version: String,
    hyperparameters: BTreeMap<String, String>,
    user: BTreeMap<String, String>,
    tensors: BTreeMap<String, Saved>,
}

/// One tensor's share of a checkpoint.
#[derive(Clone)]
struct Saved {
    shape: Vec<usize>,
    param: Vec<f32>,
    state: BTreeMap<String, Vec<f32>>,
    step: u64,
}

/// A checkpoint checked against a layout and a config type, ready to be written out without
/// another check: per tensor of the layout, in its order, the parameters and the state in
/// [`Rule::state`](crate::Rule::state) order.
pub(crate) struct Restore<'a, R> {
    pub config: R,
    pub tensors: Vec<(&'a [f32], Vec<&'a [f32]>)>,
    pub steps: Vec<u64>,
}

impl Checkpoint {
    /// Reads and checks a checkpoint file; it is checked against a parameter set and an
    /// optimizer when one is built from it.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// Writes the checkpoint to `path`, replacing the file there only once the new one is
    /// complete and synced to disk: a failed write leaves the old file as it was.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let bytes = self.to_bytes().map_err(io)?;
        replace_file(path, |file| file.write_all(&bytes)).map_err(io)
    }

    /// The optimizer that wrote it ([`Rule::NAME`](crate::Rule::NAME)).
    pub fn optimizer(&self) -> &str {
        &self.optimizer
    }

    /// The version of this crate that wrote it.
    pub fn crate_version(&self) -> &str {
        &self.crate_version
    }

    /// A hyperparameter of the optimizer, as written (`lr`, `beta1`, ...).
    pub fn hyperparameter(&self, name: &str) -> Option<&str> {
        self.hyperparameters.get(name).map(String::as_str)
    }

    /// The caller's note `key`, if the checkpoint has one.
    pub fn user(&self, key: &str) -> Option<&str> {
        self.user.get(key).map(String::as_str)
    }

    /// Adds or replaces the caller's note `key`; it is stored as metadata `user.<key>`.
    pub fn set_user(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.user.insert(key.into(), value.into());
    }

    /// Names of the tensors, sorted.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The saved parameters of `tensor`, in its shape.
    pub fn param(&self, tensor: &str) -> Option<ArrayViewD<'_, f32>> {
        let saved = self.tensors.get(tensor)?;
        ArrayViewD::from_shape(IxDyn(&saved.shape), &saved.param).ok()
    }

    /// The saved optimizer state `name` (`exp_avg`, ...) of `tensor`, in its shape.
    pub fn state(&self, tensor: &str, name: &str) -> Option<ArrayViewD<'_, f32>> {
        let saved = self.tensors.get(tensor)?;
        ArrayViewD::from_shape(IxDyn(&saved.shape), saved.state.get(name)?).ok()
    }

    /// The updates `tensor` had received when it was saved.
    pub fn step_count(&self, tensor: &str) -> Option<u64> {
        self.tensors.get(tensor).map(|s| s.step)
    }

    /// Takes host copies of whole arenas (`params` and the `state` arenas in `config.state()`
    /// order, laid out by `layout`) and the per-tensor step counts.
    pub(crate) fn capture<R: Hyperparameters>(
        config: &R,
        layout: &Layout,
        steps: &[u64],
        params: &[f32],
        state: &[&[f32]],
    ) -> Result<Self> {
        // An arena of another layout would be read at the wrong places.
        let fits = |arena: &[f32]| arena.len() >= layout.arena_len();
        if steps.len() != layout.tensors().len()
            || state.len() != config.state().len()
            || !fits(params)
            || !state.iter().all(|a| fits(a))
        {
            return Err(Error::WrongParamSet);
        }
        let tensors = layout
            .tensors()
            .iter()
            .zip(steps)
            .map(|(t, &step)| {
                let saved = Saved {
                    shape: t.shape().to_vec(),
                    param: params[t.range()].to_vec(),
                    state: config
                        .state()
                        .iter()
                        .zip(state)
                        .map(|(&name, arena)| (name.to_owned(), arena[t.range()].to_vec()))
                        .collect(),
                    step,
                };
                (t.name().to_owned(), saved)
            })
            .collect();
        Ok(Self {
            optimizer: R::NAME.to_owned(),
            crate_version: env!("CARGO_PKG_VERSION").to_owned(),
            hyperparameters: config
                .to_fields()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            user: BTreeMap::new(),
            tensors,
        })
    }

    /// Checks the checkpoint against `layout` and the optimizer `R`, and reads its config.
    pub(crate) fn restore<R: Hyperparameters>(&self, layout: &Layout) -> Result<Restore<'_, R>> {
        if self.optimizer != R::NAME {
            return Err(Error::WrongOptimizer {
                expected: R::NAME,
                found: self.optimizer.clone(),
            });
        }
        let config: R = hyperparameters::read_config(&self.hyperparameters)?;
        let names = config.state();

        let mut tensors = Vec::with_capacity(layout.tensors().len());
        let mut steps = Vec::with_capacity(layout.tensors().len());
        for t in layout.tensors() {
            let saved = self
                .tensors
                .get(t.name())
                .ok_or_else(|| Error::MissingCheckpointTensor(param_key(t.name())))?;
            if saved.shape != t.shape() {
                return Err(Error::CheckpointShape {
                    name: param_key(t.name()),
                    expected: t.shape().to_vec(),
                    found: saved.shape.clone(),
                });
            }
            let state =
                names
                    .iter()
                    .map(|&name| {
                        saved.state.get(name).map(Vec::as_slice).ok_or_else(|| {
                            Error::MissingCheckpointTensor(state_key(t.name(), name))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
            if let Some(extra) = saved.state.keys().find(|k| !names.contains(&k.as_str())) {
                return Err(Error::UnexpectedCheckpointTensor(state_key(
                    t.name(),
                    extra,
                )));
            }
            tensors.push((saved.param.as_slice(), state));
            steps.push(saved.step);
        }
        if let Some(extra) = self
            .tensors
            .keys()
            .find(|name| layout.index_of(name).is_err())
        {
            return Err(Error::UnexpectedCheckpointTensor(param_key(extra)));
        }
        Ok(Restore {
            config,
            tensors,
            steps,
        })
    }

    /// Parses a whole file; every tensor must be one the format defines, in its element type.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = |e: safetensors::SafeTensorError| Error::CorruptCheckpoint(e.to_string());
        let (header_len, header) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(corrupt)?;
        let data_start = 8 + header_len;

        // Metadata: ours, in a version we read, naming the optimizer.
        let empty = HashMap::new();
        let meta = header.metadata().as_ref().unwrap_or(&empty);
        let get = |key: &str| {
            meta.get(key).ok_or_else(|| Error::CheckpointMetadata {
                key: key.to_owned(),
                reason: "is missing".into(),
            })
        };
        let format = get("format")?;
        if format != FORMAT {
            return Err(Error::CheckpointMetadata {
                key: "format".into(),
                reason: format!("is `{format}`, not `{FORMAT}`"),
            });
        }
        let version = get("format_version")?;
        let version: u32 = version.parse().map_err(|_| Error::CheckpointMetadata {
            key: "format_version".into(),
            reason: format!("is `{version}`, not a whole number"),
        })?;
        if version != FORMAT_VERSION {
            return Err(Error::CheckpointVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let crate_version = get("crate_version")?.clone();
        let optimizer = get("optimizer")?.clone();
        let with_prefix = |prefix: &str| -> BTreeMap<String, String> {
            meta.iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_owned(), v.clone())))
                .collect()
        };
        let hyperparameters = with_prefix(hyperparameters::PREFIX);
        let user = with_prefix(USER_PREFIX);

        // Tensors, in name order so that the first problem reported does not vary.
        let infos: BTreeMap<String, &safetensors::tensor::TensorInfo> =
            header.tensors().into_iter().collect();
        let mut parts: BTreeMap<&str, Part> = BTreeMap::new();
        for (name, info) in &infos {
            let (start, end) = info.data_offsets;
            let data = bytes
                .get(data_start + start..data_start + end)
                .ok_or_else(|| Error::CorruptCheckpoint(format!("`{name}` lies past the end")))?;
            if let Some(tensor) = name.strip_prefix(PARAM_PREFIX) {
                let values = f32_values(name, info.dtype, data)?;
                parts.entry(tensor).or_default().param = Some((info.shape.clone(), values));
            } else if let Some((tensor, state)) = name
                .strip_prefix(STATE_PREFIX)
                .and_then(|rest| rest.rsplit_once('/'))
            {
                let part = parts.entry(tensor).or_default();
                if state == STEP {
                    part.step = Some(step_value(name, info, data)?);
                } else {
                    let values = f32_values(name, info.dtype, data)?;
                    part.state
                        .insert(state.to_owned(), (info.shape.clone(), values));
                }
            } else {
                return Err(Error::UnexpectedCheckpointTensor(name.clone()));
            }
        }

        let tensors = parts
            .into_iter()
            .map(|(tensor, part)| Ok((tensor.to_owned(), part.into_saved(tensor)?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            optimizer,
            crate_version,
            hyperparameters,
            user,
            tensors,
        })
    }

    /// The whole file.
    fn to_bytes(&self) -> std::io::Result<Vec<u8>> {
        let mut views = Vec::with_capacity(self.tensors.len() * 2);
        for (name, saved) in &self.tensors {
            views.push((param_key(name), f32_view(&saved.shape, &saved.param)));
            for (state, values) in &saved.state {
                views.push((state_key(name, state), f32_view(&saved.shape, values)));
            }
            let step = i64::try_from(saved.step).map_err(std::io::Error::other)?;
            let step = View {
                dtype: Dtype::I64,
                shape: Vec::new(),
                data: Cow::Owned(step.to_le_bytes().to_vec()),
            };
            views.push((state_key(name, STEP), step));
        }

        let mut meta: HashMap<String, String> = [
            ("format", FORMAT),
            ("crate_version", &self.crate_version),
            ("optimizer", &self.optimizer),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        meta.insert("format_version".into(), FORMAT_VERSION.to_string());
        for (prefix, map) in [
            (hyperparameters::PREFIX, &self.hyperparameters),
            (USER_PREFIX, &self.user),
        ] {
            meta.extend(map.iter().map(|(k, v)| (format!("{prefix}{k}"), v.clone())));
        }
        safetensors::serialize(views, Some(meta)).map_err(std::io::Error::other)
    }
}

impl std::fmt::Debug for Checkpoint {
    // A summary: the values run to gigabytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("optimizer", &self.optimizer)
            .field("crate_version", &self.crate_version)
            .field("hyperparameters", &self.hyperparameters)
            .field("user", &self.user)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// A tensor's entries as they are found in a file, before they are known to be complete.
#[derive(Default)]
struct Part {
    param: Option<(Vec<usize>, Vec<f32>)>,
    state: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    step: Option<u64>,
}

impl Part {
    fn into_saved(self, tensor: &str) -> Result<Saved> {
        let (shape, param) = self
            .param
            .ok_or_else(|| Error::MissingCheckpointTensor(param_key(tensor)))?;
        let step = self
            .step
            .ok_or_else(|| Error::MissingCheckpointTensor(state_key(tensor, STEP)))?;
        let state = self
            .state
            .into_iter()
            .map(|(name, (found, values))| {
                if found != shape {
                    return Err(Error::CheckpointShape {
                        name: state_key(tensor, &name),
                        expected: shape.clone(),
                        found,
                    });
                }
                Ok((name, values))
            })
            .collect::<Result<_>>()?;
        Ok(Saved {
            shape,
            param,
            state,
            step,
        })
    }
}

fn param_key(tensor: &str) -> String {
    format!("{PARAM_PREFIX}{tensor}")
}

fn state_key(tensor: &str, state: &str) -> String {
    format!("{STATE_PREFIX}{tensor}/{state}")
}

fn dtype_error(name: &str, expected: &'static str, found: Dtype) -> Error {
    Error::CheckpointDtype {
        name: name.to_owned(),
        expected,
        found: format!("{found:?}"),
    }
}

fn f32_values(name: &str, dtype: Dtype, data: &[u8]) -> Result<Vec<f32>> {
    if dtype != Dtype::F32 {
        return Err(dtype_error(name, "F32", dtype));
    }
    Ok(data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn step_value(name: &str, info: &safetensors::tensor::TensorInfo, data: &[u8]) -> Result<u64> {
    if info.dtype != Dtype::I64 {
        return Err(dtype_error(name, "I64", info.dtype));
    }
    if !info.shape.is_empty() {
        return Err(Error::CheckpointShape {
            name: name.to_owned(),
            expected: Vec::new(),
            found: info.shape.clone(),
        });
    }
    let bytes: [u8; 8] = data
        .try_into()
        .map_err(|_| Error::CorruptCheckpoint(format!("`{name}` is not 8 bytes long")))?;
    let step = i64::from_le_bytes(bytes);
    u64::try_from(step)
        .map_err(|_| Error::CorruptCheckpoint(format!("step count `{name}` is negative: {step}")))
}

fn f32_view<'a>(shape: &[usize], values: &'a [f32]) -> View<'a> {
    View {
        dtype: Dtype::F32,
        shape: shape.to_vec(),
        data: le_bytes(values),
    }
}

/// f32 values as little-endian bytes, borrowed where the host is little-endian already.
fn le_bytes(values: &[f32]) -> Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        Cow::Borrowed(bytemuck::cast_slice(values))
    } else {
        Cow::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
}

/// One tensor handed to safetensors' writer.
struct View<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Cow<'a, [u8]>,
}

impl safetensors::View for View<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Replaces `path` with what `fill` writes, or leaves it untouched: the bytes go to a new
/// file in the same directory (so the rename cannot cross file systems), are synced, and the
/// file is renamed over `path`; on any failure the new file is removed.
fn replace_file(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));

    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        fill(&mut file)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        // The new file may not exist at all; its removal failing changes nothing.
        let _ = std::fs::remove_file(&temp);
        return written;
    }

    // Make the rename itself durable. It has happened either way, so a directory that
    // cannot be synced (or, on some systems, opened) is not reported as a failed save.
    #[cfg(unix)]
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wgpu-optim-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_write_failing_half_way_leaves_the_old_file_and_no_debris() {
        let dir = temp_dir("half-way");
        let path = dir.join("ckpt.safetensors");
        std::fs::write(&path, b"the good file").unwrap();

        let err = replace_file(&path, |file| {
            file.write_all(b"half of the new")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(std::fs::read(&path).unwrap(), b"the good file");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["ckpt.safetensors"]);

        replace_file(&path, |file| file.write_all(b"the new file")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"the new file");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        let err = replace_file(Path::new("/"), |_| Ok(())).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}
