//! Helpers for the lab's process-level tests: the `tyrant-lab` binary and the `tyrant`
//! client beside it, temp dirs, and children that are always killed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The `tyrant-lab` binary under test.
pub fn lab() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tyrant-lab"))
}

/// The client the runs execute: cargo builds it into the same target directory when the
/// tests run from the workspace root (`cargo test`), so it lies beside `tyrant-lab`, which
/// is also where `tyrant-lab run` looks for it.
pub fn client() -> PathBuf {
    let p = lab().with_file_name("tyrant");
    assert!(
        p.is_file(),
        "{} is missing: run the tests from the workspace root (`cargo test`), which builds \
         the client too, or `cargo build -p tyrant` first",
        p.display()
    );
    p
}

/// `tyrant-lab ARGS` in `dir`, with TYRANT unset so the lookup beside the binary is used.
pub fn lab_in(dir: &Path, args: &[&str]) -> Output {
    client();
    Command::new(lab())
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env_remove("TYRANT")
        .output()
        .expect("run tyrant-lab")
}

/// A child process killed when dropped, so a failing test never leaves peers behind.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Wait for exit up to `limit`; None on timeout.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "tyrant-lab-test-{}-{}-{}",
            tag,
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("TYRANT_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `tyrant-lab ARGS` in `dir`, which must succeed (its output in the panic otherwise).
pub fn lab_ok(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = lab_in(dir, args);
    if !out.status.success() {
        panic!(
            "tyrant-lab {:?} failed: {}\n{}",
            args,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// results.csv as maps from column name to value.
pub fn rows(dir: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("results.csv")).expect("results.csv");
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    assert_eq!(header.join(","), tyrant_lab::runner::CSV_HEADER);
    lines
        .map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            assert_eq!(v.len(), header.len(), "row {}", l);
            header.iter().cloned().zip(v.iter().map(|s| s.to_string())).collect()
        })
        .collect()
}

/// Whether the tests run as root (network namespaces and sshd need it).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
