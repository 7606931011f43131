//! README.md's option lists against `tyrant --help` (src/usage/tyrant.txt): the README
//! copies every option of the help text, word for word, so a changed default or a new flag
//! cannot leave it stale (it once said `--tyrant-u0 ... [7]` for a default of 3 and lacked
//! four flags).

/// Each option of `text`'s fenced (README) or plain (usage) lines: an option line (two
/// spaces, then `-`) with the continuation lines indented under it, joined.
fn options(text: &str, fenced_only: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut fenced = false;
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let counted = fenced || !fenced_only;
        if counted && line.starts_with("  -") {
            out.extend(current.replace(line.trim_end().to_string()));
        } else if counted && line.starts_with("                    ") && current.is_some() {
            if let Some(c) = current.as_mut() {
                c.push('\n');
                c.push_str(line.trim_end());
            }
        } else {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out.sort();
    out
}

#[test]
fn readme_lists_every_option_of_the_help_text_verbatim() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let usage = std::fs::read_to_string(format!("{root}/src/usage/tyrant.txt")).unwrap();
    let (ours, help) = (options(&readme, true), options(&usage, false));
    assert!(help.len() > 30, "the help text lists {} options", help.len());
    let missing: Vec<_> = help.iter().filter(|o| !ours.contains(o)).collect();
    let stale: Vec<_> = ours.iter().filter(|o| !help.contains(o)).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README.md's option lists differ from src/usage/tyrant.txt\nmissing from README: \
         {missing:#?}\nin README, not in the help text: {stale:#?}"
    );
}
