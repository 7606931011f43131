//! The runner's pure parts: lane addresses, the stats file's `done` line, and which
//! manifest.txt counts as the same experiment on resume.

use super::observe::{read_done, DoneLine};
use super::*;

#[test]
fn lanes_move_only_loopback_second_octet() {
    let a = Ipv4Addr::new(127, 0, 1, 7);
    assert_eq!(lane_addr(a, 0), a);
    assert_eq!(lane_addr(a, 3), Ipv4Addr::new(127, 3, 1, 7));
    let b = Ipv4Addr::new(10, 0, 0, 2);
    assert_eq!(lane_addr(b, 3), b);
}

#[test]
fn done_line_is_parsed_and_incomplete_has_no_time() {
    let dir = std::env::temp_dir().join(format!("tyrant-runner-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let p = dir.join("a.txt");
    fs::write(
        &p,
        "start x=1\ntick t=1\ndone t=9.00 download_time=8.500 downloaded=100 uploaded=50 complete=true reason=x\n",
    )
    .unwrap();
    assert_eq!(read_done(&p), DoneLine { download_secs: Some(8.5), downloaded: 100, uploaded: 50 });
    fs::write(&p, "done t=9.00 download_time=- downloaded=10 uploaded=5 complete=false reason=x\n")
        .unwrap();
    assert_eq!(read_done(&p).download_secs, None);
    // The sybil total line has the same keys after `identities=`.
    fs::write(
        &p,
        "done identities=2 t=9 download_time=3.000 downloaded=7 uploaded=1 complete=true\n",
    )
    .unwrap();
    assert_eq!(read_done(&p).download_secs, Some(3.0));
    assert_eq!(read_done(&dir.join("missing")), DoneLine::default());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn resume_compares_manifests_not_their_comments() {
    let m = crate::plan::plan("single peers=3 caps=20", &Default::default()).unwrap();
    let text = m.to_text();
    assert!(same_manifest(&text, &m));
    // An older comment block (tyrant-lab was `tyrant swarm`) is still the same experiment.
    let older = text.replace("# tyrant-lab manifest v1", "# tyrant swarm manifest v1");
    assert_ne!(older, text);
    assert!(same_manifest(&older, &m));
    let other = crate::plan::plan("single peers=3 caps=30", &Default::default()).unwrap();
    assert!(!same_manifest(&other.to_text(), &m));
    assert!(!same_manifest("not a manifest", &m));
}
