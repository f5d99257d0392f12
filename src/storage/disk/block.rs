//! Immutable block files: the compressed, columnar points of one metric
//! over the time range of one or more head flushes.
//!
//! The engine writes blocks when it flushes the head, when compaction
//! merges small blocks and when a deletion rewrites partly expired ones;
//! the catalog (`super::catalog`) lists the blocks that are live. Blocks
//! are never modified in place.
//!
//! # Layout
//!
//! ```text
//! magic "TMBLK\0\0\x01"
//! chunk*                  see `super::codec`; a series' points are cut
//!                         into chunks of at most CHUNK_MAX_POINTS
//! index                   version, metric, value kind, WAL sequence range,
//!                         then per series: id, tags, chunk count, and per
//!                         chunk: min/max time, count, sum, min, max,
//!                         offset, length and CRC32C
//! footer (24 bytes)       index offset u64, index length u32,
//!                         index CRC32C u32, magic
//! ```
//!
//! All integers in the footer are little-endian; the index uses varints.
//! The index lets a scan skip a block or chunk by time range and lets
//! aggregations use count, sum, min and max without decoding a chunk.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::codec::varint::{ByteReader, put_bytes, put_i64, put_u64};
use super::codec::{self, CodecError};
use super::record::{value_kind_code, value_kind_from_code};
use super::wal::WalSeq;
use crate::model::{Column, ColumnSlice, SeriesId, TagSet, TimestampNs, ValueKind};

const BLOCK_MAGIC: [u8; 8] = *b"TMBLK\x00\x00\x01";
/// Maximum number of points in one chunk. Smaller chunks let a scan of a
/// short range decode less and give aggregations summaries of shorter
/// spans. Larger ones spread the fixed cost per chunk, about 70 bytes of
/// chunk header and index entry on a regular gauge, over more points.
pub const CHUNK_MAX_POINTS: usize = 4096;
const FOOTER_BYTES: usize = 24;
const INDEX_VERSION: u8 = 1;

/// Identifier of a block file, unique within a data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub u64);

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

pub fn block_path(dir: &Path, id: BlockId) -> PathBuf {
    dir.join(format!("{:020}.blk", id.0))
}

/// Errors of reading or writing block files.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("block i/o failed on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("block {path} is corrupt at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> BlockError + '_ {
    move |source| BlockError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Count, sum, minimum and maximum of a run of points, taken over their
/// numeric view (bools are 1 or 0). For strings only `count` is
/// meaningful and the others are NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkStats {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl ChunkStats {
    pub fn of(values: ColumnSlice<'_>) -> ChunkStats {
        let mut stats = ChunkStats {
            count: values.len() as u64,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        };
        let mut add = |value: f64| {
            stats.sum += value;
            stats.min = stats.min.min(value);
            stats.max = stats.max.max(value);
        };
        match values {
            ColumnSlice::F64(v) => v.iter().for_each(|&x| add(x)),
            ColumnSlice::I64(v) => v.iter().for_each(|&x| add(x as f64)),
            ColumnSlice::Bool(v) => v.iter().for_each(|&x| add(if x { 1.0 } else { 0.0 })),
            ColumnSlice::Str(_) => {
                stats.sum = f64::NAN;
                stats.min = f64::NAN;
                stats.max = f64::NAN;
            }
        }
        stats
    }
}

/// Index entry of one series' chunk.
#[derive(Debug, Clone)]
pub struct ChunkEntry {
    pub series: SeriesId,
    pub tags: Arc<TagSet>,
    pub min_time_ns: TimestampNs,
    pub max_time_ns: TimestampNs,
    pub stats: ChunkStats,
    offset: u64,
    len: u32,
    crc: u32,
}

impl ChunkEntry {
    /// Byte offset of the chunk in its block file.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// Metadata of a block besides its chunks.
#[derive(Debug, Clone)]
pub struct BlockHeader {
    pub metric: String,
    pub kind: ValueKind,
    /// Oldest and newest WAL sequence numbers of the flushes merged into
    /// this block; newer blocks win over older ones for equal timestamps.
    pub min_seq: WalSeq,
    pub max_seq: WalSeq,
}

/// An open, immutable block file and its index.
#[derive(Debug)]
pub struct Block {
    pub id: BlockId,
    pub header: BlockHeader,
    pub path: PathBuf,
    pub file_bytes: u64,
    pub min_time_ns: TimestampNs,
    pub max_time_ns: TimestampNs,
    pub point_count: u64,
    /// Sorted by series id, then time; chunks of one series do not
    /// overlap.
    entries: Vec<ChunkEntry>,
    file: File,
}

impl Block {
    /// Opens a block file and reads its index.
    pub fn open(path: &Path, id: BlockId) -> Result<Block, BlockError> {
        let file = File::open(path).map_err(io_error(path))?;
        let file_bytes = file.metadata().map_err(io_error(path))?.len();
        let corrupt = |offset: u64, reason: String| BlockError::Corrupt {
            path: path.to_owned(),
            offset,
            reason,
        };
        if file_bytes < (BLOCK_MAGIC.len() + FOOTER_BYTES) as u64 {
            return Err(corrupt(
                0,
                format!("file is {file_bytes} bytes, too short for a block"),
            ));
        }
        let mut magic = [0u8; 8];
        file.read_exact_at(&mut magic, 0).map_err(io_error(path))?;
        if magic != BLOCK_MAGIC {
            return Err(corrupt(0, "wrong magic bytes at the start".to_owned()));
        }
        let footer_offset = file_bytes - FOOTER_BYTES as u64;
        let mut footer = [0u8; FOOTER_BYTES];
        file.read_exact_at(&mut footer, footer_offset)
            .map_err(io_error(path))?;
        if footer[16..] != BLOCK_MAGIC {
            return Err(corrupt(
                footer_offset,
                "wrong magic bytes in the footer".to_owned(),
            ));
        }
        let index_offset = u64::from_le_bytes(footer[0..8].try_into().expect("8 bytes"));
        let index_len = u32::from_le_bytes(footer[8..12].try_into().expect("4 bytes"));
        let index_crc = u32::from_le_bytes(footer[12..16].try_into().expect("4 bytes"));
        if index_offset < BLOCK_MAGIC.len() as u64
            || index_offset + u64::from(index_len) != footer_offset
        {
            return Err(corrupt(
                footer_offset,
                format!(
                    "index at {index_offset} with length {index_len} does not end at the footer"
                ),
            ));
        }
        let mut index = vec![0u8; index_len as usize];
        file.read_exact_at(&mut index, index_offset)
            .map_err(io_error(path))?;
        if crc32c::crc32c(&index) != index_crc {
            return Err(corrupt(index_offset, "index crc mismatch".to_owned()));
        }
        let (header, entries) = decode_index(&index, index_offset)
            .map_err(|err| corrupt(index_offset, err.to_string()))?;
        for entry in &entries {
            if entry.offset + u64::from(entry.len) > index_offset {
                return Err(corrupt(
                    index_offset,
                    format!(
                        "chunk of series {} at {} overlaps the index",
                        entry.series, entry.offset
                    ),
                ));
            }
        }
        Ok(Block::from_parts(
            id,
            header,
            path.to_owned(),
            file,
            file_bytes,
            entries,
        ))
    }

    fn from_parts(
        id: BlockId,
        header: BlockHeader,
        path: PathBuf,
        file: File,
        file_bytes: u64,
        mut entries: Vec<ChunkEntry>,
    ) -> Block {
        entries.sort_by_key(|e| (e.series, e.min_time_ns));
        Block {
            id,
            header,
            path,
            file_bytes,
            min_time_ns: entries.iter().map(|e| e.min_time_ns).min().unwrap_or(0),
            max_time_ns: entries.iter().map(|e| e.max_time_ns).max().unwrap_or(0),
            point_count: entries.iter().map(|e| e.stats.count).sum(),
            entries,
            file,
        }
    }

    pub fn entries(&self) -> &[ChunkEntry] {
        &self.entries
    }

    /// Returns the chunks of one series in time order.
    pub fn entries_for(&self, series: SeriesId) -> &[ChunkEntry] {
        let from = self.entries.partition_point(|e| e.series < series);
        let to = self.entries.partition_point(|e| e.series <= series);
        &self.entries[from..to]
    }

    /// Reads a chunk's bytes and checks its CRC.
    pub fn read_chunk_bytes(&self, entry: &ChunkEntry) -> Result<Vec<u8>, BlockError> {
        let mut bytes = vec![0u8; entry.len as usize];
        self.file
            .read_exact_at(&mut bytes, entry.offset)
            .map_err(io_error(&self.path))?;
        if crc32c::crc32c(&bytes) != entry.crc {
            return Err(BlockError::Corrupt {
                path: self.path.clone(),
                offset: entry.offset,
                reason: format!("chunk crc mismatch for series {}", entry.series),
            });
        }
        Ok(bytes)
    }

    /// Reads and decodes a chunk.
    pub fn read_chunk(&self, entry: &ChunkEntry) -> Result<(Vec<TimestampNs>, Column), BlockError> {
        let bytes = self.read_chunk_bytes(entry)?;
        self.decode_chunk(entry, &bytes)
    }

    /// Decodes a chunk's bytes as returned by [`Block::read_chunk_bytes`].
    pub fn decode_chunk(
        &self,
        entry: &ChunkEntry,
        bytes: &[u8],
    ) -> Result<(Vec<TimestampNs>, Column), BlockError> {
        codec::decode_chunk(bytes, entry.stats.count as usize, self.header.kind).map_err(|err| {
            BlockError::Corrupt {
                path: self.path.clone(),
                offset: entry.offset,
                reason: format!("chunk of series {}: {err}", entry.series),
            }
        })
    }

    /// Estimates the heap bytes the in-memory index holds.
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<ChunkEntry>() + self.header.metric.len() + 256
    }
}

/// Collects chunks in memory and writes them as one block file.
pub struct BlockWriter {
    header: BlockHeader,
    data: Vec<u8>,
    entries: Vec<ChunkEntry>,
}

impl BlockWriter {
    pub fn new(header: BlockHeader) -> BlockWriter {
        BlockWriter {
            header,
            data: BLOCK_MAGIC.to_vec(),
            entries: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Encodes the sorted, duplicate-free points of one series as chunks
    /// of at most [`CHUNK_MAX_POINTS`]. Empty input adds nothing.
    pub fn add_series(
        &mut self,
        series: SeriesId,
        tags: Arc<TagSet>,
        times_ns: &[TimestampNs],
        values: ColumnSlice<'_>,
    ) {
        debug_assert!(times_ns.windows(2).all(|w| w[0] < w[1]));
        for from in (0..times_ns.len()).step_by(CHUNK_MAX_POINTS) {
            let to = (from + CHUNK_MAX_POINTS).min(times_ns.len());
            self.add_chunk(
                series,
                tags.clone(),
                &times_ns[from..to],
                values.slice(from, to),
            );
        }
    }

    fn add_chunk(
        &mut self,
        series: SeriesId,
        tags: Arc<TagSet>,
        times_ns: &[TimestampNs],
        values: ColumnSlice<'_>,
    ) {
        let (Some(&min_time_ns), Some(&max_time_ns)) = (times_ns.first(), times_ns.last()) else {
            return;
        };
        let offset = self.data.len();
        codec::encode_chunk(times_ns, values, &mut self.data);
        let chunk = &self.data[offset..];
        self.entries.push(ChunkEntry {
            series,
            tags,
            min_time_ns,
            max_time_ns,
            stats: ChunkStats::of(values),
            offset: offset as u64,
            len: chunk.len() as u32,
            crc: crc32c::crc32c(chunk),
        });
    }

    /// Copies an already encoded chunk unchanged, as read by
    /// [`Block::read_chunk_bytes`].
    pub fn add_encoded(&mut self, entry: &ChunkEntry, bytes: &[u8]) {
        let offset = self.data.len() as u64;
        self.data.extend_from_slice(bytes);
        self.entries.push(ChunkEntry {
            offset,
            ..entry.clone()
        });
    }

    /// Writes the block to a temporary file, fsyncs it and renames it to
    /// its final name. The caller fsyncs the directory.
    pub fn write(self, dir: &Path, id: BlockId) -> Result<Block, BlockError> {
        let BlockWriter {
            header,
            mut data,
            mut entries,
        } = self;
        entries.sort_by_key(|e| (e.series, e.min_time_ns));
        let index_offset = data.len() as u64;
        encode_index(&header, &entries, &mut data);
        let index_len = data.len() as u64 - index_offset;
        let index_crc = crc32c::crc32c(&data[index_offset as usize..]);
        data.extend_from_slice(&index_offset.to_le_bytes());
        data.extend_from_slice(&(index_len as u32).to_le_bytes());
        data.extend_from_slice(&index_crc.to_le_bytes());
        data.extend_from_slice(&BLOCK_MAGIC);

        let path = block_path(dir, id);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
        file.write_all(&data).map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io_error(&path))?;
        let file = File::open(&path).map_err(io_error(&path))?;
        Ok(Block::from_parts(
            id,
            header,
            path,
            file,
            data.len() as u64,
            entries,
        ))
    }
}

fn encode_index(header: &BlockHeader, entries: &[ChunkEntry], out: &mut Vec<u8>) {
    out.push(INDEX_VERSION);
    put_bytes(out, header.metric.as_bytes());
    out.push(value_kind_code(header.kind));
    put_u64(out, header.min_seq.0);
    put_u64(out, header.max_seq.0);
    let groups: Vec<&[ChunkEntry]> = entries.chunk_by(|a, b| a.series == b.series).collect();
    put_u64(out, groups.len() as u64);
    for chunks in groups {
        let first = &chunks[0];
        put_u64(out, first.series.0);
        put_u64(out, first.tags.len() as u64);
        for (key, value) in first.tags.iter() {
            put_bytes(out, key.as_bytes());
            put_bytes(out, value.as_bytes());
        }
        put_u64(out, chunks.len() as u64);
        for entry in chunks {
            put_i64(out, entry.min_time_ns);
            put_i64(out, entry.max_time_ns);
            put_u64(out, entry.stats.count);
            out.extend_from_slice(&entry.stats.sum.to_le_bytes());
            out.extend_from_slice(&entry.stats.min.to_le_bytes());
            out.extend_from_slice(&entry.stats.max.to_le_bytes());
            put_u64(out, entry.offset);
            put_u64(out, u64::from(entry.len));
            out.extend_from_slice(&entry.crc.to_le_bytes());
        }
    }
}

fn decode_index(
    data: &[u8],
    index_offset: u64,
) -> Result<(BlockHeader, Vec<ChunkEntry>), CodecError> {
    let mut reader = ByteReader::new(data);
    let version = reader.u8("index version")?;
    if version != INDEX_VERSION {
        return Err(CodecError::Invalid {
            what: "block index",
            detail: format!("version {version} is not the supported version {INDEX_VERSION}"),
        });
    }
    let header = BlockHeader {
        metric: reader.str("metric name")?.to_owned(),
        kind: value_kind_from_code(reader.u8("value kind")?)?,
        min_seq: WalSeq(reader.varint("min seq")?),
        max_seq: WalSeq(reader.varint("max seq")?),
    };
    let series_count = reader.varint("series count")?;
    let mut entries = Vec::with_capacity(series_count.min(1 << 20) as usize);
    for _ in 0..series_count {
        let series = SeriesId(reader.varint("series id")?);
        let tag_count = reader.varint("tag count")?;
        let mut pairs = Vec::with_capacity(tag_count.min(256) as usize);
        for _ in 0..tag_count {
            let key = reader.str("tag key")?.to_owned();
            let value = reader.str("tag value")?.to_owned();
            pairs.push((key, value));
        }
        let tags = Arc::new(TagSet::from_pairs(pairs));
        let chunk_count = reader.varint("chunk count")?;
        for _ in 0..chunk_count {
            let min_time_ns = reader.varint_i64("min time")?;
            let max_time_ns = reader.varint_i64("max time")?;
            let stats = ChunkStats {
                count: reader.varint("point count")?,
                sum: reader.f64_le("sum")?,
                min: reader.f64_le("min")?,
                max: reader.f64_le("max")?,
            };
            let offset = reader.varint("chunk offset")?;
            let len = reader.varint("chunk length")?;
            let crc = reader.u32_le("chunk crc")?;
            if len > u64::from(u32::MAX) || offset.saturating_add(len) > index_offset {
                return Err(CodecError::Invalid {
                    what: "chunk entry",
                    detail: format!("chunk at {offset} with length {len} runs past the chunk area"),
                });
            }
            entries.push(ChunkEntry {
                series,
                tags: tags.clone(),
                min_time_ns,
                max_time_ns,
                stats,
                offset,
                len: len as u32,
                crc,
            });
        }
    }
    if !reader.is_empty() {
        return Err(CodecError::Invalid {
            what: "block index",
            detail: format!("{} bytes follow the last entry", reader.remaining()),
        });
    }
    Ok((header, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BlockHeader {
        BlockHeader {
            metric: "cpu".into(),
            kind: ValueKind::F64,
            min_seq: WalSeq(3),
            max_seq: WalSeq(9),
        }
    }

    #[test]
    fn block_round_trips_through_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = BlockWriter::new(header());
        let tags = Arc::new(TagSet::from_pairs(vec![("host".into(), "a".into())]));
        writer.add_series(
            SeriesId(7),
            tags.clone(),
            &[10, 20, 30],
            ColumnSlice::F64(&[1.0, -2.0, 4.0]),
        );
        writer.add_series(
            SeriesId(2),
            Arc::new(TagSet::default()),
            &[5],
            ColumnSlice::F64(&[0.5]),
        );
        let written = writer.write(dir.path(), BlockId(1)).unwrap();

        let block = Block::open(&written.path, BlockId(1)).unwrap();
        assert_eq!(block.header.metric, "cpu");
        assert_eq!(block.header.max_seq, WalSeq(9));
        assert_eq!(block.point_count, 4);
        assert_eq!((block.min_time_ns, block.max_time_ns), (5, 30));
        let [entry] = block.entries_for(SeriesId(7)) else {
            panic!("series 7 has more than one chunk");
        };
        assert_eq!(entry.tags, tags);
        assert_eq!(
            entry.stats,
            ChunkStats {
                count: 3,
                sum: 3.0,
                min: -2.0,
                max: 4.0
            }
        );
        let (times, values) = block.read_chunk(entry).unwrap();
        assert_eq!(times, vec![10, 20, 30]);
        assert_eq!(values, Column::F64(vec![1.0, -2.0, 4.0]));
        assert!(block.entries_for(SeriesId(3)).is_empty());
    }

    #[test]
    fn long_series_is_cut_into_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = BlockWriter::new(header());
        let count = CHUNK_MAX_POINTS * 2 + 5;
        let times: Vec<i64> = (0..count as i64).collect();
        let values: Vec<f64> = times.iter().map(|&t| t as f64).collect();
        writer.add_series(
            SeriesId(1),
            Arc::new(TagSet::default()),
            &times,
            ColumnSlice::F64(&values),
        );
        writer.add_series(
            SeriesId(2),
            Arc::new(TagSet::default()),
            &[3],
            ColumnSlice::F64(&[3.0]),
        );
        let path = writer.write(dir.path(), BlockId(6)).unwrap().path;

        let block = Block::open(&path, BlockId(6)).unwrap();
        let chunks = block.entries_for(SeriesId(1));
        let counts: Vec<u64> = chunks.iter().map(|e| e.stats.count).collect();
        assert_eq!(
            counts,
            vec![CHUNK_MAX_POINTS as u64, CHUNK_MAX_POINTS as u64, 5]
        );
        assert_eq!(chunks[1].min_time_ns, CHUNK_MAX_POINTS as i64);
        let mut read = Vec::new();
        for chunk in chunks {
            read.extend(block.read_chunk(chunk).unwrap().0);
        }
        assert_eq!(read, times);
        assert_eq!(block.entries_for(SeriesId(2)).len(), 1);
    }

    #[test]
    fn flipped_chunk_byte_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = BlockWriter::new(header());
        writer.add_series(
            SeriesId(1),
            Arc::new(TagSet::default()),
            &[1, 2],
            ColumnSlice::F64(&[1.0, 2.0]),
        );
        let path = writer.write(dir.path(), BlockId(4)).unwrap().path;
        let mut bytes = fs::read(&path).unwrap();
        bytes[BLOCK_MAGIC.len() + 2] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        let block = Block::open(&path, BlockId(4)).unwrap();
        let entry = block.entries_for(SeriesId(1))[0].clone();
        assert!(matches!(
            block.read_chunk(&entry),
            Err(BlockError::Corrupt { .. })
        ));
    }

    #[test]
    fn truncated_block_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = BlockWriter::new(header());
        writer.add_series(
            SeriesId(1),
            Arc::new(TagSet::default()),
            &[1],
            ColumnSlice::F64(&[1.0]),
        );
        let path = writer.write(dir.path(), BlockId(5)).unwrap().path;
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(Block::open(&path, BlockId(5)).is_err());
    }
}
