//! index.html as a person sees it: opened in headless Chromium (Debian's `chromium`), the charts must render with a
//! real size, the verdict table must list every verdict, and a screenshot must not be blank. Where Chromium is not
//! installed the test fails, unless `MEMPROOF_ALLOW_SKIP` names `chromium` (`runner::missing_tool`); `.ci/run`
//! installs it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{case_mut, judged, judged_fixture};

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Runs Chromium headless on `page` with `extra` arguments; returns its stdout. Killed after two minutes.
fn run_chromium(chromium: &Path, profile_dir: &Path, extra: &[String], page: &Path) -> String {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile_dir.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).ok();
        text
    });
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium did not finish within two minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().expect("reader thread")
}

/// Appended to a copy of the page: measures what the browser laid out and writes it into the DOM as JSON.
const MEASURE_SCRIPT: &str = r#"<script>
const svgs = Array.from(document.querySelectorAll('section.scenario figure.chart svg')).map(svg => {
  const box = svg.getBoundingClientRect();
  return [Math.round(box.width), Math.round(box.height), svg.querySelectorAll('text').length];
});
const verdicts = Array.from(document.querySelectorAll('tr[data-verdict-id]')).map(row => row.dataset.verdictId);
const failing = document.querySelectorAll('tr.fail td.status').length;
const failColour = failing ? getComputedStyle(document.querySelector('tr.fail td.status')).backgroundColor : '';
// Anything wider than the window, with the element that sticks out furthest, to say what overflows.
let widest = '';
let widestRight = 0;
for (const element of document.body.querySelectorAll('*')) {
  const scroller = element.parentElement && element.parentElement.closest('.scroll');
  if (scroller && getComputedStyle(scroller).overflowX !== 'visible') continue;
  const right = element.getBoundingClientRect().right;
  if (right > widestRight) {
    widestRight = right;
    widest = element.tagName + (element.className && typeof element.className === 'string' ? '.' + element.className : '');
  }
}
const cards = Array.from(document.querySelectorAll('#overview a.card')).map(card => {
  const target = document.getElementById(card.getAttribute('href').slice(1));
  return [card.dataset.scenario, target !== null, card.querySelectorAll('svg').length];
});
const sections = Array.from(document.querySelectorAll('section')).filter(s => !s.id).length;
const out = document.createElement('pre');
out.id = 'memproof-measurements';
out.textContent = JSON.stringify({
  svgs, verdicts, failColour, cards, sections,
  scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, widest, widestRight,
});
document.body.appendChild(out);
</script>
</body>"#;

/// Opens `page` at `width` pixels with the measuring script and returns what it measured.
fn measure(chromium: &Path, page: &Path, width: u32) -> serde_json::Value {
    let html = std::fs::read_to_string(page).unwrap();
    let measured_page = page.with_file_name(format!("measured-{width}.html"));
    std::fs::write(&measured_page, html.replace("</body>", MEASURE_SCRIPT)).unwrap();
    let profile_dir = tempfile::tempdir().unwrap();
    let dom = run_chromium(
        chromium,
        profile_dir.path(),
        &[
            "--dump-dom".to_string(),
            format!("--window-size={width},1200"),
        ],
        &measured_page,
    );
    let start = dom
        .find("<pre id=\"memproof-measurements\">")
        .expect("the measuring script ran")
        + 32;
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = dom[start..end]
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    serde_json::from_str(&json).unwrap()
}

/// The page fits the window: nothing sticks out sideways (wide tables scroll inside their own box).
fn assert_no_horizontal_overflow(measured: &serde_json::Value, what: &str) {
    let (scroll, inner) = (
        measured["scrollWidth"].as_u64().unwrap(),
        measured["innerWidth"].as_u64().unwrap(),
    );
    assert!(
        scroll <= inner,
        "{what}: the page is {scroll} px wide in a {inner} px window; widest: {} reaching {} px",
        measured["widest"],
        measured["widestRight"]
    );
}

/// Takes a screenshot of `page` at `width` pixels into `into`; returns its size in bytes.
fn screenshot(chromium: &Path, page: &Path, width: u32, into: &Path) -> u64 {
    let profile_dir = tempfile::tempdir().unwrap();
    run_chromium(
        chromium,
        profile_dir.path(),
        &[
            format!("--screenshot={}", into.display()),
            format!("--window-size={width},2400"),
        ],
        page,
    );
    std::fs::metadata(into)
        .expect("a screenshot was written")
        .len()
}

#[test]
fn index_html_renders_its_charts_and_every_verdict_in_chromium_at_two_widths() {
    let Some(chromium) = find_chromium() else {
        runner::missing_tool::skip_or_fail(
            "chromium",
            "chromium is not installed",
            "Install it with `apt-get install chromium` (`.ci/run` does)",
        );
        return;
    };
    let (results, spec) = judged_fixture();
    let out = tempfile::tempdir().unwrap();
    reports::render::write_reports_to(&results, &[spec], out.path(), None).unwrap();
    let index = out.path().join("index.html");

    for width in [1400, 800] {
        let measured = measure(&chromium, &index, width);
        assert_no_horizontal_overflow(&measured, &format!("index.html at {width} px"));
        let svgs = measured["svgs"].as_array().unwrap();
        assert_eq!(
            svgs.len(),
            5,
            "five charts: two scenarios' timelines and bars, one growth chart"
        );
        for svg in svgs {
            let (chart_width, height, texts) = (
                svg[0].as_u64().unwrap(),
                svg[1].as_u64().unwrap(),
                svg[2].as_u64().unwrap(),
            );
            assert!(
                chart_width >= 400 && height >= 200,
                "a chart laid out at {chart_width}x{height} in a {width} px window"
            );
            assert!(
                texts >= 10,
                "a chart with only {texts} text elements (title, axes, legend expected)"
            );
        }
        let mut listed: Vec<&str> = measured["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        listed.sort();
        let mut expected: Vec<&str> = results.verdicts.iter().map(|v| v.id.as_str()).collect();
        expected.sort();
        assert_eq!(
            listed, expected,
            "the scenario sections list every verdict once"
        );
        assert_eq!(
            measured["failColour"], "rgb(248, 212, 212)",
            "a failing verdict is red"
        );
        let cards = measured["cards"].as_array().unwrap();
        assert_eq!(
            cards[0],
            serde_json::json!(["large-session", true, 1]),
            "the failing scenario's card comes first, links to its section and shows its timeline"
        );
        assert_eq!(cards.len(), 2);
        assert_eq!(measured["sections"], 0, "every section has an anchor");

        let shot = out.path().join(format!("index-{width}.png"));
        let bytes = screenshot(&chromium, &index, width, &shot);
        // A blank page compresses to a few KB; one with cards, tables and charts to far more.
        assert!(
            bytes > 60_000,
            "the {width} px screenshot is only {bytes} bytes: is the page blank?"
        );
    }
}

#[test]
fn compare_html_fits_the_window_in_chromium_at_two_widths() {
    let Some(chromium) = find_chromium() else {
        runner::missing_tool::skip_or_fail(
            "chromium",
            "chromium is not installed",
            "Install it with `apt-get install chromium` (`.ci/run` does)",
        );
        return;
    };
    let (old, spec) = judged_fixture();
    let mut new = old.clone();
    case_mut(&mut new, "large-session/best/log_bytes=16777216").peak_heap_bytes = Some(5 << 20);
    let new = judged(new, &spec);
    let out = tempfile::tempdir().unwrap();
    reports::compare::compare(&old, &new, &[spec], None, out.path()).unwrap();
    let page = out.path().join("compare.html");
    for width in [1400, 800] {
        let measured = measure(&chromium, &page, width);
        assert_no_horizontal_overflow(&measured, &format!("compare.html at {width} px"));
        assert_eq!(measured["sections"], 0, "every section has an anchor");
        assert_eq!(
            measured["svgs"].as_array().unwrap().len(),
            2 + 2,
            "two timelines, and large-session's growth charts of base and head (calibration has one size)"
        );
    }
}
