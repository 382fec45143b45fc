//! The timeline of first sightings as inline SVG: time on x, the cumulative number of items
//! per class on y (steps), one dot per sighting with its name as a tooltip (`<title>`, no
//! script).

use std::fmt::Write as _;

use super::html::{esc, time_text_ms};
use crate::store::bits::Class;
use crate::store::select::Sighting;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

/// A series of the chart: which classes it counts, its legend and colour.
struct Series {
    legend: &'static str,
    colour: &'static str,
    takes: fn(Class) -> bool,
}

const SERIES: [Series; 3] = [
    Series {
        legend: "syscalls",
        colour: "#2563eb",
        takes: |c| matches!(c, Class::Syscall(_)),
    },
    Series {
        legend: "capabilities granted",
        colour: "#16a34a",
        takes: |c| c == Class::CapGranted,
    },
    Series {
        legend: "capabilities denied",
        colour: "#dc2626",
        takes: |c| c == Class::CapDenied,
    },
];

fn class_text(class: Class) -> String {
    match class {
        Class::Syscall(abi) => format!("syscall ({abi})"),
        Class::CapGranted => "capability granted".to_string(),
        Class::CapDenied => "capability denied".to_string(),
    }
}

/// How long after the first sighting the last came: `48 ms`, `3.2 s`, `5 min`, `26 h`.
fn span_text(ms: i64) -> String {
    let span = match ms {
        ..=0 => return "all in the same millisecond".to_string(),
        1..=1_999 => format!("{ms} ms"),
        2_000..=119_999 => format!("{:.1} s", ms as f64 / 1000.0),
        120_000..=7_199_999 => format!("{} min", ms / 60_000),
        _ => format!("{} h", ms / 3_600_000),
    };
    format!("the last {span} after the first")
}

/// The chart, or a sentence saying why there is none.
pub fn timeline(sightings: &[Sighting]) -> String {
    let (Some(first), Some(last)) = (
        sightings.iter().map(|s| s.at_ms).min(),
        sightings.iter().map(|s| s.at_ms).max(),
    ) else {
        return "<p class=\"muted\">No first sightings in this selection.</p>".to_string();
    };
    // Time to the millisecond: a container's start-up is a burst of a few milliseconds.
    let span = (last - first).max(1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |ms: i64| LEFT + (ms - first) as f64 / span * plot_w;
    let counts: Vec<usize> = SERIES
        .iter()
        .map(|s| sightings.iter().filter(|x| (s.takes)(x.class)).count())
        .collect();
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let y = |n: usize| TOP + plot_h - n as f64 / max * plot_h;

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         role=\"img\" aria-label=\"Timeline of first sightings\">"
    );
    // Axes and labels.
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, TOP + plot_h, TOP);
    let _ = write!(
        svg,
        "<rect x=\"{x0}\" y=\"{y1}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"#f8fafc\" stroke=\"#cbd5e1\"/>\
         <text x=\"{x0}\" y=\"{}\" class=\"axis\">{}</text>\
         <text x=\"{x1}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">{}</text>\
         <text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"middle\">{}</text>\
         <text x=\"{}\" y=\"{y0}\" class=\"axis\" text-anchor=\"end\">0</text>\
         <text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">{}</text>",
        y0 + 16.0,
        esc(&time_text_ms(first)),
        y0 + 16.0,
        esc(&time_text_ms(last)),
        (x0 + x1) / 2.0,
        y0 + 16.0,
        esc(&span_text(last - first)),
        x0 - 6.0,
        x0 - 6.0,
        y1 + 10.0,
        max as usize,
    );
    for (series, total) in SERIES.iter().zip(&counts) {
        if *total == 0 {
            continue;
        }
        // Steps: flat until a sighting, then up by one.
        let mut points = format!("{:.1},{:.1}", x(first), y(0));
        let mut dots = String::new();
        let mut n = 0;
        for s in sightings.iter().filter(|s| (series.takes)(s.class)) {
            let px = x(s.at_ms);
            let _ = write!(points, " {px:.1},{:.1}", y(n));
            n += 1;
            let _ = write!(points, " {px:.1},{:.1}", y(n));
            let _ = write!(
                dots,
                "<circle cx=\"{px:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"><title>{} {} at {}</title></circle>",
                y(n),
                series.colour,
                esc(&class_text(s.class)),
                esc(&s.name),
                esc(&time_text_ms(s.at_ms)),
            );
        }
        let _ = write!(points, " {:.1},{:.1}", x(last).max(x(first) + 1.0), y(n));
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{points}\"/>{dots}",
            series.colour
        );
    }
    // Legend under the axis.
    let mut lx = LEFT + 180.0;
    for (series, total) in SERIES.iter().zip(&counts) {
        let _ = write!(
            svg,
            "<rect x=\"{lx}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" class=\"axis\">{} ({total})</text>",
            HEIGHT - 14.0,
            series.colour,
            lx + 16.0,
            HEIGHT - 4.0,
            series.legend,
        );
        lx += 210.0;
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Abi;

    #[test]
    fn a_dot_per_sighting_and_names_escaped() {
        let s = |at_ms, class, name: &str| Sighting {
            at_ms,
            class,
            name: name.to_string(),
        };
        let svg = timeline(&[
            s(1_000, Class::Syscall(Abi::X86_64), "read"),
            s(2_000, Class::Syscall(Abi::I386), "<b>"),
            s(3_000, Class::CapGranted, "chown"),
        ]);
        assert_eq!(svg.matches("<circle").count(), 3, "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "{svg}");
        assert!(timeline(&[]).contains("No first sightings"));
    }
}
