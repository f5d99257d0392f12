//! The catalog file: the committed state of a data directory that is not
//! in the WAL. It lists the live blocks and records, as of the last head
//! flush, the metrics, the retention policies, the next ids and the WAL
//! sequence number up to which every write is in blocks.
//!
//! It is rewritten as a whole through `fsutil::write_atomic`, so a crash
//! leaves either the old or the new version. The metric and policy
//! fields change only at a flush; block-list changes from compaction and
//! deletions keep them as they were, because replaying the WAL from
//! `flushed_seq` reproduces every later change. The series index lives in
//! the block indexes, see `super::block`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fsutil::write_atomic;
use crate::model::DataType;

const FORMAT_VERSION: u32 = 1;

/// Errors of reading or writing the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog i/o failed on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("catalog {path} is invalid: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CatalogPolicy {
    pub name: String,
    pub max_age_ns: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CatalogMetric {
    pub name: String,
    /// The `DataType` name, such as `FLOAT`.
    pub data_type: String,
    pub description: String,
    pub unit: String,
    pub retention_policy: String,
    pub created_ns: i64,
    pub last_updated_ns: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CatalogBlock {
    pub id: u64,
    pub metric: String,
}

/// Contents of `catalog.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Catalog {
    pub format_version: u32,
    /// Every write record up to this WAL sequence number is in blocks.
    pub flushed_seq: u64,
    pub next_series_id: u64,
    pub next_block_id: u64,
    pub policies: Vec<CatalogPolicy>,
    pub metrics: Vec<CatalogMetric>,
    pub blocks: Vec<CatalogBlock>,
}

impl Catalog {
    /// The catalog of an empty data directory.
    pub fn empty(policies: Vec<CatalogPolicy>) -> Catalog {
        Catalog {
            format_version: FORMAT_VERSION,
            flushed_seq: 0,
            next_series_id: 1,
            next_block_id: 1,
            policies,
            metrics: Vec::new(),
            blocks: Vec::new(),
        }
    }

    /// Reads the catalog, or returns `None` when the file does not exist.
    pub fn load(path: &Path) -> Result<Option<Catalog>, CatalogError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CatalogError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let catalog: Catalog =
            serde_json::from_slice(&bytes).map_err(|err| CatalogError::Invalid {
                path: path.to_owned(),
                reason: err.to_string(),
            })?;
        if catalog.format_version != FORMAT_VERSION {
            return Err(CatalogError::Invalid {
                path: path.to_owned(),
                reason: format!(
                    "format version {} is not the supported version {FORMAT_VERSION}",
                    catalog.format_version
                ),
            });
        }
        Ok(Some(catalog))
    }

    /// Replaces the catalog file atomically.
    pub fn store(&self, path: &Path) -> Result<(), CatalogError> {
        let bytes = serde_json::to_vec(self).expect("the catalog serializes to JSON");
        write_atomic(path, &bytes).map_err(|source| CatalogError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

/// Parses a `DataType` name as written by `DataType::name`.
pub fn parse_data_type(name: &str) -> Option<DataType> {
    [
        DataType::Integer,
        DataType::Float,
        DataType::Boolean,
        DataType::String,
        DataType::Duration,
        DataType::Percentage,
        DataType::Rate,
    ]
    .into_iter()
    .find(|t| t.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.json");
        assert!(Catalog::load(&path).unwrap().is_none());
        let mut catalog = Catalog::empty(vec![CatalogPolicy {
            name: "p".into(),
            max_age_ns: 5,
        }]);
        catalog.blocks.push(CatalogBlock {
            id: 3,
            metric: "m".into(),
        });
        catalog.store(&path).unwrap();
        assert_eq!(Catalog::load(&path).unwrap().unwrap(), catalog);
    }

    #[test]
    fn data_type_names_parse() {
        assert_eq!(parse_data_type("RATE"), Some(DataType::Rate));
        assert_eq!(parse_data_type("rate"), None);
    }
}
