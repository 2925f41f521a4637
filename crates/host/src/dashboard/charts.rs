//! Charts as inline SVG: pure functions from numbers to markup, rendered on the server.
//!
//! The dashboard's CSP allows no script and no inline style, so a chart is an `<svg>` whose
//! shapes carry only geometry and a `class` (the colours are in `style.css`). Each chart is
//! a `<figure>` with `role="img"` and an `aria-label` that says what it shows in words,
//! a `<title>` on every bar (the browser's tooltip), and under it a `<table>` with the same
//! numbers, folded in a `<details>` so that screen readers, text browsers and people who want
//! the exact figures all get them. Nothing to draw gives a sentence ("No reports yet …"),
//! never an empty frame.
//!
//! Every text in a chart (organization names, MX hosts come from the network) goes through
//! [`escape`].

use std::fmt::Write as _;

use mtasts_proto::readiness::number::{percent, thousands};

use super::html::escape;

/// The drawing's coordinate width; the SVG scales to its box (`viewBox`).
const WIDTH: u32 = 760;
/// The daily chart's plot height.
const PLOT_HEIGHT: u32 = 180;
/// Room left of the plot for the y-axis labels.
const LEFT: u32 = 56;
/// Room under the plot for the x-axis labels.
const BOTTOM: u32 = 24;
/// Room above the plot.
const TOP: u32 = 10;
/// One row of a bar list.
const ROW_HEIGHT: u32 = 22;
/// Width of a bar list's label column.
const LABEL_WIDTH: u32 = 260;
/// A bar list shows this many rows; the rest are summed into "N others".
pub(crate) const MAX_ROWS: usize = 12;
/// Longest label drawn in a bar list (the table under it has the whole text).
const MAX_LABEL_CHARS: usize = 38;

/// One stacked part of a daily bar: what it counts and the CSS class that colours it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Series {
    /// What a person reads: `successful sessions`, `quarantined`.
    pub name: &'static str,
    /// The class in `style.css` (`chart-ok`, `chart-bad`, …).
    pub class: &'static str,
}

/// One day of a stacked chart: its label and one value per [`Series`].
#[derive(Clone, Debug)]
pub(crate) struct Column {
    /// The day, `2026-12-01`.
    pub label: String,
    /// One value per series, in the series' order.
    pub values: Vec<u64>,
}

/// A labelled count of a bar list.
#[derive(Clone, Debug)]
pub(crate) struct Bar {
    /// What is counted (a result type, an MX host, an IP address, an organization).
    pub label: String,
    /// How many.
    pub value: u64,
}

/// Stacked daily bars: one column per day, each stacked bottom-up in the series' order.
/// `title` names the chart; `empty` is said instead when every value is zero.
pub(crate) fn stacked_days(
    title: &str,
    series: &[Series],
    columns: &[Column],
    empty: &str,
) -> String {
    let totals: Vec<u64> = columns.iter().map(|c| c.values.iter().sum()).collect();
    let max = totals.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return no_data(title, empty);
    }
    let top = nice_ceiling(max);
    let height = TOP + PLOT_HEIGHT + BOTTOM;
    let plot_width = WIDTH - LEFT - 4;
    let slot = f64::from(plot_width) / columns.len() as f64;
    // A gap between bars while they are wide enough to show one.
    let bar = if slot >= 4.0 { slot * 0.8 } else { slot };
    let mut svg = String::new();
    let sums: Vec<u64> = (0..series.len())
        .map(|i| columns.iter().map(|c| value_at(c, i)).sum())
        .collect();
    let label = format!(
        "{title}: {} days; {}",
        columns.len(),
        series
            .iter()
            .zip(&sums)
            .map(|(s, n)| format!("{} {}", thousands(*n), s.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = write!(
        svg,
        r#"<svg class="chart-svg" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>"#,
        label = escape(&label),
    );
    // The y axis: 0, half and the top, with grid lines.
    for fraction in [0u64, 1, 2] {
        let value = top * fraction / 2;
        let y = f64::from(TOP) + f64::from(PLOT_HEIGHT) * (1.0 - fraction as f64 / 2.0);
        let _ = write!(
            svg,
            r#"<line class="chart-grid" x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}"/><text class="chart-axis" x="{tx}" y="{ty:.1}" text-anchor="end">{value}</text>"#,
            x2 = WIDTH - 4,
            tx = LEFT - 6,
            ty = y + 4.0,
            value = thousands(value),
        );
    }
    for (i, column) in columns.iter().enumerate() {
        let x = f64::from(LEFT) + slot * i as f64 + (slot - bar) / 2.0;
        let mut base = f64::from(TOP + PLOT_HEIGHT);
        for (s, part) in series.iter().enumerate() {
            let value = value_at(column, s);
            if value == 0 {
                continue;
            }
            let h = f64::from(PLOT_HEIGHT) * value as f64 / top as f64;
            base -= h;
            let _ = write!(
                svg,
                r#"<rect class="chart-bar {class}" x="{x:.2}" y="{base:.2}" width="{bar:.2}" height="{h:.2}"><title>{tip}</title></rect>"#,
                class = part.class,
                tip = escape(&format!(
                    "{}: {} {}",
                    column.label,
                    thousands(value),
                    part.name
                )),
            );
        }
    }
    // The x axis: the first, middle and last day.
    let picks = axis_picks(columns.len());
    for i in picks {
        let x = f64::from(LEFT) + slot * (i as f64 + 0.5);
        let anchor = if i == 0 {
            "start"
        } else if i + 1 == columns.len() {
            "end"
        } else {
            "middle"
        };
        let x = match anchor {
            "start" => f64::from(LEFT),
            "end" => f64::from(WIDTH - 4),
            _ => x,
        };
        let _ = write!(
            svg,
            r#"<text class="chart-axis" x="{x:.1}" y="{y}" text-anchor="{anchor}">{day}</text>"#,
            y = height - 6,
            day = escape(&columns[i].label),
        );
    }
    svg.push_str("</svg>");
    let legend: String = series
        .iter()
        .map(|s| {
            format!(
                r#"<span class="legend-item"><svg class="legend-swatch" viewBox="0 0 10 10" aria-hidden="true"><rect class="{class}" width="10" height="10"/></svg>{name}</span>"#,
                class = s.class,
                name = escape(s.name),
            )
        })
        .collect();
    let mut rows = String::new();
    for column in columns.iter().rev() {
        let cells: String = (0..series.len())
            .map(|s| format!("<td>{}</td>", thousands(value_at(column, s))))
            .collect();
        let _ = write!(rows, "<tr><td>{}</td>{cells}</tr>", escape(&column.label));
    }
    let heads: String = series
        .iter()
        .map(|s| format!("<th>{}</th>", escape(s.name)))
        .collect();
    figure(
        title,
        &format!(r#"{svg}<p class="legend">{legend}</p>"#),
        &format!("<thead><tr><th>Day</th>{heads}</tr></thead><tbody>{rows}</tbody>"),
    )
}

/// Horizontal bars, largest first as given: at most [`MAX_ROWS`] rows, the rest summed into
/// one "N others" row. `unit` names what is counted (`failed sessions`).
pub(crate) fn bar_list(title: &str, unit: &str, class: &str, bars: &[Bar], empty: &str) -> String {
    let bars: Vec<&Bar> = bars.iter().filter(|b| b.value > 0).collect();
    if bars.is_empty() {
        return no_data(title, empty);
    }
    let shown = bars.len().min(MAX_ROWS);
    let rest: u64 = bars[shown..].iter().map(|b| b.value).sum();
    let others = (bars.len() > shown).then(|| Bar {
        label: format!("{} others", bars.len() - shown),
        value: rest,
    });
    let drawn: Vec<&Bar> = bars[..shown]
        .iter()
        .copied()
        .chain(others.as_ref())
        .collect();
    let max = drawn.iter().map(|b| b.value).max().unwrap_or(1).max(1);
    let total: u64 = bars.iter().map(|b| b.value).sum();
    let height = ROW_HEIGHT * drawn.len() as u32 + 4;
    let bar_space = WIDTH - LABEL_WIDTH - 90;
    let label = format!(
        "{title}: {} {unit} in {} groups; largest {} with {}",
        thousands(total),
        bars.len(),
        bars[0].label,
        thousands(bars[0].value)
    );
    let mut svg = format!(
        r#"<svg class="chart-svg" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>"#,
        label = escape(&label),
    );
    for (i, bar) in drawn.iter().enumerate() {
        let y = ROW_HEIGHT * i as u32 + 2;
        let width = (f64::from(bar_space) * bar.value as f64 / max as f64).max(1.0);
        let _ = write!(
            svg,
            r#"<text class="chart-label" x="{lx}" y="{ty}" text-anchor="end">{name}</text><rect class="chart-bar {class}" x="{LABEL_WIDTH}" y="{y}" width="{width:.2}" height="{bh}"><title>{tip}</title></rect><text class="chart-value" x="{vx:.1}" y="{ty}">{value}</text>"#,
            lx = LABEL_WIDTH - 8,
            ty = y + 15,
            name = escape(&shorten(&bar.label)),
            class = css_class(class),
            bh = ROW_HEIGHT - 6,
            tip = escape(&format!("{}: {} {unit}", bar.label, thousands(bar.value))),
            vx = f64::from(LABEL_WIDTH) + width + 6.0,
            value = thousands(bar.value),
        );
    }
    svg.push_str("</svg>");
    let mut rows = String::new();
    for bar in &bars {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&bar.label),
            thousands(bar.value)
        );
    }
    figure(
        title,
        &svg,
        &format!(
            "<thead><tr><th>What</th><th>{}</th></tr></thead><tbody>{rows}</tbody>",
            escape(unit)
        ),
    )
}

/// One bar split into passing and failing parts, with the pass rate written beside it.
pub(crate) fn pass_rate(title: &str, pass: u64, total: u64, empty: &str) -> String {
    if total == 0 {
        return no_data(title, empty);
    }
    let pass = pass.min(total);
    let fail = total - pass;
    let rate = percent(pass, total).unwrap_or_default();
    let bar_space = WIDTH - 120;
    let pass_width = f64::from(bar_space) * pass as f64 / total as f64;
    let label = format!(
        "{title}: {rate} pass, {} of {} messages",
        thousands(pass),
        thousands(total)
    );
    let mut svg = format!(
        r#"<svg class="chart-svg chart-rate" viewBox="0 0 {WIDTH} 36" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>"#,
        label = escape(&label),
    );
    if pass > 0 {
        let _ = write!(
            svg,
            r#"<rect class="chart-bar chart-ok" x="0" y="4" width="{pass_width:.2}" height="26"><title>{} passed</title></rect>"#,
            thousands(pass)
        );
    }
    if fail > 0 {
        let _ = write!(
            svg,
            r#"<rect class="chart-bar chart-bad" x="{pass_width:.2}" y="4" width="{w:.2}" height="26"><title>{} failed</title></rect>"#,
            thousands(fail),
            w = f64::from(bar_space) - pass_width,
        );
    }
    let _ = write!(
        svg,
        r#"<text class="chart-rate-text" x="{x}" y="23">{rate}</text></svg>"#,
        x = bar_space + 10,
        rate = escape(&rate),
    );
    figure(
        title,
        &svg,
        &format!(
            "<thead><tr><th>Passed</th><th>Failed</th><th>Pass rate</th></tr></thead><tbody><tr><td>{}</td><td>{}</td><td>{}</td></tr></tbody>",
            thousands(pass),
            thousands(fail),
            escape(&rate)
        ),
    )
}

/// The chart with its title and its numbers as a table.
fn figure(title: &str, drawing: &str, table: &str) -> String {
    format!(
        r#"<figure class="chart"><figcaption>{title}</figcaption>{drawing}<details class="chart-data"><summary>Numbers</summary><table>{table}</table></details></figure>"#,
        title = escape(title),
    )
}

/// What a chart says when there is nothing to draw.
fn no_data(title: &str, empty: &str) -> String {
    format!(
        r#"<figure class="chart chart-empty"><figcaption>{}</figcaption><p class="muted">{}</p></figure>"#,
        escape(title),
        escape(empty)
    )
}

fn value_at(column: &Column, series: usize) -> u64 {
    column.values.get(series).copied().unwrap_or(0)
}

/// The smallest of 1, 2, 5 × 10ⁿ that is at least `max`: a y axis with round labels.
fn nice_ceiling(max: u64) -> u64 {
    let mut unit = 1u64;
    loop {
        for step in [1, 2, 5] {
            if let Some(top) = unit.checked_mul(step)
                && top >= max
            {
                return top;
            }
        }
        match unit.checked_mul(10) {
            Some(next) => unit = next,
            None => return max,
        }
    }
}

/// Which columns get a day label: the first, the middle and the last (fewer when there are
/// fewer).
fn axis_picks(len: usize) -> Vec<usize> {
    let mut picks = vec![0, len / 2, len.saturating_sub(1)];
    picks.dedup();
    picks.retain(|&i| i < len);
    picks
}

fn shorten(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        return label.to_owned();
    }
    let mut short: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
    short.push('…');
    short
}

/// Only the chart classes of `style.css` become class names.
fn css_class(class: &str) -> &'static str {
    match class {
        "chart-ok" => "chart-ok",
        "chart-bad" => "chart-bad",
        "chart-warn" => "chart-warn",
        _ => "chart-neutral",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TLS: [Series; 2] = [
        Series {
            name: "successful sessions",
            class: "chart-ok",
        },
        Series {
            name: "failed sessions",
            class: "chart-bad",
        },
    ];

    fn day(label: &str, values: &[u64]) -> Column {
        Column {
            label: label.to_owned(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn stacked_days_draw_one_rect_per_nonzero_part() {
        let columns = [
            day("2026-12-01", &[10, 0]),
            day("2026-12-02", &[0, 0]),
            day("2026-12-03", &[7, 3]),
        ];
        let svg = stacked_days("Sessions per day", &TLS, &columns, "No reports yet");
        assert_eq!(svg.matches("<rect class=\"chart-bar").count(), 3, "{svg}");
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains(
            "aria-label=\"Sessions per day: 3 days; 17 successful sessions, 3 failed sessions\""
        ));
        assert!(svg.contains("<title>2026-12-03: 3 failed sessions</title>"));
        // The y axis tops at a round number at or above the largest day.
        assert!(svg.contains(">10</text>"));
        assert!(svg.contains(">5</text>"));
        // Every day is a table row, the newest first.
        let table = &svg[svg.find("<table>").unwrap()..];
        assert_eq!(table.matches("<tr><td>").count(), 3);
        assert!(table.find("2026-12-03").unwrap() < table.find("2026-12-01").unwrap());
        assert!(table.contains("<tr><td>2026-12-03</td><td>7</td><td>3</td></tr>"));
    }

    #[test]
    fn bars_stack_to_the_days_total() {
        let svg = stacked_days("x", &TLS, &[day("d", &[60, 40])], "none");
        // top = 100: the two parts are 60% and 40% of the 180-unit plot.
        assert!(svg.contains("height=\"108.00\""), "{svg}");
        assert!(svg.contains("height=\"72.00\""), "{svg}");
        assert!(
            svg.contains("y=\"10.00\""),
            "the stack reaches the top: {svg}"
        );
    }

    #[test]
    fn nothing_to_draw_says_so() {
        let zero = [day("2026-12-01", &[0, 0])];
        for out in [
            stacked_days("Sessions", &TLS, &zero, "No reports yet for these days."),
            stacked_days("Sessions", &TLS, &[], "No reports yet for these days."),
            bar_list(
                "By MX",
                "failed sessions",
                "chart-bad",
                &[],
                "No reports yet for these days.",
            ),
            pass_rate("Pass rate", 0, 0, "No reports yet for these days."),
        ] {
            assert!(!out.contains("<svg"), "{out}");
            assert!(out.contains("No reports yet for these days."), "{out}");
        }
    }

    #[test]
    fn hostile_text_is_escaped_everywhere() {
        let evil = r#"<script>alert(1)</script>" onload="x"#;
        let bars = [Bar {
            label: evil.to_owned(),
            value: 5,
        }];
        let out = bar_list(evil, evil, "\"><x", &bars, evil);
        assert!(!out.contains("<script>"), "{out}");
        assert!(!out.contains("\" onload"), "{out}");
        assert!(out.contains("&lt;script&gt;"));
        assert!(
            out.contains("chart-neutral"),
            "an unknown class is not echoed"
        );
        let out = stacked_days(evil, &TLS, &[day(evil, &[1, 1])], evil);
        assert!(!out.contains("<script>"), "{out}");
        assert!(!out.contains("\" onload"), "{out}");
    }

    #[test]
    fn bar_lists_keep_the_largest_and_sum_the_rest() {
        let bars: Vec<Bar> = (0..20)
            .map(|i| Bar {
                label: format!("mx{i}.example.net"),
                value: 100 - i,
            })
            .collect();
        let out = bar_list("By MX", "failed sessions", "chart-bad", &bars, "none");
        assert_eq!(out.matches("<rect").count(), MAX_ROWS + 1);
        // The 8 smallest: 81+82+…+88.
        assert!(
            out.contains("<title>8 others: 676 failed sessions</title>"),
            "{out}"
        );
        // The table has every row.
        assert_eq!(out.matches("<tr><td>").count(), 20);
        assert!(out.contains("largest mx0.example.net with 100"));
    }

    #[test]
    fn long_labels_are_shortened_in_the_drawing_only() {
        let long = "a-very-long-reporting-organization-name.example.com";
        let out = bar_list(
            "x",
            "reports",
            "chart-ok",
            &[Bar {
                label: long.to_owned(),
                value: 1,
            }],
            "none",
        );
        assert!(out.contains("a-very-long-reporting-organization-na…"));
        assert!(out.contains(&format!("<td>{long}</td>")));
    }

    #[test]
    fn pass_rate_splits_the_bar() {
        let out = pass_rate("DMARC pass rate", 972, 1000, "none");
        assert!(out.contains(">97.2%</text>"), "{out}");
        assert_eq!(out.matches("<rect").count(), 2);
        assert!(out.contains("<title>28 failed</title>"));
        let all = pass_rate("DMARC pass rate", 5, 5, "none");
        assert_eq!(all.matches("<rect").count(), 1);
        assert!(all.contains(">100%</text>"));
    }

    #[test]
    fn round_axis_tops() {
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(17), 20);
        assert_eq!(nice_ceiling(100), 100);
        assert_eq!(nice_ceiling(101), 200);
        assert_eq!(nice_ceiling(u64::MAX), u64::MAX);
        assert_eq!(axis_picks(0), Vec::<usize>::new());
        assert_eq!(axis_picks(1), vec![0]);
        assert_eq!(axis_picks(30), vec![0, 15, 29]);
    }
}
