//! The broker: its URL, the rumqttc options to reach it, and connection failures in an
//! operator's words.

use crate::publish::settings::Connect;
use rumqttc::{ConnectReturnCode, ConnectionError, MqttOptions};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A parsed `mqtt.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

/// `mqtt://user:password@host` with the password replaced by `***` (for every message).
pub fn redact(url: &str) -> String {
    match split_credentials(url) {
        (_, Some((_, Some(_)))) => {
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let (userinfo, host) = rest.rsplit_once('@').unwrap_or(("", rest));
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// Splits `scheme://user[:password]@rest` into the URL without credentials and the
/// credentials (the config moves them to `mqtt.username`/`mqtt.password`).
pub fn split_credentials(url: &str) -> (String, Option<(String, Option<String>)>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let creds = match userinfo.split_once(':') {
        Some((u, p)) => (u.to_string(), Some(p.to_string())),
        None => (userinfo.to_string(), None),
    };
    (format!("{scheme}://{host}"), Some(creds))
}

impl BrokerUrl {
    /// Parses the URL; credentials in it (`user:password@`) are skipped here (see
    /// [`split_credentials`]) and never appear in an error.
    pub fn parse(url: &str) -> Result<BrokerUrl, UrlError> {
        let bad = |why: &str| UrlError {
            url: redact(url),
            why: why.to_string(),
        };
        let (stripped, _) = split_credentials(url);
        let url = stripped.as_str();
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else {
            return Err(bad("not an MQTT URL"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') {
            return Err(bad("no path or query allowed: expected mqtt://host[:port]"));
        }
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            // [v6]:port
            let (h, after) = r
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in IPv6 host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad("expected ':port' after ']'")),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (rest.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("port must be 1 to 65535"))?,
        };
        Ok(BrokerUrl { tls, host, port })
    }
}

/// Why a broker URL is refused (worded as the configuration's other errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError {
    pub url: String,
    pub why: String,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mqtt.url = {:?}: {}", self.url, self.why)
    }
}

impl std::error::Error for UrlError {}

/// The broker refused the sensor for a reason retrying cannot fix (credentials, ACL,
/// client id, protocol, TLS certificate): the message says which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// rumqttc options for `c` (used by the publisher and `watch`).
pub fn mqtt_options(
    c: &Connect,
    client_id: &str,
    max_packet: usize,
) -> anyhow::Result<(MqttOptions, BrokerUrl)> {
    let url = BrokerUrl::parse(&c.url)?;
    let mut o = MqttOptions::new(client_id, url.host.clone(), url.port);
    o.set_keep_alive(Duration::from_secs(c.keepalive_s.into()));
    o.set_max_packet_size(max_packet, max_packet);
    if let Some(user) = &c.username {
        o.set_credentials(user.clone(), c.password.clone().unwrap_or_default());
    }
    if url.tls {
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(Arc::new(crate::publish::tls::tls_config(c)?)),
        ));
    }
    Ok((o, url))
}

/// A connection failure in words an operator can act on, and whether retrying can help.
pub fn explain(e: &ConnectionError, url: &str) -> (String, bool) {
    match e {
        ConnectionError::ConnectionRefused(code) => {
            let (why, fatal) = match code {
                ConnectReturnCode::BadUserNamePassword => (
                    "bad username or password (check mqtt.username, mqtt.password)",
                    true,
                ),
                ConnectReturnCode::NotAuthorized => (
                    "not authorized (check credentials and the broker's ACL)",
                    true,
                ),
                ConnectReturnCode::BadClientId => ("client id rejected (check sensor.id)", true),
                ConnectReturnCode::RefusedProtocolVersion => {
                    ("MQTT 3.1.1 not supported by the broker", true)
                }
                _ => ("server unavailable", false),
            };
            (format!("broker {url} refused the connection: {why}"), fatal)
        }
        ConnectionError::Tls(t) => {
            let detail = tls_detail(t);
            let fatal = detail.contains("certificate") || detail.contains("Certificate");
            (
                format!(
                    "TLS with broker {url} failed: {detail}{}",
                    if fatal {
                        " (check mqtt.ca_file and the broker's certificate)"
                    } else {
                        ""
                    }
                ),
                fatal,
            )
        }
        ConnectionError::Io(io) => (format!("cannot reach broker {url}: {io}"), false),
        ConnectionError::NetworkTimeout => (
            format!("cannot reach broker {url}: connection timed out"),
            false,
        ),
        // Something answered, but not in MQTT (an HTTP server, a wrong port). Still retried:
        // the broker may be restarting behind a proxy.
        ConnectionError::NotConnAck(_)
        | ConnectionError::MqttState(rumqttc::StateError::Deserialization(_)) => (
            format!(
                "{url} answered, but not in MQTT (no valid CONNACK): is this the broker's MQTT port?"
            ),
            false,
        ),
        other => (format!("connection to broker {url} lost: {other}"), false),
    }
}

fn tls_detail(t: &rumqttc::TlsError) -> String {
    if let rumqttc::TlsError::Io(io) = t
        && let Some(inner) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
    {
        return match inner {
            rustls::Error::InvalidCertificate(c) => {
                format!("the broker's certificate was rejected: {c}")
            }
            other => other.to_string(),
        };
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(
            BrokerUrl::parse("mqtts://broker.example:8884").unwrap(),
            BrokerUrl {
                tls: true,
                host: "broker.example".into(),
                port: 8884
            }
        );
        assert_eq!(BrokerUrl::parse("mqtt://127.0.0.1").unwrap().port, 1883);
        assert_eq!(BrokerUrl::parse("mqtt://[::1]:1999").unwrap().host, "::1");
        for bad in ["http://x", "mqtt://x:0", "mqtt://x/topic", "mqtt://"] {
            assert!(
                BrokerUrl::parse(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("mqtt.url"),
                "{bad}"
            );
        }
    }

    #[test]
    fn credentials_in_the_url_are_accepted_and_the_password_never_shown() {
        assert_eq!(
            BrokerUrl::parse("mqtt://u:hunter2@x:1999").unwrap().port,
            1999
        );
        assert_eq!(redact("mqtt://u:hunter2@x"), "mqtt://u:***@x");
        assert_eq!(redact("mqtt://u@x"), "mqtt://u@x");
        let e = BrokerUrl::parse("mqtt://u:hunter2@x:0")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "mqtt.url = \"mqtt://u:***@x:0\": port must be 1 to 65535"
        );
        assert_eq!(
            split_credentials("mqtts://u:p@h"),
            (
                "mqtts://h".to_string(),
                Some(("u".to_string(), Some("p".to_string())))
            )
        );
    }
}
