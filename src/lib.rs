//! tidemark: a metrics server for workflow runners and their dashboards.
pub mod aggregate;
pub mod clock;
pub mod model;
pub mod proto;
pub mod storage;
