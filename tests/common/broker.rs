//! One way to run a real mosquitto in a test: a free loopback port, a temporary folder, `user
//! root`, persistence on or off, start/restart/stop (SIGTERM)/kill (SIGKILL); and a subscriber
//! collecting the whole tree with a persistent QoS 1 session.
//!
//! Callers check for the tool with [`Broker::start`] returning `None` (a visible skip, a failure
//! under `CI`).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use voipsensor::publish::payload::{self, Message, State};

/// A fresh, empty folder under the system temporary folder, unique per test process and `tag`.
pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `dir/passwd`, mosquitto's password file with one user, `sensor` / `right-pass`
/// (`mosquitto_passwd`: callers check for the tool).
pub fn password_file(dir: &Path) -> PathBuf {
    let pw = dir.join("passwd");
    let st = Command::new("mosquitto_passwd")
        .arg("-b")
        .arg("-c")
        .arg(&pw)
        .args(["sensor", "right-pass"])
        .status()
        .unwrap();
    assert!(st.success());
    pw
}

/// Polls `ok` every 50 ms; panics naming `what` after `limit`.
#[track_caller]
pub fn wait_for(what: &str, limit: Duration, ok: impl FnMut() -> bool) {
    assert!(
        wait_until(limit, ok).is_some(),
        "timed out waiting for {what}"
    );
}

/// Polls `ok` every 50 ms until it holds (how long that took) or `limit` has passed
/// (`None`), for a caller whose own assertion then says what it saw.
pub fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    loop {
        if ok() {
            return Some(t0.elapsed());
        }
        if t0.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A mosquitto process on `127.0.0.1:port`, its config and log in `dir`.
pub struct Broker {
    child: Option<Child>,
    pub conf: PathBuf,
    pub dir: PathBuf,
    pub port: u16,
}

impl Broker {
    /// mosquitto on a free port with `extra` config lines (after the listener line, so TLS
    /// options apply to it); persistence on so a restart keeps sessions and queued messages.
    #[track_caller]
    pub fn start(dir: &Path, extra: &str) -> Option<Broker> {
        Self::start_on(dir, free_port(), true, extra)
    }

    /// As [`Broker::start`] on a given `port`, persistence on or off.
    #[track_caller]
    pub fn start_on(dir: &Path, port: u16, persistence: bool, extra: &str) -> Option<Broker> {
        if !super::need_tool("mosquitto", "mosquitto") {
            return None;
        }
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                // `user root`: started as root (CI), mosquitto would otherwise switch to the
                // mosquitto user and could not read the test's key files or write its dir.
                "user root\nlistener {port} 127.0.0.1\n{extra}\npersistence {persistence}\n\
                 persistence_location {}/\nlog_dest file {}/mosquitto.log\n",
                dir.display(),
                dir.display()
            ),
        )
        .unwrap();
        let mut b = Broker {
            child: None,
            conf,
            dir: dir.to_path_buf(),
            port,
        };
        b.restart();
        Some(b)
    }

    /// Starts mosquitto again (after [`Broker::stop`] or [`Broker::kill`]) on the same port and
    /// waits until it accepts connections.
    pub fn restart(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "mosquitto did not start on port {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM (mosquitto saves its persistence file) and wait for it to exit.
    pub fn stop(&mut self) {
        self.signal(libc::SIGTERM);
    }

    /// SIGKILL (nothing saved since the last autosave) and wait for it to exit.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
    }

    fn signal(&mut self, sig: i32) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, sig) };
            let _ = c.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// (topic, payload) as received.
pub type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A subscriber collecting every message under `filter`; persistent session (QoS 1) so
/// messages published while it reconnects after a broker restart are kept for it.
pub struct Sub {
    pub msgs: Received,
    stop: Arc<AtomicBool>,
    /// SUBACKs received: one per (re)subscription, so a test can wait for the subscriber
    /// to be back on a restarted broker.
    subacks: Arc<AtomicUsize>,
}

impl Sub {
    /// Subscribes to `voipsensor/v1/#` on `127.0.0.1:port` as client `id`.
    pub fn start(port: u16, id: &str) -> Sub {
        Self::start_filter(port, id, "voipsensor/v1/#")
    }

    pub fn start_filter(port: u16, id: &str, filter: &str) -> Sub {
        let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        o.set_clean_session(false);
        o.set_max_packet_size(1 << 20, 1 << 20);
        o.set_keep_alive(Duration::from_secs(5));
        let (client, mut conn) = rumqttc::Client::new(o, 64);
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let subacks = Arc::new(AtomicUsize::new(0));
        {
            let (msgs, stop, subscribed) = (msgs.clone(), stop.clone(), subacks.clone());
            let filter = filter.to_string();
            std::thread::spawn(move || {
                for ev in conn.iter() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match ev {
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                            let _ = client.try_subscribe(&filter, rumqttc::QoS::AtLeastOnce);
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                            subscribed.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => msgs
                            .lock()
                            .unwrap()
                            .push((p.topic.clone(), p.payload.to_vec())),
                        Ok(_) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            });
        }
        wait_for("subscriber ready", Duration::from_secs(10), || {
            subacks.load(Ordering::Relaxed) > 0
        });
        Sub {
            msgs,
            stop,
            subacks,
        }
    }

    /// SUBACKs received so far (see the field).
    pub fn subscriptions(&self) -> usize {
        self.subacks.load(Ordering::Relaxed)
    }

    /// Payloads of the messages whose topic ends with `leaf`, in arrival order.
    pub fn on(&self, leaf: &str) -> Vec<Vec<u8>> {
        self.msgs
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t.ends_with(leaf))
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// The state in the last `status` message received; `None` before any, or when it does
    /// not decode as a status.
    pub fn last_state(&self) -> Option<State> {
        match payload::decode(self.on("/status").last()?) {
            Ok(Message::Status(s)) => Some(s.state),
            _ => None,
        }
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
