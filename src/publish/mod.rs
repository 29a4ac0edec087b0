//! The output edge: JSON lines, postcard payloads, and MQTT as a sans-IO pipeline
//! (`pipeline`: events to messages; `session`: delivery by packet id) under a thin
//! driver (`mqtt`).

pub mod backoff;
pub mod broker;
pub mod json;
pub mod kpi;
pub mod mqtt;
pub mod outbox;
pub mod pace;
pub mod payload;
pub mod pipeline;
pub mod privacy;
pub mod rtp_batch;
pub mod session;
pub mod settings;
pub mod spool;
pub mod tls;
pub mod topic;

pub use mqtt::{PublishStats, Publisher};
pub use settings::PublishSettings;
