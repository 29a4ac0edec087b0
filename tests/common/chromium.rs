//! Headless Chromium for page tests: a fresh profile, its own process group (killed whole on
//! drop), one browser at a time per test process, a hard time limit.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; the group is the one we created.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// Runs `chromium --headless … EXTRA URL` with a profile under `dir`; returns its stdout.
pub fn chromium(dir: &Path, extra: &[&str], url: &str) -> String {
    chromium_within(dir, extra, url, Duration::from_secs(120))
}

/// [`chromium`] with a time limit of its own (a large page takes longer on a busy machine).
pub fn chromium_within(dir: &Path, extra: &[&str], url: &str, limit: Duration) -> String {
    use std::os::unix::process::CommandExt;
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let profile = dir.join("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    let out = dir.join("chromium-stdout");
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(&out).unwrap())
    .stderr(Stdio::null())
    .process_group(0);
    let mut run = Running(cmd.spawn().expect("start chromium"));
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = run.0.try_wait().unwrap() {
            assert!(st.success(), "chromium failed on {url}: {st}");
            break;
        }
        assert!(Instant::now() < deadline, "chromium hung on {url}");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(run);
    std::fs::read_to_string(&out).unwrap()
}
