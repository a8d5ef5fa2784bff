//! What a test does when a tool it needs (Chromium, Go, a tmpfs it may mount) is not there: it fails, because a check that cannot run
//! has checked nothing, unless the environment says explicitly that skipping that tool is allowed
//! (`MEMPROOF_ALLOW_SKIP=chromium,go`). Then it passes and says `skipped:`, so the skip is a decision someone made,
//! visible in the test's output, never a silent pass on a machine that lacks the tool.

/// The environment variable that allows skipping: a comma-separated list of tool names.
pub const ALLOW_SKIP: &str = "MEMPROOF_ALLOW_SKIP";

/// Whether `allowed` (the value of [`ALLOW_SKIP`]) names `tool`.
pub fn skip_allowed(tool: &str, allowed: Option<&str>) -> bool {
    allowed.is_some_and(|list| list.split(',').any(|name| name.trim() == tool))
}

/// Called by a test whose `tool` is missing: returns (the test then returns without checking anything) only when
/// [`ALLOW_SKIP`] names the tool, printing `skipped: …`; otherwise panics with `why` it is missing and the `remedy`
/// (a sentence: "Install it with `apt-get install chromium`").
pub fn skip_or_fail(tool: &str, why: &str, remedy: &str) {
    if skip_allowed(tool, std::env::var(ALLOW_SKIP).ok().as_deref()) {
        println!("skipped: {why} ({ALLOW_SKIP} allows it)");
        return;
    }
    panic!("{}", missing_message(tool, why, remedy));
}

fn missing_message(tool: &str, why: &str, remedy: &str) -> String {
    format!(
        "{why}, so this check cannot run\n\n{remedy}, or set {ALLOW_SKIP}={tool} to skip the check knowingly."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_tool_the_variable_names_may_be_skipped() {
        assert!(!skip_allowed("go", None));
        assert!(!skip_allowed("go", Some("")));
        assert!(!skip_allowed("go", Some("golang,chromium")));
        assert!(skip_allowed("go", Some("chromium, go")));
        assert!(skip_allowed("chromium", Some("chromium")));
        assert_eq!(
            missing_message(
                "go",
                "go is not installed",
                "Install it with `apt-get install golang-go` (`.ci/run` does)"
            ),
            "go is not installed, so this check cannot run\n\nInstall it with `apt-get install golang-go` \
             (`.ci/run` does), or set MEMPROOF_ALLOW_SKIP=go to skip the check knowingly."
        );
    }
}
