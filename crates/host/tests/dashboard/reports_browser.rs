//! The report pages in headless Chromium: logged in through the form like a person, the TLS,
//! DMARC and overview pages of domains with stored reports (see [`super::reports::seed`]) are
//! rendered under the real CSP, their charts counted and read through the DOM, and
//! screenshotted.
//!
//! The screenshots are looked at too: decoded ([`super::png`]), each checked chart cut out
//! by its box in the page, and the pixels of the series' colours (read from `style.css`, as
//! the browser was) counted. The failing domain's daily chart shows the failure colour in
//! about the proportion of failed to successful sessions; the clean domain's shows none; the
//! DMARC pass-rate bar splits in the stated rate.
//!
//! CSP violations are collected by a listener DevTools installs before any page script could
//! run (`Page.addScriptToEvaluateOnNewDocument`, which the page's CSP does not govern); the test
//! first proves the listener sees a violation it provokes itself, so "no violation" means
//! something.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::dashboard::browser::{
    Cdp, HEIGHT, WIDTH, assert_screenshot, base_args, chromium, page_target, png_size,
    screenshot_dir, spawn,
};
use crate::dashboard::harness::{Harness, PASSWORD};
use crate::dashboard::png::{self, Image};
use crate::dashboard::reports::{DAYS, FAILING, HOSTILE, READY, seed};

/// The stylesheet the dashboard serves, whose fills colour the charts.
const STYLE: &str = include_str!("../../src/dashboard/style.css");

/// The fill `style.css` gives `.class` (`#rrggbb`), as RGB.
fn fill_of(class: &str) -> [u8; 3] {
    let rule = format!(".{class} {{ fill: #");
    let start = STYLE
        .find(&rule)
        .unwrap_or_else(|| panic!("no {rule} in style.css"))
        + rule.len();
    let hex = &STYLE[start..start + 6];
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
    [byte(0), byte(2), byte(4)]
}

/// Colour conversion in the compositor may move a channel by a unit or two; nothing else on
/// the pages comes that close to the series colours.
const TOLERANCE: u8 = 2;

/// The pixels of the chart that `element` (a JavaScript expression) yields: scrolled to the
/// top of the window, screenshotted (kept as `name`), decoded and cut to the chart's box.
async fn chart_pixels(page: &mut Cdp, element: &str, blank: usize, name: &str) -> Image {
    let (left, top, right, bottom) = page.element_box(element).await;
    let shot = page.screenshot().await;
    std::fs::write(screenshot_dir().join(name), &shot).unwrap();
    assert_screenshot(&shot, blank, name);
    let image = png::decode(&shot);
    assert!(
        right > left + 100 && bottom > top + 20 && bottom <= image.height,
        "{name}: the chart's box ({left}, {top}) – ({right}, {bottom}) is not in the window"
    );
    image.crop(left, top, right, bottom)
}

/// The number before `what` in a chart's label ("…; 53,313 successful sessions, …").
fn stated(label: &str, what: &str) -> f64 {
    let before = &label[..label
        .find(what)
        .unwrap_or_else(|| panic!("{what} in {label}"))];
    let number: String = before
        .trim_end()
        .rsplit(' ')
        .next()
        .unwrap()
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    number.parse().unwrap()
}

/// Records every CSP violation of the page in `window.cspViolations`.
const CSP_LISTENER: &str = "window.cspViolations = []; \
    document.addEventListener('securitypolicyviolation', \
      e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_the_report_charts() {
    let Some(binary) = chromium() else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(90), drive(&binary))
        .await
        .expect("the browser test took over 90 s");
}

async fn drive(binary: &Path) {
    let h = Harness::start().await;
    let Some(_seeded) = seed(&h).await else {
        return;
    };
    let shots = screenshot_dir();
    let profiles = tempfile::tempdir().unwrap();
    let profile = profiles.path().join("cdp");
    let mut args = base_args(&profile);
    args.push("--remote-debugging-port=0".to_owned());
    args.push("about:blank".to_owned());
    let mut browser = spawn(binary, &args);
    let mut page = Cdp::connect(&page_target(&profile).await).await;
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false}),
    )
    .await
    .unwrap();
    let blank = page.screenshot().await;
    assert_eq!(png_size(&blank), (WIDTH, HEIGHT));
    page.call("Page.enable", json!({})).await.unwrap();
    page.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": CSP_LISTENER}),
    )
    .await
    .unwrap();

    // Log in like a person.
    page.call("Page.navigate", json!({"url": h.url("/login")}))
        .await
        .unwrap();
    page.wait_for("location.pathname === '/login' && !!document.querySelector('form')")
        .await;
    let submit = format!(
        "document.querySelector('input[name=email]').value = {email}; \
         document.querySelector('input[name=password]').value = {password}; \
         document.querySelector('form[action=\"/login\"] button').click(); true",
        email = json!(h.alpha.owner_email),
        password = json!(PASSWORD),
    );
    page.eval(&submit).await.unwrap();
    page.wait_for("location.pathname === '/' && !!document.querySelector('tr.domain-row')")
        .await;

    // The listener works: an inline style attribute set from DevTools is refused and seen.
    page.eval(
        "document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>'); true",
    )
    .await
    .unwrap();
    page.wait_for("window.cspViolations.some(v => v.startsWith('style-src'))")
        .await;

    // The overview: a health badge per domain, coloured by the stylesheet.
    page.call("Page.navigate", json!({"url": h.url("/")}))
        .await
        .unwrap();
    page.wait_for("!!document.querySelector('td.health .badge')")
        .await;
    let badges = page
        .eval("Array.from(document.querySelectorAll('tr.domain-row')).map(r => r.querySelector('a').textContent + ' ' + r.querySelector('.badge.level').className).join('\\n')")
        .await
        .unwrap();
    let badges = badges.as_str().unwrap();
    assert!(
        badges.contains(&format!("{FAILING} badge level bad")),
        "{badges}"
    );
    assert!(
        badges.contains(&format!("{READY} badge level ok")),
        "{badges}"
    );
    no_violations(&mut page, "the overview").await;
    let png = page.screenshot().await;
    std::fs::write(shots.join("overview-health.png"), &png).unwrap();
    assert_screenshot(&png, blank.len(), "the overview");

    // The TLS page of the failing domain.
    page.call(
        "Page.navigate",
        json!({"url": h.url(&format!("/domains/{FAILING}/reports"))}),
    )
    .await
    .unwrap();
    page.wait_for("document.querySelectorAll('svg.chart-svg').length > 0")
        .await;
    let charts = page
        .eval("document.querySelectorAll('figure.chart svg.chart-svg').length")
        .await
        .unwrap();
    // Daily, by result, by MX, by receiving IP, by organization, by sending IP, sessions by org.
    assert_eq!(charts, json!(7), "charts on the TLS page");
    let daily = page
        .eval("(() => { const s = document.querySelector('figure.chart svg.chart-svg'); \
               return {label: s.getAttribute('aria-label'), role: s.getAttribute('role'), \
               ok: s.querySelectorAll('rect.chart-ok').length, bad: s.querySelectorAll('rect.chart-bad').length, \
               height: s.querySelector('rect.chart-bad').getBoundingClientRect().height, \
               fill: getComputedStyle(s.querySelector('rect.chart-bad')).fill}; })()")
        .await
        .unwrap();
    assert_eq!(daily["role"], "img");
    // One successful and one failed part for each of the ten days.
    assert_eq!(daily["ok"], json!(DAYS), "{daily}");
    assert_eq!(daily["bad"], json!(DAYS), "{daily}");
    assert!(daily["height"].as_f64().unwrap() > 0.5, "{daily}");
    // The stylesheet coloured the SVG under `style-src 'self'`.
    assert_eq!(daily["fill"], "rgb(208, 67, 58)", "{daily}");
    let label = daily["label"].as_str().unwrap();
    assert!(label.contains("Sessions per day"), "{label}");
    assert!(label.contains("3,030 failed sessions"), "{label}");
    let tooltips = page
        .eval("Array.from(document.querySelectorAll('rect title')).map(t => t.textContent).join('\\n')")
        .await
        .unwrap();
    let tooltips = tooltips.as_str().unwrap();
    assert!(
        tooltips.contains("starttls-not-supported: 2,000 failed sessions"),
        "{tooltips}"
    );
    // The hostile organization is text in the DOM, not an element.
    assert_eq!(
        page.eval("document.querySelectorAll('img').length")
            .await
            .unwrap(),
        json!(0)
    );
    assert!(tooltips.contains(HOSTILE), "{tooltips}");
    let table = page
        .eval("document.querySelectorAll('details.chart-data')[0].querySelectorAll('tbody tr').length")
        .await
        .unwrap();
    assert_eq!(table, json!(30), "one table row per day of the window");
    no_violations(&mut page, "the TLS page").await;
    let png = page.screenshot().await;
    std::fs::write(shots.join("tls-reports.png"), &png).unwrap();
    assert_screenshot(&png, blank.len(), "the TLS page");
    // The picture of the daily chart: both colours, failures in their share of the sessions
    // (edges blend into the background, so the share is judged loosely).
    let (ok, bad) = (fill_of("chart-ok"), fill_of("chart-bad"));
    let daily_svg = "document.querySelector('figure.chart svg.chart-svg')";
    let chart = chart_pixels(&mut page, daily_svg, blank.len(), "tls-daily-chart.png").await;
    let (ok_pixels, bad_pixels) = (chart.count(ok, TOLERANCE), chart.count(bad, TOLERANCE));
    let share = stated(label, "failed sessions") / stated(label, "successful sessions");
    let seen = bad_pixels as f64 / ok_pixels as f64;
    assert!(
        ok_pixels > 1000 && bad_pixels > 50,
        "the daily chart's picture: {ok_pixels} successful and {bad_pixels} failed pixels"
    );
    assert!(
        (0.7 * share..=1.3 * share).contains(&seen),
        "failed/successful pixels {seen:.4} for sessions {share:.4} ({label})"
    );
    assert_eq!(
        chart.count(fill_of("chart-warn"), TOLERANCE),
        0,
        "the TLS chart has no third series"
    );

    // The DMARC page.
    page.call(
        "Page.navigate",
        json!({"url": h.url(&format!("/domains/{FAILING}/dmarc"))}),
    )
    .await
    .unwrap();
    page.wait_for("document.querySelectorAll('svg.chart-svg').length > 0")
        .await;
    let dmarc = page
        .eval(
            "(() => { const f = Array.from(document.querySelectorAll('figure.chart')); \
               const by = t => f.find(x => x.querySelector('figcaption').textContent === t); \
               const d = by('Messages per day by disposition').querySelector('svg'); \
               return {none: d.querySelectorAll('rect.chart-ok').length, \
               quarantine: d.querySelectorAll('rect.chart-warn').length, \
               rate: by('DMARC pass rate').querySelector('svg').getAttribute('aria-label'), \
               sources: document.querySelectorAll('tr.source-row').length}; })()",
        )
        .await
        .unwrap();
    assert!(dmarc["none"].as_u64().unwrap() >= 1, "{dmarc}");
    assert!(
        dmarc["rate"].as_str().unwrap().contains("94.4% pass"),
        "{dmarc}"
    );
    assert!(dmarc["sources"].as_u64().unwrap() >= 2, "{dmarc}");
    no_violations(&mut page, "the DMARC page").await;
    let png = page.screenshot().await;
    std::fs::write(shots.join("dmarc-reports.png"), &png).unwrap();
    assert_screenshot(&png, blank.len(), "the DMARC page");
    // The pass-rate bar splits where the rate says: 94.4% of its coloured pixels pass (its
    // ends blend into the background, hence the margin).
    let rate_svg = "Array.from(document.querySelectorAll('figure.chart')).find(f => \
                    f.querySelector('figcaption').textContent === 'DMARC pass rate').querySelector('svg')";
    let bar = chart_pixels(&mut page, rate_svg, blank.len(), "dmarc-rate-chart.png").await;
    let (pass, fail) = (bar.count(ok, TOLERANCE), bar.count(bad, TOLERANCE));
    let rate = pass as f64 / (pass + fail) as f64;
    assert!(
        pass > 1000 && (0.924..=0.964).contains(&rate),
        "the pass-rate bar: {pass} passing and {fail} failing pixels ({rate:.3})"
    );
    let by_disposition = "Array.from(document.querySelectorAll('figure.chart')).find(f => \
                          f.querySelector('figcaption').textContent === 'Messages per day by disposition').querySelector('svg')";
    let chart = chart_pixels(
        &mut page,
        by_disposition,
        blank.len(),
        "dmarc-daily-chart.png",
    )
    .await;
    assert!(
        chart.count(ok, TOLERANCE) > 1000,
        "delivered messages drawn in the disposition chart"
    );

    // The clean domain's TLS chart: successes drawn, not one failure pixel.
    page.call(
        "Page.navigate",
        json!({"url": h.url(&format!("/domains/{READY}/reports"))}),
    )
    .await
    .unwrap();
    page.wait_for("document.querySelectorAll('svg.chart-svg').length > 0")
        .await;
    let chart = chart_pixels(&mut page, daily_svg, blank.len(), "tls-clean-chart.png").await;
    assert!(
        chart.count(ok, TOLERANCE) > 1000,
        "the clean domain's sessions"
    );
    assert_eq!(
        chart.count(bad, TOLERANCE),
        0,
        "failure colour on a domain without failures"
    );

    // The ready domain's page: the one button, then enforce published.
    page.call(
        "Page.navigate",
        json!({"url": h.url(&format!("/domains/{READY}"))}),
    )
    .await
    .unwrap();
    page.wait_for("!!document.querySelector('form.enforce button')")
        .await;
    let png = page.screenshot().await;
    std::fs::write(shots.join("ready.png"), &png).unwrap();
    assert_screenshot(&png, blank.len(), "the ready domain");
    page.eval("document.querySelector('form.enforce button').click(); true")
        .await
        .unwrap();
    page.wait_for("document.querySelectorAll('tr.version-row').length === 2")
        .await;
    let policy: Value = page
        .eval("document.querySelector('pre.policy').textContent")
        .await
        .unwrap();
    assert!(
        policy.as_str().unwrap().contains("mode: enforce"),
        "{policy}"
    );
    assert!(
        page.eval("!document.querySelector('form.enforce')")
            .await
            .unwrap()
            == json!(true)
    );

    let _ = browser.kill().await;
}

/// Fails when the page reported a CSP violation.
async fn no_violations(page: &mut Cdp, what: &str) {
    let seen = page.eval("window.cspViolations").await.unwrap();
    assert_eq!(seen, json!([]), "{what}: CSP violations");
}
