//! The report's page: one HTML document, inline CSS and SVG, no script.
//!
//! Every heatmap cell is an SVG `rect` carrying `data-symbol`, `data-dataset`, `data-series`,
//! `data-date`, `data-state`, `data-covered` (whether a final answer covers the day) and
//! `data-rows` (and `data-summary` on the summed-up option rows),
//! with a `title` child as its tooltip, so a test or a person's browser can read the states.

use super::heatmap::{CellState, HeatRow};
use super::svg::{self, Line, Part};
use super::Report;
use chrono::{DateTime, NaiveDate, Utc};
use std::fmt::Write;

/// Escapes text for HTML and XML (element content and quoted attributes).
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#212529;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dee2e6}
h3{font-size:15px;margin:16px 0 4px}.meta{color:#495057}.note{color:#6c757d;font-size:12px;max-width:1100px}
.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;margin:6px 0}
td,th{border:1px solid #dee2e6;padding:3px 8px;text-align:left}th{background:#f1f3f5}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
.s-present{fill:#2b8a3e;background:#2b8a3e}.s-empty{fill:#b2f2bb;background:#b2f2bb}
.s-not_final{fill:#fab005;background:#fab005}.s-missing{fill:#ced4da;background:#ced4da}
.s-failed{fill:#e03131;background:#e03131}.b-ok{fill:#1c7ed6}.b-empty{fill:#a5d8ff}.b-error{fill:#e03131}
.b-idle{fill:#f08c00}svg text{font:11px system-ui,sans-serif;fill:#343a40}.ctitle{font-weight:600;font-size:12px}
.grid{stroke:#e9ecef}.tick{fill:#495057}.surf{display:flex;flex-wrap:wrap;gap:12px}
summary{cursor:pointer;color:#1c7ed6;margin:6px 0}
";

/// The whole page.
pub(super) fn page(r: &Report) -> String {
    let mut s = String::with_capacity(64 * 1024);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = write!(s, "<title>twslake report: {}</title><style>{CSS}</style></head><body>", esc(&r.lake));
    let _ = write!(
        s,
        r#"<h1>twslake report</h1><p class="meta">lake <b>{}</b> &middot; made {} &middot; last finished session {}</p>"#,
        esc(&r.lake),
        r.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
        r.last_final
    );
    coverage(&mut s, r);
    requests(&mut s, r);
    chains(&mut s, r);
    gaps(&mut s, r);
    surfaces(&mut s, r);
    s.push_str("</body></html>\n");
    s
}

fn coverage(s: &mut String, r: &Report) {
    let _ =
        write!(s, r#"<section id="coverage" data-last-final="{}"><h2>Coverage</h2><p class="legend">"#, r.last_final);
    for st in CellState::ALL {
        let _ = write!(s, r#"<span><i class="s-{}"></i>{}</span>"#, st.name(), st.label());
    }
    s.push_str(
        r#"</p><p class="note">One column per trading day, one row per series; hover a cell for its date, state and rows. A series' days run from the first date it was asked for to the last finished session (an option contract's end at its expiry). The option row sums up the contracts: a day takes the worst state among them.</p>"#,
    );
    if r.rows.is_empty() {
        s.push_str("<p>No series asked for yet: nothing to show.</p>");
    }
    let mut symbols: Vec<&str> = r.rows.iter().map(|x| x.symbol.as_str()).collect();
    symbols.dedup();
    for sym in symbols {
        let _ = write!(s, "<h3>{}</h3>", esc(sym));
        let own: Vec<&HeatRow> = r.rows.iter().filter(|x| x.symbol == sym).collect();
        heat(s, &own);
        let contracts: Vec<&HeatRow> = r.contract_rows.iter().filter(|x| x.symbol == sym).collect();
        if !contracts.is_empty() {
            let _ = write!(s, "<details><summary>option contracts, one by one ({})</summary>", contracts.len());
            heat(s, &contracts);
            s.push_str("</details>");
        }
    }
    s.push_str("</section>");
}

/// One heatmap of rows sharing its columns (the trading days of their union).
fn heat(s: &mut String, rows: &[&HeatRow]) {
    let (Some(first), Some(last)) = (
        rows.iter().filter_map(|r| r.cells.first()).map(|c| c.date).min(),
        rows.iter().filter_map(|r| r.cells.last()).map(|c| c.date).max(),
    ) else {
        return;
    };
    let days = crate::calendar::trading_days(first, last);
    let col: std::collections::HashMap<NaiveDate, usize> = days.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    // Years of days fit the page's width (cells under a pixel wide blend, as a heatmap may);
    // a few days get wide cells.
    let (label_w, ch, top) = (290.0, 14.0, 18.0);
    let cw = (920.0 / days.len() as f64).clamp(0.25, 18.0);
    let (w, h) = (label_w + cw * days.len() as f64 + 10.0, top + ch * rows.len() as f64 + 4.0);
    let _ = write!(
        s,
        r#"<div class="scroll"><svg class="heatmap" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" shape-rendering="crispEdges">"#
    );
    // Ticks: every day when there are few, else the first day of each month, 56 px apart at least.
    let (mut month, mut last_x) = (None, f64::NEG_INFINITY);
    for (i, d) in days.iter().enumerate() {
        let (m, x) = (d.format("%Y-%m").to_string(), label_w + cw * i as f64);
        let text = if days.len() <= 31 { d.format("%m-%d").to_string() } else { m.clone() };
        if (days.len() <= 31 || month.as_ref() != Some(&m)) && x - last_x >= 56.0 && x + 50.0 <= w {
            let _ = write!(s, r#"<text x="{x:.1}" y="12" class="tick">{text}</text>"#);
            last_x = x;
        }
        month = Some(m);
    }
    for (j, row) in rows.iter().enumerate() {
        let y = top + ch * j as f64;
        let label = format!("{} {}", row.dataset, row.series);
        let _ = write!(s, r#"<text x="0" y="{:.1}">{}</text>"#, y + 11.0, esc(&label));
        for c in &row.cells {
            let Some(&i) = col.get(&c.date) else { continue };
            let x = label_w + cw * i as f64;
            let mut tip = format!("{} {}: {} ({} rows)", row.symbol, label, c.date, c.rows);
            let _ = write!(tip, ", {}", c.state.label());
            if let Some(per) = &c.contracts {
                let parts: Vec<String> = per.iter().map(|(st, n)| format!("{n} {}", st.label())).collect();
                let _ = write!(tip, "; contracts: {}", parts.join(", "));
            }
            let _ = write!(
                s,
                r#"<rect class="cell s-{st}" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" data-symbol="{}" data-dataset="{}" data-series="{}" data-date="{}" data-state="{st}" data-covered="{}" data-rows="{}"{}><title>{}</title></rect>"#,
                // Thin cells overlap their right neighbour a little: no white seams between them.
                if cw > 3.0 { cw - 0.6 } else { cw + 0.6 },
                ch - 2.0,
                esc(&row.symbol),
                row.dataset,
                esc(&row.series),
                c.date,
                u8::from(c.covered),
                c.rows,
                if row.summary { r#" data-summary="1""# } else { "" },
                esc(&tip),
                st = c.state.name(),
            );
        }
    }
    s.push_str("</svg></div>");
}

fn requests(s: &mut String, r: &Report) {
    s.push_str(r#"<section id="requests"><h2>Requests and pacing</h2>"#);
    if r.activity.is_empty() {
        s.push_str("<p>No requests recorded.</p></section>");
        return;
    }
    let labels: Vec<String> = r.activity.iter().map(|d| d.date.to_string()).collect();
    let counts: Vec<Vec<f64>> = r.activity.iter().map(|d| vec![d.ok as f64, d.empty as f64, d.errors as f64]).collect();
    let parts = [
        Part { label: "rows", class: "b-ok" },
        Part { label: "empty", class: "b-empty" },
        Part { label: "error", class: "b-error" },
    ];
    s.push_str(&svg::bars("requests-chart", "requests per day (New York date)", &labels, &parts, &counts, "requests"));
    let idle: Vec<Vec<f64>> = r.activity.iter().map(|d| vec![d.idle_secs]).collect();
    let part = [Part { label: "idle", class: "b-idle" }];
    s.push_str(&svg::bars("pacing-chart", "seconds waited between requests per day", &labels, &part, &idle, "s"));
    let total: usize = r.activity.iter().map(|d| d.requests()).sum();
    let _ = write!(
        s,
        r#"<p class="note">{total} requests over {} days. Pacing waits are not stored in the lake (they are a live process's metric, <code>twslake_pacing_wait_seconds_total</code>); the second chart shows what the manifest's timestamps tell: the time between one answer and the next request within a run (pauses over 15 minutes count as between runs and are left out), pacing waits included.</p></section>"#,
        r.activity.len()
    );
}

fn age(secs: i64) -> String {
    match secs {
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_else(|| "-".into())
}

fn chains(s: &mut String, r: &Report) {
    s.push_str(r#"<section id="chains"><h2>Chain snapshots</h2><table><tr><th>symbol</th><th>latest snapshot</th><th>age</th><th>snapshots</th></tr>"#);
    for c in &r.chains {
        let _ = write!(
            s,
            r#"<tr data-symbol="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&c.symbol),
            esc(&c.symbol),
            when(c.latest),
            c.age_secs.map(age).unwrap_or_else(|| "no snapshot".into()),
            c.snapshots
        );
    }
    s.push_str("</table></section>");
}

fn gaps(s: &mut String, r: &Report) {
    s.push_str(r#"<section id="gaps"><h2>Live capture gaps</h2>"#);
    if r.gaps.is_empty() {
        s.push_str("<p>No capture gap recorded.</p></section>");
        return;
    }
    s.push_str("<table><tr><th>symbol</th><th>from</th><th>to</th><th>lost</th></tr>");
    for g in &r.gaps {
        let _ = write!(
            s,
            r#"<tr data-symbol="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}s</td></tr>"#,
            esc(&g.symbol),
            esc(&g.symbol),
            when(Some(g.start)),
            when(Some(g.end)),
            (g.end - g.start).num_seconds()
        );
    }
    s.push_str("</table></section>");
}

fn surfaces(s: &mut String, r: &Report) {
    s.push_str(r#"<section id="surfaces"><h2>Latest surface per symbol</h2>"#);
    for p in &r.surfaces {
        let _ = write!(s, r#"<h3>{}</h3><div class="surf" data-symbol="{}">"#, esc(&p.symbol), esc(&p.symbol));
        let Some(at) = p.at else {
            let why = p.note.as_deref().unwrap_or("no surface");
            let _ = write!(s, "<p>{} (<code>twslake surfaces</code> stores them)</p></div>", esc(why));
            continue;
        };
        let how = if p.computed { "fitted now, not stored" } else { "stored" };
        let term = Line {
            label: "ATM vol".into(),
            points: p.slices.iter().filter_map(|x| Some((x.t * 365.0, x.atm_vol?))).collect(),
        };
        let title = format!("ATM term structure at {} ({how})", at.format("%Y-%m-%d %H:%M UTC"));
        s.push_str(&svg::lines("term", &title, "calendar days to expiry", "implied vol", &[term]));
        let smiles: Vec<Line> = p
            .slices
            .iter()
            .map(|x| {
                let half = (2.5 * x.atm_vol.unwrap_or(0.2) * x.t.max(0.0).sqrt()).clamp(0.03, 0.5);
                let points = (0..=40)
                    .filter_map(|i| {
                        let k = -half + 2.0 * half * i as f64 / 40.0;
                        Some((k, x.vol_at(k)?))
                    })
                    .collect();
                Line { label: x.expiry.to_string(), points }
            })
            .collect();
        let spot = p.spot.map(|v| format!(", spot {v:.2}")).unwrap_or_default();
        s.push_str(&svg::lines(
            "smile",
            &format!("smiles (SVI fits){spot}"),
            "log-moneyness ln(K/F)",
            "implied vol",
            &smiles,
        ));
        s.push_str("</div>");
    }
    s.push_str("</section>");
}
