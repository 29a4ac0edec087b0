//! Visible skips. A test whose prerequisite is missing (a tool, root, `../shared`) calls
//! [`skip`]: with `CI` set that is a failure (CI installs every prerequisite), elsewhere the
//! test returns early, prints `SKIP: …` and appends a line to `target/test-skips.log`, which
//! `.ci/test.sh` prints and counts next to passed and failed (libtest hides a passing test's
//! output, so the log is what makes a skip visible).
use std::io::Write;
use std::path::Path;

/// Where skips are recorded; `.ci/test.sh` truncates it before a run.
pub fn skip_log() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-skips.log")
}

/// Reports a missing prerequisite: panics under CI, records a visible skip elsewhere.
/// Call as `if !need(cond, "why") { return; }` or `return skip("why")`.
#[track_caller]
pub fn skip(reason: &str) {
    let at = std::panic::Location::caller();
    let test = std::thread::current().name().unwrap_or("?").to_string();
    if std::env::var_os("CI").is_some() {
        panic!("prerequisite missing in CI ({test} at {at}): {reason}");
    }
    eprintln!("SKIP: {test}: {reason}");
    // One line per test (libtest runs each on its own thread), however often it skips.
    thread_local!(static LOGGED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    if LOGGED.replace(true) {
        return;
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(skip_log())
    {
        let _ = writeln!(f, "SKIP {test} ({}:{}): {reason}", at.file(), at.line());
    }
}

/// `true` when `ok`; otherwise [`skip`]s with `reason` and returns `false`.
#[track_caller]
pub fn need(ok: bool, reason: &str) -> bool {
    if !ok {
        skip(reason);
    }
    ok
}

/// `true` when `tool` is on `PATH`; otherwise a skip naming the Debian package to install.
#[track_caller]
pub fn need_tool(tool: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    need(
        found,
        &format!("{tool} is not installed (apt-get install {package}; bash .ci/setup.sh does it)"),
    )
}

/// `true` when running as root (network namespaces, raw sockets, qemu networking).
#[track_caller]
pub fn need_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    need(unsafe { libc::geteuid() } == 0, "needs root")
}
