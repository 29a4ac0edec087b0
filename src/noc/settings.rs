//! `noc.toml`: `[mqtt]`, `[http]`, `[limits]`; every key optional, unknown keys refused.

use super::http::HttpSettings;
use super::state::Limits;
use super::subscribe::MqttSettings;
use anyhow::{Context, Result};
use std::path::Path;

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NocSettings {
    pub mqtt: MqttSettings,
    pub http: HttpSettings,
    pub limits: Limits,
}

impl NocSettings {
    pub fn load(path: &Path) -> Result<NocSettings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("{}", path.display()))
    }

    pub fn parse(text: &str) -> Result<NocSettings> {
        let s: NocSettings = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        s.validate()?;
        Ok(s)
    }

    /// The rules a file and the flags are both held to.
    pub fn validate(&self) -> Result<()> {
        let s = self;
        if let Some(g) = &s.mqtt.share_group {
            crate::publish::topic::validate_name("mqtt.share_group", g)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        if s.limits.max_sensors == 0 {
            anyhow::bail!("limits.max_sensors = 0: at least 1");
        }
        crate::publish::broker::BrokerUrl::parse(&s.mqtt.url)
            .map_err(|e| anyhow::anyhow!("mqtt.url = {:?}: {}", e.url, e.why))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses_and_unknown_keys_are_refused() {
        let s = NocSettings::parse(
            "[mqtt]\nurl = \"mqtt://broker:1883\"\nshare_group = \"noc\"\n[http]\nlisten = \"0.0.0.0:9108\"\n[limits]\nmax_sensors = 5\n",
        )
        .unwrap();
        assert_eq!(s.mqtt.share_group.as_deref(), Some("noc"));
        assert_eq!(s.limits.max_sensors, 5);
        assert_eq!(s.http.listen.port(), 9108);
        let e = NocSettings::parse("[http]\nlisen = \"x\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("lisen"), "{e:#}");
        assert!(NocSettings::parse("[mqtt]\nshare_group = \"a/b\"\n").is_err());
        assert!(NocSettings::parse("[mqtt]\nurl = \"http://x\"\n").is_err());
    }
}
