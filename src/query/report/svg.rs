//! Inline SVG drawing for the report: a bar chart per day and an xy chart of lines. Hand-written
//! (a few dozen lines of `std::fmt::Write`): a plotting crate would bring fonts, a raster
//! backend or JavaScript for what is a few rectangles and polylines here.

use super::html::esc;
use std::fmt::Write;

/// Colours of successive lines (smiles), chosen to read on white.
pub(super) const PALETTE: [&str; 8] =
    ["#1c7ed6", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#0c8599", "#5f3dc4", "#868e96"];

/// One stacked part of a bar.
pub(super) struct Part {
    pub label: &'static str,
    pub class: &'static str,
}

/// A bar chart: one stacked bar per labelled value list (`values[i][j]` = part `j` of bar `i`).
pub(super) fn bars(
    id: &str,
    title: &str,
    labels: &[String],
    parts: &[Part],
    values: &[Vec<f64>],
    unit: &str,
) -> String {
    let (w, h, left, bottom, top) = (1100.0, 180.0, 60.0, 34.0, 22.0);
    let n = labels.len().max(1) as f64;
    let max = values.iter().map(|v| v.iter().sum::<f64>()).fold(0.0, f64::max).max(1e-9);
    let bw = ((w - left - 10.0) / n).min(40.0);
    let plot_h = h - bottom - top;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="{id}" class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{}">"#,
        esc(title)
    );
    let _ = write!(s, r#"<text x="{left}" y="14" class="ctitle">{}</text>"#, esc(title));
    for q in 0..=4 {
        let v = max * q as f64 / 4.0;
        let y = top + plot_h - plot_h * q as f64 / 4.0;
        let _ = write!(
            s,
            r#"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{}" y="{:.1}" class="tick" text-anchor="end">{}</text>"#,
            w - 10.0,
            left - 4.0,
            y + 4.0,
            short(v)
        );
    }
    let every = (72.0 / bw).ceil().max(1.0) as usize;
    for (i, (label, vals)) in labels.iter().zip(values).enumerate() {
        let x = left + i as f64 * bw;
        let mut y = top + plot_h;
        let total: f64 = vals.iter().sum();
        let _ = write!(s, "<g><title>{}: {} {}</title>", esc(label), short(total), esc(unit));
        for (v, part) in vals.iter().zip(parts) {
            let bh = plot_h * v / max;
            y -= bh;
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}" class="{}"/>"#,
                x + 1.0,
                (bw - 2.0).max(1.0),
                part.class
            );
        }
        s.push_str("</g>");
        if i % every == 0 {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{}" class="tick" text-anchor="middle">{}</text>"#,
                x + bw / 2.0,
                h - bottom + 14.0,
                esc(label)
            );
        }
    }
    let mut lx = left;
    for p in parts.iter().filter(|_| parts.len() > 1) {
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="{}" width="10" height="10" class="{}"/><text x="{}" y="{}" class="tick">{}</text>"#,
            h - 12.0,
            p.class,
            lx + 14.0,
            h - 3.0,
            esc(p.label)
        );
        lx += 110.0;
    }
    s.push_str("</svg>");
    s
}

/// One line of an xy chart.
pub(super) struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// An xy chart of lines with dots, axes ticked at their ranges.
pub(super) fn lines(class: &str, title: &str, x_label: &str, y_label: &str, lines: &[Line]) -> String {
    let (w, h, left, bottom, top, right) = (520.0, 300.0, 52.0, 40.0, 24.0, 120.0);
    let all: Vec<(f64, f64)> =
        lines.iter().flat_map(|l| l.points.iter().copied()).filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart {class}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{}">"#,
        esc(title)
    );
    let _ = write!(s, r#"<text x="{left}" y="15" class="ctitle">{}</text>"#, esc(title));
    if all.is_empty() {
        s.push_str(r#"<text x="60" y="120" class="tick">no points</text></svg>"#);
        return s;
    }
    let span = |f: fn(&(f64, f64)) -> f64| {
        let lo = all.iter().map(f).fold(f64::INFINITY, f64::min);
        let hi = all.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
        if hi - lo < 1e-9 {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        }
    };
    let ((x0, x1), (y0, y1)) = (span(|p| p.0), span(|p| p.1));
    let (pw, ph) = (w - left - right, h - top - bottom);
    let px = |x: f64| left + pw * (x - x0) / (x1 - x0);
    let py = |y: f64| top + ph - ph * (y - y0) / (y1 - y0);
    for q in 0..=4 {
        let f = q as f64 / 4.0;
        let (xv, yv) = (x0 + (x1 - x0) * f, y0 + (y1 - y0) * f);
        let _ = write!(
            s,
            r#"<line x1="{left}" x2="{:.1}" y1="{:.1}" y2="{:.1}" class="grid"/><text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{}</text><text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"#,
            left + pw,
            py(yv),
            py(yv),
            left - 4.0,
            py(yv) + 4.0,
            short(yv),
            px(xv),
            top + ph + 14.0,
            short(xv)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{}" class="tick" text-anchor="middle">{}</text><text x="12" y="{:.1}" class="tick" transform="rotate(-90 12 {:.1})" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        h - 6.0,
        esc(x_label),
        top + ph / 2.0,
        top + ph / 2.0,
        esc(y_label)
    );
    for (i, l) in lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let pts: Vec<String> = l
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.8"><title>{}</title></polyline>"#,
            pts.join(" "),
            esc(&l.label)
        );
        if l.points.len() <= 24 {
            for p in &pts {
                let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(s, r#"<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>"#);
            }
        }
        if i < 12 {
            let y = top + 10.0 + i as f64 * 16.0;
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="10" height="3" fill="{color}"/><text x="{:.1}" y="{:.1}" class="tick">{}</text>"#,
                left + pw + 10.0,
                y - 4.0,
                left + pw + 24.0,
                y,
                esc(&l.label)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// A number in a few characters.
pub(super) fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}
