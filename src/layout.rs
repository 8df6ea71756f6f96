//! Where each tensor lives in the arena, and how the arena is cut into work for the kernels.
//!
//! The GPU [`ParamSet`](crate::ParamSet) and the CPU [`cpu::ParamSet`](crate::cpu::ParamSet)
//! share one layout, so element `i` of the arena means the same thing on both sides.

use std::collections::HashMap;

use crate::{Error, Result};

/// Tensor starts are aligned to this many elements, so a caller's kernel can bind one tensor
/// as a buffer range: 256 bytes of f16 (and 512 of f32), the largest storage-offset alignment
/// WebGPU allows a device to ask for.
pub const TENSOR_ALIGN: usize = 128;

/// Elements handled by one workgroup; a tensor is cut into chunks of at most this length.
pub const CHUNK_LEN: usize = 4096;

/// One tensor of a parameter set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    name: String,
    shape: Vec<usize>,
    offset: usize,
    len: usize,
}

impl TensorInfo {
    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tensor's shape (row-major).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// First element of the tensor in the arena (a multiple of [`TENSOR_ALIGN`]).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Arena element range of the tensor.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// One workgroup's share of work: arena elements `start..end`, all of tensor `tensor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub tensor: usize,
    pub start: usize,
    pub end: usize,
}

/// The arrangement of named tensors in one arena.
#[derive(Clone)]
pub struct Layout {
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
    arena_len: usize,
    chunks: Vec<Chunk>,
}

impl Layout {
    /// Starts an empty layout.
    pub fn builder() -> LayoutBuilder {
        LayoutBuilder::default()
    }

    /// The tensors, in the order they were added.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Index of the tensor called `name`.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownTensor(name.to_owned()))
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        Ok(&self.tensors[self.index_of(name)?])
    }

    /// Arena length in elements, alignment padding included.
    pub fn arena_len(&self) -> usize {
        self.arena_len
    }

    /// Number of parameters (padding excluded).
    pub fn num_params(&self) -> usize {
        self.tensors.iter().map(|t| t.len).sum()
    }

    pub(crate) fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }
}

impl std::fmt::Debug for Layout {
    // A summary: the chunk list of a large set runs to megabytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layout")
            .field("tensors", &self.tensors.len())
            .field("arena_len", &self.arena_len)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

/// Collects tensor names and shapes for a [`Layout`].
#[derive(Debug, Default)]
pub struct LayoutBuilder {
    tensors: Vec<(String, Vec<usize>)>,
}

impl LayoutBuilder {
    /// Adds a tensor; a shape with a zero dimension gives an empty tensor, which is allowed.
    pub fn tensor(mut self, name: impl Into<String>, shape: &[usize]) -> Self {
        self.tensors.push((name.into(), shape.to_vec()));
        self
    }

    /// Places the tensors and cuts them into chunks.
    pub fn build(self) -> Result<Layout> {
        let mut tensors = Vec::with_capacity(self.tensors.len());
        let mut by_name = HashMap::with_capacity(self.tensors.len());
        let mut chunks = Vec::new();
        let mut offset = 0usize;
        for (index, (name, shape)) in self.tensors.into_iter().enumerate() {
            if by_name.insert(name.clone(), index).is_some() {
                return Err(Error::DuplicateTensor(name));
            }
            // Kernels index a tensor's elements with u32.
            let len = shape
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .filter(|&n| n <= u32::MAX as usize)
                .ok_or(Error::LimitExceeded {
                    what: "elements of one tensor",
                    requested: shape.iter().map(|&d| d as u64).fold(1, u64::saturating_mul),
                    limit: u32::MAX as u64,
                })?;
            let end = offset + len;
            for start in (offset..end).step_by(CHUNK_LEN) {
                chunks.push(Chunk {
                    tensor: index,
                    start,
                    end: (start + CHUNK_LEN).min(end),
                });
            }
            tensors.push(TensorInfo {
                name,
                shape,
                offset,
                len,
            });
            offset = end.next_multiple_of(TENSOR_ALIGN);
        }
        Ok(Layout {
            tensors,
            by_name,
            arena_len: offset,
            chunks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_start_aligned_and_chunks_cover_them_exactly() {
        let layout = Layout::builder()
            .tensor("a", &[3])
            .tensor("empty", &[4, 0])
            .tensor("b", &[CHUNK_LEN + 1])
            .tensor("c", &[2, 32])
            .build()
            .unwrap();
        let offsets: Vec<usize> = layout.tensors().iter().map(|t| t.offset()).collect();
        let c_start = (128 + CHUNK_LEN + 1).next_multiple_of(128);
        assert_eq!(offsets, [0, 128, 128, c_start]);
        assert_eq!(layout.arena_len(), c_start + 128);
        assert_eq!(layout.num_params(), 3 + CHUNK_LEN + 1 + 64);

        let ranges: Vec<(usize, usize, usize)> = layout
            .chunks()
            .iter()
            .map(|c| (c.tensor, c.start, c.end))
            .collect();
        let b_end = 128 + CHUNK_LEN + 1;
        assert_eq!(
            ranges,
            [
                (0, 0, 3),
                (2, 128, 128 + CHUNK_LEN),
                (2, 128 + CHUNK_LEN, b_end),
                (3, c_start, c_start + 64)
            ]
        );
    }

    #[test]
    fn duplicate_names_are_refused() {
        let err = Layout::builder()
            .tensor("w", &[1])
            .tensor("w", &[2])
            .build();
        assert!(matches!(err, Err(Error::DuplicateTensor(name)) if name == "w"));
    }

    #[test]
    fn tensors_past_u32_indexing_are_refused() {
        let err = Layout::builder()
            .tensor("huge", &[1 << 20, 1 << 12])
            .build();
        assert!(matches!(err, Err(Error::LimitExceeded { what, .. }) if what.contains("tensor")));
        let err = Layout::builder()
            .tensor("overflow", &[usize::MAX, 2])
            .build();
        assert!(matches!(err, Err(Error::LimitExceeded { .. })));
        // Many tensors may add up to more than u32 elements.
        let many = (0..3).fold(Layout::builder(), |b, i| {
            b.tensor(format!("t{i}"), &[1 << 31])
        });
        assert_eq!(many.build().unwrap().arena_len(), 3 << 31);
    }
}
