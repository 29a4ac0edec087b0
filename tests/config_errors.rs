//! Every configuration error is one line: `FILE:LINE: section.key = value: what is wrong;
//! what is allowed`, and never shows a secret.

use std::path::Path;
use voipsensor::config;

const FILE: &str = "/etc/voipsensor/sensor.toml";

fn error(text: &str) -> String {
    let e = config::parse(text, Path::new(FILE))
        .unwrap_err()
        .to_string();
    assert!(!e.contains('\n'), "not one line: {e}");
    e
}

const SITE: &str = "[sensor]\nsite = \"paris\"\nid = \"t1\"\n";

#[test]
fn a_syntax_error_names_the_line_and_what_toml_expects() {
    assert_eq!(
        error("[sensor]\nsite = \"paris\nid = \"t1\"\n"),
        "/etc/voipsensor/sensor.toml:2: invalid basic string, expected `\"` (TOML syntax)"
    );
}

#[test]
fn a_wrong_type_names_key_value_and_the_expected_type() {
    assert_eq!(
        error(&format!("{SITE}[mqtt]\nkeepalive_s = \"30\"\n")),
        "/etc/voipsensor/sensor.toml:5: mqtt.keepalive_s = \"30\": wrong type (string); expected an integer"
    );
    assert_eq!(
        error(&format!("{SITE}[capture]\npromisc = 1\n")),
        "/etc/voipsensor/sensor.toml:5: capture.promisc = 1: wrong type (integer); expected true or false"
    );
}

#[test]
fn an_unknown_key_suggests_the_nearest_one() {
    assert_eq!(
        error(&format!("{SITE}[mqtt]\nkeepalive = 30\n")),
        "/etc/voipsensor/sensor.toml:5: mqtt.keepalive = 30: unknown key in [mqtt]; did you mean `keepalive_s`?"
    );
    assert_eq!(
        error(&format!("{SITE}[mqtt]\nzzz = 1\n")),
        "/etc/voipsensor/sensor.toml:5: mqtt.zzz = 1: unknown key in [mqtt]; allowed: url, username, password, \
         password_file, ca_file, client_cert, client_key, keepalive_s, qos, max_message_bytes, \
         outbox_messages, outbox_bytes, reconnect_min_ms, reconnect_max_ms, connect_timeout_s, \
         brokers, spool, spool_bytes"
    );
    assert_eq!(
        error(&format!("{SITE}[sensr]\nsite = \"x\"\n")),
        "/etc/voipsensor/sensor.toml:4: [sensr]: unknown section at the top level; did you mean `sensor`?"
    );
}

#[test]
fn an_unknown_enum_value_lists_the_allowed_ones() {
    assert_eq!(
        error(&format!("{SITE}[output]\npayload = \"xml\"\n")),
        "/etc/voipsensor/sensor.toml:5: output.payload = \"xml\": unknown value; allowed: \"postcard\", \"json\""
    );
}

#[test]
fn an_out_of_range_value_names_the_range() {
    assert_eq!(
        error(&format!("{SITE}[mqtt]\nkeepalive_s = 1\n")),
        "/etc/voipsensor/sensor.toml:5: mqtt.keepalive_s = 1: out of range; allowed 5 to 3600"
    );
    assert_eq!(
        error(&format!("{SITE}[mqtt]\nkeepalive_s = 70000\n")),
        "/etc/voipsensor/sensor.toml:5: mqtt.keepalive_s = 70000: out of range; allowed at most 65535"
    );
}

#[test]
fn inverted_reconnect_bounds_say_min_must_not_exceed_max() {
    assert_eq!(
        error(&format!(
            "{SITE}[mqtt]\nreconnect_min_ms = 70000\nreconnect_max_ms = 1000\n"
        )),
        "/etc/voipsensor/sensor.toml:5: mqtt.reconnect_min_ms = 70000: reconnect_min_ms must be ≤ reconnect_max_ms (1000); lower reconnect_min_ms or raise reconnect_max_ms"
    );
}

#[test]
fn a_missing_required_key_names_it() {
    assert_eq!(
        error("[sensor]\nid = \"t1\"\n"),
        "/etc/voipsensor/sensor.toml:1: sensor.site = (unset): missing; a site name is required (one MQTT topic level)"
    );
    assert_eq!(
        error(""),
        "/etc/voipsensor/sensor.toml: sensor.site = (unset): missing; a site name is required (one MQTT topic level)"
    );
}

#[test]
fn a_bad_url_names_the_key_and_the_allowed_form() {
    assert_eq!(
        error(&format!("{SITE}[mqtt]\nurl = \"http://x\"\n")),
        "/etc/voipsensor/sensor.toml:5: mqtt.url = \"http://x\": not an MQTT URL; allowed mqtt://[user:password@]host[:port] or mqtts://…"
    );
}

#[test]
fn a_broker_url_with_credentials_is_accepted_and_its_password_never_printed() {
    let cfg = config::parse(
        &format!("{SITE}[mqtt]\nurl = \"mqtt://sensor:hunter2@broker:1884\"\n"),
        Path::new(FILE),
    )
    .unwrap();
    assert_eq!(cfg.mqtt.url, "mqtt://broker:1884");
    assert_eq!(cfg.mqtt.username.as_deref(), Some("sensor"));
    assert_eq!(
        cfg.mqtt.password.as_ref().map(|p| p.expose()),
        Some("hunter2")
    );
    let e = error(&format!(
        "{SITE}[mqtt]\nurl = \"mqtt://sensor:hunter2@broker:0\"\n"
    ));
    assert!(!e.contains("hunter2"), "{e}");
    assert_eq!(
        e,
        "/etc/voipsensor/sensor.toml:5: mqtt.url = \"mqtt://sensor:***@broker:0\": port must be 1 to 65535; \
         allowed mqtt://[user:password@]host[:port] or mqtts://…"
    );
    let e = error(&format!("{SITE}[mqtt]\npassword = 12\n"));
    assert_eq!(
        e,
        "/etc/voipsensor/sensor.toml:5: mqtt.password = <redacted>: wrong type (integer); expected a quoted string"
    );
}

#[test]
fn a_file_named_by_a_key_that_cannot_be_read_names_the_key_and_the_os_cause() {
    assert_eq!(
        error(&format!(
            "{SITE}[mqtt]\nusername = \"u\"\npassword_file = \"nope\"\n"
        )),
        "/etc/voipsensor/sensor.toml:6: mqtt.password_file = \"/etc/voipsensor/nope\": cannot read it: \
         No such file or directory (os error 2); a readable file (relative paths are from the \
         configuration's folder)"
    );
}
