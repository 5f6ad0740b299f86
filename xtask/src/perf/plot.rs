//! Pictures of a run: what the gateway answered, second by second (from its
//! access lines), as an SVG of three panels sharing one time axis:
//! answers per second (successes and failures), latency percentiles, and
//! failures per second; the run's phases as bands and its events (restarts,
//! kills, crashes) as marked vertical lines. Plain SVG: any browser or
//! image viewer shows it, and nothing here needs a font.

use std::fmt::Write as _;

use crate::native::access::Hop;

/// What happened at one instant of the run: `restart pedidos-1`.
#[derive(Debug, Clone)]
pub struct Mark {
    pub at_us: i64,
    pub label: String,
}

/// A phase of the run: `rolling restarts`, `chaos`.
#[derive(Debug, Clone)]
pub struct Band {
    pub from_us: i64,
    pub to_us: i64,
    pub label: String,
}

/// One second of the gateway's answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Second {
    pub ok: u64,
    pub failed: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The gateway's answers between `from_us` and `to_us`, by second of their end.
pub fn seconds(gateway: &[&Hop], from_us: i64, to_us: i64) -> Vec<Second> {
    let n = ((to_us - from_us).max(0) / 1_000_000 + 1) as usize;
    let mut durations: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut out = vec![Second::default(); n];
    for hop in gateway {
        if hop.end_us < from_us || hop.end_us > to_us {
            continue;
        }
        let s = ((hop.end_us - from_us) / 1_000_000) as usize;
        if hop.status < 400 {
            out[s].ok += 1;
        } else {
            out[s].failed += 1;
        }
        durations[s].push(hop.duration_ms());
    }
    for (second, mut d) in out.iter_mut().zip(durations) {
        d.sort_by(f64::total_cmp);
        let at = |q: f64| {
            d.get(((d.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .copied()
        };
        second.p50_ms = at(0.5).unwrap_or(0.0);
        second.p99_ms = at(0.99).unwrap_or(0.0);
    }
    out
}

/// A panel's name and its lines: label, colour, one value per second.
type Panel<'a> = (&'a str, Vec<(&'a str, &'a str, Vec<f64>)>);

const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const PANEL: f64 = 150.0;
const GAP: f64 = 40.0;
const TOP: f64 = 50.0;

/// The picture: `title` over three panels of `seconds` starting at `from_us`.
pub fn svg(
    title: &str,
    from_us: i64,
    seconds: &[Second],
    bands: &[Band],
    marks: &[Mark],
) -> String {
    // Room below the last panel for the marks' labels, written downwards.
    let height = TOP + 3.0 * (PANEL + GAP) + if marks.is_empty() { 20.0 } else { 170.0 };
    let span = seconds.len().max(1) as f64;
    let x = |secs: f64| LEFT + (WIDTH - LEFT - RIGHT) * secs / span;
    let at = |us: i64| x((us - from_us) as f64 / 1e6);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>
"#,
        escape(title)
    );
    let panels: [Panel; 3] = [
        (
            "answers / s",
            vec![
                (
                    "successes",
                    "#2b7bba",
                    seconds.iter().map(|p| p.ok as f64).collect(),
                ),
                (
                    "failures",
                    "#d62728",
                    seconds.iter().map(|p| p.failed as f64).collect(),
                ),
            ],
        ),
        (
            "latency ms",
            vec![
                ("p50", "#2ca02c", seconds.iter().map(|p| p.p50_ms).collect()),
                ("p99", "#9467bd", seconds.iter().map(|p| p.p99_ms).collect()),
            ],
        ),
        (
            "failures / s",
            vec![(
                "failures",
                "#d62728",
                seconds.iter().map(|p| p.failed as f64).collect(),
            )],
        ),
    ];
    for (n, (name, lines)) in panels.iter().enumerate() {
        let top = TOP + n as f64 * (PANEL + GAP);
        let max = lines
            .iter()
            .flat_map(|(_, _, v)| v.iter().copied())
            .fold(1.0_f64, f64::max)
            * 1.1;
        let y = |v: f64| top + PANEL - PANEL * v / max;
        for band in bands {
            let (a, b) = (at(band.from_us), at(band.to_us));
            let _ = writeln!(
                s,
                r##"<rect x="{a:.1}" y="{top}" width="{:.1}" height="{PANEL}" fill="#f2f2f2"/>"##,
                (b - a).max(0.0)
            );
            if n == 0 {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                    a + 3.0,
                    top - 4.0,
                    escape(&band.label)
                );
            }
        }
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{top}" width="{:.1}" height="{PANEL}" fill="none" stroke="#888"/>"##,
            WIDTH - LEFT - RIGHT
        );
        for tick in 0..=4 {
            let v = max * f64::from(tick) / 4.0;
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{v:.0}</text>"#,
                LEFT - 4.0,
                y(v) + 4.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="8" y="{:.1}" transform="rotate(-90 8 {:.1})" text-anchor="middle">{name}</text>"#,
            top + PANEL / 2.0,
            top + PANEL / 2.0
        );
        for (k, (label, color, values)) in lines.iter().enumerate() {
            let points: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{:.1},{:.1}", x(i as f64 + 0.5), y(*v)))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
                points.join(" ")
            );
            let lx = WIDTH - RIGHT - 90.0 * (lines.len() - k) as f64;
            let _ = writeln!(
                s,
                r#"<text x="{lx:.1}" y="{:.1}" fill="{color}">— {label}</text>"#,
                top + 14.0
            );
        }
        for mark in marks {
            let mx = at(mark.at_us);
            let _ = writeln!(
                s,
                r##"<line x1="{mx:.1}" y1="{top}" x2="{mx:.1}" y2="{:.1}" stroke="#ff7f0e" stroke-dasharray="3,3"/>"##,
                top + PANEL
            );
            if n == 2 {
                let ly = top + PANEL + 12.0;
                let _ = writeln!(
                    s,
                    r##"<text x="{mx:.1}" y="{ly:.1}" transform="rotate(30 {mx:.1} {ly:.1})" fill="#ff7f0e" font-size="9">{}</text>"##,
                    escape(&mark.label)
                );
            }
        }
    }
    let bottom = TOP + 3.0 * (PANEL + GAP) - GAP + 12.0;
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{:.0} s</text>"#,
        WIDTH - RIGHT,
        bottom + 24.0,
        span
    );
    s.push_str("</svg>\n");
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(end_us: i64, status: u16, ms: i64) -> Hop {
        Hop {
            trace_id: "t".into(),
            service: "api-gateway".into(),
            instance: "api-gateway-1".into(),
            method: "POST".into(),
            path: "/api/v1/orders".into(),
            status,
            start_us: end_us - ms * 1000,
            end_us,
        }
    }

    #[test]
    fn answers_are_counted_by_second_with_their_percentiles() {
        let hops = [
            hop(100, 201, 10),
            hop(200, 201, 30),
            hop(1_500_000, 503, 2),
            hop(9_000_000, 201, 1),
        ];
        let refs: Vec<&Hop> = hops.iter().collect();
        let s = seconds(&refs, 0, 2_000_000);
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].ok, s[0].failed, s[0].p50_ms, s[0].p99_ms),
            (2, 0, 10.0, 30.0)
        );
        assert_eq!((s[1].ok, s[1].failed), (0, 1));
        assert_eq!(s[2], Second::default());
    }

    #[test]
    fn the_picture_is_one_svg_with_every_band_and_mark() {
        let seconds = vec![
            Second {
                ok: 10,
                failed: 1,
                p50_ms: 5.0,
                p99_ms: 9.0
            };
            4
        ];
        let bands = [Band {
            from_us: 0,
            to_us: 2_000_000,
            label: "rolling <restarts>".into(),
        }];
        let marks = [Mark {
            at_us: 1_000_000,
            label: "kill -9 pedidos-1".into(),
        }];
        let svg = svg("drill", 0, &seconds, &bands, &marks);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("rolling &lt;restarts&gt;"));
        assert_eq!(svg.matches("kill -9 pedidos-1").count(), 1);
        assert_eq!(svg.matches("<polyline").count(), 5);
    }
}
