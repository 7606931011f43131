//! The runner's pure parts: lane addresses, the stats file's `done` line, batches, and which
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

#[test]
fn batches_keep_a_repetition_together() {
    let sizes = |b: &[Vec<&Run>]| b.iter().map(Vec::len).collect::<Vec<_>>();
    // Every repetition's runs in one batch, and nothing lost, reordered or repeated.
    let whole = |todo: &[&Run], b: &[Vec<&Run>]| {
        let flat: Vec<&str> = b.iter().flatten().map(|r| r.name.as_str()).collect();
        let want: Vec<&str> = todo.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(flat, want);
        for r in todo {
            let holding = b.iter().filter(|x| x.iter().any(|y| y.group == r.group)).count();
            assert_eq!(holding, 1, "{} split across batches", r.group);
        }
    };
    let single = crate::plan::plan("single peers=4 caps=200 reps=10", &Default::default()).unwrap();
    let todo: Vec<&Run> = single.runs.iter().collect();
    assert_eq!(todo.len(), 20);
    let seven = batches(&todo, 7);
    assert_eq!(sizes(&seven), [6, 6, 6, 2]);
    whole(&todo, &seven);
    let six = batches(&todo, 6);
    assert_eq!(sizes(&six), [6, 6, 6, 2]);
    whole(&todo, &six);
    assert_eq!(sizes(&batches(&todo, 1)), [1; 20]);
    assert_eq!(sizes(&batches(&todo, 0)), [1; 20]);
    assert_eq!(sizes(&batches(&todo, 40)), [20]);
    // On resume a repetition may have one arm left; it still fills a batch.
    let partial: Vec<&Run> = todo.iter().copied().skip(1).collect();
    let b = batches(&partial, 4);
    assert_eq!(sizes(&b), [3, 4, 4, 4, 4]);
    whole(&partial, &b);
    // A repetition larger than jobs is split, and only it.
    let rebel = crate::plan::plan("rebel peers=6 caps=50 reps=2", &Default::default()).unwrap();
    let todo: Vec<&Run> = rebel.runs.iter().collect();
    let per_rep = todo.iter().filter(|r| r.group == todo[0].group).count();
    assert!(per_rep > 3, "rebel repetition has {} runs", per_rep);
    let b = batches(&todo, 3);
    assert!(b.iter().all(|x| x.len() <= 3));
    let flat: Vec<&str> = b.iter().flatten().map(|r| r.name.as_str()).collect();
    assert_eq!(flat, todo.iter().map(|r| r.name.as_str()).collect::<Vec<_>>());
    // Each repetition fills as few batches as its size forces, one after another.
    for g in todo.iter().map(|r| &r.group) {
        let at: Vec<usize> = (0..b.len()).filter(|&i| b[i].iter().any(|r| &r.group == g)).collect();
        assert_eq!(at.len(), (per_rep + 2) / 3, "{} in batches {:?}", g, at);
        assert!(at.windows(2).all(|w| w[1] == w[0] + 1), "{} in batches {:?}", g, at);
    }

    let b = batches(&todo, 2 * per_rep);
    assert_eq!(sizes(&b), [2 * per_rep]);
    whole(&todo, &b);
}
