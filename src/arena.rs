//! How a layout's arena is spread over device buffers and storage bindings.
//!
//! A buffer holds whole tensors and at most the device's buffer size; a binding (one
//! dispatch's window into a buffer) holds whole chunks and at most the storage-binding size.
//! Both start on tensor or chunk starts, so on 256-byte boundaries in f32 and f16 alike. The plan is pure
//! arithmetic on the layout, so it is tested without a device.

use std::ops::Range;

use crate::layout::Layout;
use crate::{Error, Result};

/// One window of the arena that a single dispatch binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Index of the buffer it lies in.
    pub buffer: usize,
    /// Arena elements it covers (a multiple of 4 long, padding included).
    pub range: Range<usize>,
    /// The layout's chunks it holds.
    pub chunks: Range<usize>,
}

/// One work-table entry as the shaders read it: elements `start..end` of the segment (not
/// the arena) belong to tensor `tensor`; mirrors `Chunk` in the WGSL files.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ChunkEntry {
    pub tensor: u32,
    pub start: u32,
    pub end: u32,
    pub pad: u32,
}

impl Segment {
    /// The segment's work table, with element indices relative to its start.
    pub fn table(&self, layout: &Layout) -> Vec<ChunkEntry> {
        let base = self.range.start;
        layout.chunks()[self.chunks.clone()]
            .iter()
            .map(|c| ChunkEntry {
                tensor: c.tensor as u32,
                start: (c.start - base) as u32,
                end: (c.end - base) as u32,
                pad: 0,
            })
            .collect()
    }

    /// Byte offset of the segment in its buffer, of elements of `bytes` bytes each.
    pub fn offset_in(&self, buffer: &Range<usize>, bytes: u64) -> u64 {
        (self.range.start - buffer.start) as u64 * bytes
    }
}

/// Buffers (each an arena element range) and the segments inside them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub buffers: Vec<Range<usize>>,
    pub segments: Vec<Segment>,
}

impl Plan {
    /// Places `layout` into buffers of at most `buffer_bytes` and bindings of at most
    /// `binding_bytes`; refuses a tensor that cannot fit in one buffer. With
    /// `binding_per_tensor`, every tensor also starts a binding of its own.
    pub fn new(
        layout: &Layout,
        buffer_bytes: u64,
        binding_bytes: u64,
        binding_per_tensor: bool,
    ) -> Result<Self> {
        // Whole quads of 256-byte blocks, so every range below stays aligned.
        let buffer_max = (buffer_bytes / 256 * 64) as usize;
        let binding_max = (binding_bytes.min(buffer_bytes) / 256 * 64) as usize;

        // Buffers: tensors in order, a new buffer when the next one does not fit.
        let mut buffers: Vec<Range<usize>> = Vec::new();
        let mut start = 0;
        for t in layout.tensors() {
            let padded = t.len().next_multiple_of(crate::TENSOR_ALIGN);
            if padded > buffer_max {
                return Err(Error::LimitExceeded {
                    what: "bytes of one tensor (a tensor lives in one buffer)",
                    requested: t.len() as u64 * 4,
                    limit: buffer_bytes,
                });
            }
            if t.offset() + padded - start > buffer_max {
                buffers.push(start..t.offset());
                start = t.offset();
            }
        }
        buffers.push(start..layout.arena_len());

        // Segments: chunks in order, a new one at a buffer change or a full binding.
        let mut segments: Vec<Segment> = Vec::new();
        let mut buffer = 0;
        for (i, c) in layout.chunks().iter().enumerate() {
            while c.start >= buffers[buffer].end {
                buffer += 1;
            }
            let end = c.end.next_multiple_of(4);
            let tensor_start = c.start == layout.tensors()[c.tensor].offset();
            let split = binding_per_tensor && tensor_start;
            match segments.last_mut() {
                Some(s) if !split && s.buffer == buffer && end - s.range.start <= binding_max => {
                    s.range.end = end;
                    s.chunks.end = i + 1;
                }
                _ => segments.push(Segment {
                    buffer,
                    range: c.start..end,
                    chunks: i..i + 1,
                }),
            }
        }
        Ok(Self { buffers, segments })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CHUNK_LEN;

    fn layout(lengths: &[usize]) -> Layout {
        lengths
            .iter()
            .enumerate()
            .fold(Layout::builder(), |b, (i, &n)| {
                b.tensor(format!("t{i}"), &[n])
            })
            .build()
            .unwrap()
    }

    #[test]
    fn a_small_set_is_one_buffer_and_one_segment() {
        let l = layout(&[3, 0, 100]);
        let plan = Plan::new(&l, 1 << 30, 1 << 27, false).unwrap();
        assert_eq!(plan.buffers, vec![0..l.arena_len()]);
        assert_eq!(
            plan.segments,
            [Segment {
                buffer: 0,
                range: 0..128 + 100,
                chunks: 0..2
            }]
        );
    }

    #[test]
    fn a_tensor_larger_than_a_binding_spans_segments_at_chunk_starts() {
        let n = 5 * CHUNK_LEN + 3;
        let l = layout(&[n]);
        let binding = 2 * CHUNK_LEN as u64 * 4;
        let plan = Plan::new(&l, 1 << 30, binding, false).unwrap();
        assert_eq!(plan.buffers.len(), 1);
        let ranges: Vec<_> = plan.segments.iter().map(|s| s.range.clone()).collect();
        let c = CHUNK_LEN;
        assert_eq!(ranges, [0..2 * c, 2 * c..4 * c, 4 * c..5 * c + 4]);
        for s in &plan.segments {
            assert_eq!(
                s.range.start % 128,
                0,
                "256-byte aligned f16 binding offset"
            );
            assert!((s.range.len() * 4) as u64 <= binding);
        }
    }

    #[test]
    fn buffers_split_between_tensors() {
        let l = layout(&[1000, 1000, 1000]);
        // 1024 padded elements each; two fit in 8 KiB, the third starts a buffer.
        let plan = Plan::new(&l, 8192, 8192, false).unwrap();
        assert_eq!(plan.buffers, [0..2048, 2048..3072]);
        let owners: Vec<usize> = plan.segments.iter().map(|s| s.buffer).collect();
        assert_eq!(owners, [0, 1]);
        assert_eq!(plan.segments[1].range, 2048..3048);
    }

    #[test]
    fn a_binding_per_tensor_when_asked() {
        let l = layout(&[3, 0, 5, 2 * CHUNK_LEN]);
        let plan = Plan::new(&l, 1 << 30, 1 << 27, true).unwrap();
        let chunks: Vec<_> = plan.segments.iter().map(|s| s.chunks.clone()).collect();
        assert_eq!(chunks, [0..1, 1..2, 2..4]);
    }

    #[test]
    fn a_tensor_larger_than_a_buffer_is_refused() {
        let l = layout(&[10, 4096]);
        assert!(matches!(
            Plan::new(&l, 8192, 8192, false),
            Err(Error::LimitExceeded { .. })
        ));
    }

    #[test]
    fn tables_are_relative_to_their_segment() {
        let l = layout(&[10, 2 * CHUNK_LEN]);
        let plan = Plan::new(&l, 1 << 30, CHUNK_LEN as u64 * 4, false).unwrap();
        let tables: Vec<Vec<(u32, u32, u32)>> = plan
            .segments
            .iter()
            .map(|s| {
                s.table(&l)
                    .iter()
                    .map(|c| (c.tensor, c.start, c.end))
                    .collect()
            })
            .collect();
        let c = CHUNK_LEN as u32;
        assert_eq!(tables, [vec![(0, 0, 10)], vec![(1, 0, c)], vec![(1, 0, c)]]);
        assert_eq!(
            plan.segments[2].offset_in(&plan.buffers[0], 4),
            (128 + CHUNK_LEN as u64) * 4
        );
    }

    /// `Chunk` is declared in both WGSL files that read the work table.
    #[test]
    fn chunk_entry_mirrors_the_shaders() {
        for source in [crate::shaders::GD, crate::shaders::NORM] {
            let module = naga::front::wgsl::parse_str(source).unwrap();
            let (_, ty) = module
                .types
                .iter()
                .find(|(_, t)| t.name.as_deref() == Some("Chunk"))
                .unwrap();
            let naga::TypeInner::Struct { members, span } = &ty.inner else {
                panic!("Chunk is not a struct");
            };
            let offsets: Vec<u32> = members.iter().map(|m| m.offset).collect();
            assert_eq!(offsets, [0, 4, 8, 12]);
            assert_eq!(*span as usize, std::mem::size_of::<ChunkEntry>());
            assert_eq!(std::mem::offset_of!(ChunkEntry, end), 8);
        }
    }

    #[test]
    fn every_chunk_is_in_exactly_one_segment_of_its_buffer() {
        let l = layout(&[1, 70_000, 0, 3, 9000, 65]);
        let plan = Plan::new(&l, 300_000, 40_000, false).unwrap();
        let mut next = 0;
        for s in &plan.segments {
            assert_eq!(s.chunks.start, next);
            next = s.chunks.end;
            let buffer = &plan.buffers[s.buffer];
            assert!(buffer.start <= s.range.start && s.range.end <= buffer.end);
            for c in &l.chunks()[s.chunks.clone()] {
                assert!(s.range.start <= c.start && c.end <= s.range.end);
            }
        }
        assert_eq!(next, l.chunks().len());
    }
}
