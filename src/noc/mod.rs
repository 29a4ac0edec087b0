//! `voipsensor noc`: the NOC side (never run on a sensor). Subscribes to the topic tree,
//! keeps bounded per-sensor state and serves `/metrics` (Prometheus), a fleet page and site
//! pages. At the edge: nothing below imports it.
//!
//! - `decode.rs`: payload (postcard or JSON) → the sensor's `Message`
//! - `ingest.rs`: message → state and metrics (sans-IO; the benchmark drives it directly)
//! - `state.rs`: bounded per-sensor state for the pages
//! - `metrics.rs`: the Prometheus families
//! - `subscribe.rs`: MQTT v5 client, shared subscriptions
//! - `http.rs`: HTTP(S) server, basic auth, routes
//! - `fleet.rs`, `site.rs`, `chart.rs`: the pages

pub mod chart;
pub mod decode;
pub mod fleet;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod settings;
pub mod site;
pub mod state;
pub mod subscribe;
pub mod url;

pub use ingest::Noc;
pub use settings::NocSettings;

use std::sync::{Arc, Mutex};

/// Runs the subscriber and the HTTP server on one thread until one fails.
pub fn run(s: NocSettings) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let noc = Arc::new(Mutex::new(Noc::new(s.limits)));
    rt.block_on(async move {
        tokio::select! {
            r = http::serve(s.http, noc.clone()) => r,
            r = subscribe::run(s.mqtt, noc) => r,
        }
    })
}
