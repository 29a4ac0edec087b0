//! The MQTT v5 side: connects (TLS and credentials as the sensor's own settings), subscribes
//! to the tree and hands every message to [`Noc::on_message`].
//!
//! With a share group, `calls`, `rtp` and `kpi` are subscribed as
//! `$share/GROUP/voipsensor/v1/+/+/LEAF`: the broker gives each message to one member of
//! the group, so the counters of all instances sum to the fleet's. `status` (retained, and
//! the Last Will) and `health` (the sensor's own cumulative counters and warnings, small and
//! every 10 s) stay plain subscriptions: every instance has the whole sensor state.

use super::ingest::Noc;
use crate::publish::backoff::Backoff;
use crate::publish::broker::{BrokerUrl, redact};
use crate::publish::settings::Connect;
use crate::publish::topic::{Leaf, ROOT};
use anyhow::Result;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Broker connection settings (`[mqtt]` in noc.toml).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttSettings {
    pub url: String,
    pub username: Option<String>,
    /// File holding the password (first line).
    pub password_file: Option<std::path::PathBuf>,
    /// CA bundle (PEM) for mqtts://; default the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    pub client_id: String,
    /// MQTT v5 shared-subscription group for calls, rtp and kpi.
    pub share_group: Option<String>,
    pub keepalive_s: u16,
}

impl Default for MqttSettings {
    fn default() -> Self {
        MqttSettings {
            url: "mqtt://127.0.0.1:1883".into(),
            username: None,
            password_file: None,
            ca_file: None,
            client_id: format!("voipsensor-noc-{}", std::process::id()),
            share_group: None,
            keepalive_s: 30,
        }
    }
}

/// The subscription filters; `status` last, so that once its retained records arrive the
/// other subscriptions are in place (a broker handles one client's packets in order).
pub fn filters(group: Option<&str>) -> Vec<String> {
    [
        Leaf::Calls,
        Leaf::Rtp,
        Leaf::Kpi,
        Leaf::Health,
        Leaf::Status,
    ]
    .into_iter()
    .map(|leaf| {
        let f = format!("{ROOT}/+/+/{}", leaf.as_str());
        match group {
            Some(g) if matches!(leaf, Leaf::Calls | Leaf::Rtp | Leaf::Kpi) => {
                format!("$share/{g}/{f}")
            }
            _ => f,
        }
    })
    .collect()
}

fn options(s: &MqttSettings) -> Result<MqttOptions> {
    let url = BrokerUrl::parse(&s.url)?;
    let mut o = MqttOptions::new(s.client_id.clone(), url.host.clone(), url.port);
    o.set_keep_alive(Duration::from_secs(s.keepalive_s.max(5).into()));
    o.set_max_packet_size(Some(1 << 24));
    o.set_clean_start(true);
    if let Some(user) = &s.username {
        let password = match &s.password_file {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| {
                    anyhow::anyhow!("cannot read mqtt.password_file {}: {e}", p.display())
                })?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            None => String::new(),
        };
        o.set_credentials(user.clone(), password);
    }
    if url.tls {
        let c = Connect {
            url: s.url.clone(),
            username: None,
            password: None,
            ca_file: s.ca_file.clone(),
            client_cert: None,
            client_key: None,
            keepalive_s: s.keepalive_s,
            connect_timeout_s: 10,
        };
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(Arc::new(crate::publish::tls::tls_config(&c)?)),
        ));
    }
    Ok(o)
}

/// Runs until the process ends: reconnects with backoff, resubscribes on every connect.
pub async fn run(s: MqttSettings, noc: Arc<Mutex<Noc>>) -> Result<()> {
    let shown = redact(&s.url);
    let (client, mut ev) = AsyncClient::new(options(&s)?, 64);
    let filters = filters(s.share_group.as_deref());
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut last_error: Option<String> = None;
    loop {
        match ev.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                log::info!(
                    "noc: connected to {shown}, subscribing {}",
                    filters.join(" ")
                );
                last_error = None;
                for f in &filters {
                    client.subscribe(f.clone(), QoS::AtLeastOnce).await?;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let now = wall_s();
                let topic = String::from_utf8_lossy(&p.topic);
                if let Ok(mut n) = noc.lock() {
                    n.on_message(&topic, &p.payload, now);
                }
            }
            Ok(_) => {}
            Err(e) => {
                let msg = format!("broker {shown}: {e}");
                if last_error.as_deref() != Some(msg.as_str()) {
                    log::warn!("noc: {msg}; retrying");
                }
                last_error = Some(msg);
                tokio::time::sleep(backoff.next_wait()).await;
            }
        }
    }
}

pub fn wall_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_group_shares_everything_but_the_retained_status() {
        let f = filters(Some("noc"));
        assert!(f.contains(&"voipsensor/v1/+/+/status".to_string()));
        assert!(f.contains(&"$share/noc/voipsensor/v1/+/+/calls".to_string()));
        assert!(f.contains(&"$share/noc/voipsensor/v1/+/+/rtp".to_string()));
        assert!(f.contains(&"$share/noc/voipsensor/v1/+/+/kpi".to_string()));
        assert_eq!(
            filters(None).iter().filter(|f| f.starts_with('$')).count(),
            0
        );
    }
}
