//! `[network]` in sensor.toml: how the appliance image brings up its uplink (DHCP or a
//! static address, DNS, NTP) and its status LED. Only the image's `/init` acts on it (through
//! `voipsensor boot-config`); `run` and `replay` ignore it.

use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// The uplink interface (MQTT, NTP, SSH). The image names its ports by the board's NIC
    /// roles, so the default is right when the cables follow the README.
    pub uplink: String,
    /// `"dhcp"` or a static IPv4 address with prefix length, `"192.0.2.10/24"`.
    pub address: String,
    /// Default gateway for a static address (ignored with DHCP).
    pub gateway: Option<Ipv4Addr>,
    /// DNS servers; with DHCP they replace the ones the DHCP server offers.
    pub dns: Vec<IpAddr>,
    /// NTP servers (names or addresses); empty disables NTP (the clock stays unsynchronised).
    pub ntp: Vec<String>,
    /// Drive the board's status LED (when it has one).
    pub led: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            uplink: "uplink0".into(),
            address: "dhcp".into(),
            gateway: None,
            dns: Vec::new(),
            ntp: vec!["pool.ntp.org".into()],
            led: true,
        }
    }
}

/// A bad `[network]` key: which one, the value, and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkError {
    pub key: &'static str,
    pub value: String,
    pub allowed: String,
}

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {} is not allowed: {}",
            self.key, self.value, self.allowed
        )
    }
}

fn err(key: &'static str, value: impl fmt::Debug, allowed: impl Into<String>) -> NetworkError {
    NetworkError {
        key,
        value: format!("{value:?}"),
        allowed: allowed.into(),
    }
}

/// The uplink's addressing, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    Dhcp,
    Static {
        address: Ipv4Addr,
        prefix: u8,
        gateway: Option<Ipv4Addr>,
    },
}

impl NetworkConfig {
    /// Checks every key; returns the uplink's addressing.
    pub fn validate(&self) -> Result<Addressing, NetworkError> {
        let u = &self.uplink;
        if u.is_empty()
            || u.len() > 15
            || !u
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(err(
                "network.uplink",
                u,
                "an interface name of 1 to 15 letters, digits, '-', '_' or '.', e.g. \"uplink0\" (the default)",
            ));
        }
        for s in &self.ntp {
            if s.is_empty()
                || s.len() > 253
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':')
            {
                return Err(err(
                    "network.ntp",
                    s,
                    "host names or addresses, e.g. [\"pool.ntp.org\"]; [] disables NTP",
                ));
            }
        }
        if self.address == "dhcp" {
            return Ok(Addressing::Dhcp);
        }
        let bad = || {
            err(
                "network.address",
                &self.address,
                "\"dhcp\" or an IPv4 address with prefix length, e.g. \"192.0.2.10/24\"",
            )
        };
        let (a, p) = self.address.split_once('/').ok_or_else(bad)?;
        let address: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(1..=32).contains(&prefix) || address.is_unspecified() || address.is_multicast() {
            return Err(bad());
        }
        if let Some(g) = self.gateway {
            let mask = u32::MAX << (32 - u32::from(prefix));
            if prefix < 32 && u32::from(g) & mask != u32::from(address) & mask {
                return Err(err(
                    "network.gateway",
                    g,
                    format!("an address inside {}", self.address),
                ));
            }
        }
        Ok(Addressing::Static {
            address,
            prefix,
            gateway: self.gateway,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> NetworkConfig {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn defaults_are_dhcp_on_the_uplink_role_with_ntp() {
        let n = NetworkConfig::default();
        assert_eq!(n.validate(), Ok(Addressing::Dhcp));
        assert_eq!(n.uplink, "uplink0");
        assert!(!n.ntp.is_empty());
    }

    #[test]
    fn static_address_with_gateway_in_its_subnet() {
        let n = net("address = \"192.0.2.10/24\"\ngateway = \"192.0.2.1\"\ndns = [\"192.0.2.53\"]");
        assert_eq!(
            n.validate(),
            Ok(Addressing::Static {
                address: Ipv4Addr::new(192, 0, 2, 10),
                prefix: 24,
                gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
            })
        );
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        for (text, key) in [
            ("address = \"192.0.2.10\"", "network.address"),
            ("address = \"192.0.2.300/24\"", "network.address"),
            ("address = \"192.0.2.10/33\"", "network.address"),
            (
                "address = \"192.0.2.10/24\"\ngateway = \"198.51.100.1\"",
                "network.gateway",
            ),
            ("uplink = \"eth 0\"", "network.uplink"),
            ("ntp = [\"a b\"]", "network.ntp"),
        ] {
            let e = net(text).validate().unwrap_err();
            assert_eq!(e.key, key, "{text}");
            assert!(e.to_string().contains("e.g.") || e.to_string().contains("inside"));
        }
    }

    #[test]
    fn unknown_keys_and_bad_types_are_rejected() {
        assert!(toml::from_str::<NetworkConfig>("adress = \"dhcp\"").is_err());
        assert!(toml::from_str::<NetworkConfig>("dns = [\"not-an-ip\"]").is_err());
    }
}
