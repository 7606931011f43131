//! Build script: stamps the binaries with the git commit they were built from and whether
//! the tree had uncommitted changes, so every stats file, manifest and results.csv can say
//! which code produced it (`tyrant --version`, `tyrant::BUILD`). Outside a git checkout (a
//! source tarball) the commit reads `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    // --no-optional-locks: `status` must not rewrite .git/index, which is watched below
    // (a rewrite would rerun this script on every build).
    let out = Command::new("git").arg("--no-optional-locks").args(args).output().ok()?;
    if out.status.success() {
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        None
    }
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(s) if s.is_empty() => "",
        Some(_) => "-dirty",
        None => "",
    };
    println!("cargo:rustc-env=TYRANT_BUILD={}{}", commit, dirty);
    // A commit moves the branch's ref (or HEAD), an edit changes a watched file. The lab
    // crate takes its stamp from here too, so its sources are watched as well.
    let mut watch: Vec<String> = ["src", "lab/src", "tests", "bench", "Cargo.toml", "build.rs"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watch.push(format!("{}/HEAD", dir));
        watch.push(format!("{}/index", dir));
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            if let Some(r) = git(&["rev-parse", "--git-path", &head]) {
                watch.push(r);
            }
        }
    }
    for p in watch.iter().filter(|p| std::path::Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={}", p);
    }
}
