//! `twslake report`: the page's heatmap agrees with `status` cell by cell, `--out` is never
//! inside the lake, and `status --json | head -1` ends quietly. (The page in a real browser:
//! `tests/python/test_report.py`.)

use crate::support::twslake;
use std::collections::BTreeMap;
use twslake::query::report::{self, CellState, HeatRow, ReportOptions};

fn example_lake() -> (tempfile::TempDir, String, twslake::Lake) {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("lake").display().to_string();
    let lake = twslake::Lake::open(&url).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(twslake::lake::example::write_example(&lake)).unwrap();
    (dir, url, lake)
}

/// `status`'s missing windows of one row: runs of uncovered days from its first covered day to
/// the last finished session.
fn missing_windows(row: &HeatRow, last_final: chrono::NaiveDate) -> usize {
    let Some(first) = row.cells.iter().position(|c| c.covered) else { return 0 };
    let (mut runs, mut open) = (0, false);
    for c in row.cells[first..].iter().filter(|c| c.date <= last_final) {
        if !c.covered && !open {
            runs += 1;
        }
        open = !c.covered;
    }
    runs
}

#[test]
fn the_heatmap_agrees_with_status() {
    let (_dir, _url, lake) = example_lake();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let now = chrono::Utc::now();
    let r = rt.block_on(report::build(&lake, now, &ReportOptions::default())).unwrap();
    let status = rt.block_on(twslake::query::status::status(&lake, now)).unwrap();
    let mut seen: BTreeMap<(String, String), (u64, usize)> = BTreeMap::new();
    for row in r.rows.iter().filter(|x| !x.summary).chain(&r.contract_rows) {
        let e = seen.entry((row.symbol.clone(), row.dataset.to_string())).or_default();
        e.0 += row.cells.iter().map(|c| c.rows).sum::<u64>();
        e.1 += missing_windows(row, r.last_final);
        let first = row.cells.iter().find(|c| c.covered).map(|c| c.date);
        for c in &row.cells {
            let held_before = c.rows > 0 && first.is_some_and(|f| c.date < f);
            let ok = match c.state {
                CellState::Present => c.covered || held_before,
                CellState::Empty => c.covered,
                _ => !c.covered,
            };
            assert!(ok, "{} {}: {c:?}", row.symbol, row.series);
        }
    }
    assert!(!seen.is_empty(), "the example lake has series");
    for s in status.iter().filter(|s| ["equity_bars", "option_bars", "surfaces"].contains(&s.dataset.as_str())) {
        let Some(&(rows, missing)) = seen.get(&(s.symbol.clone(), s.dataset.clone())) else {
            assert_eq!(s.requests, 0, "{s:?} has requests but no heatmap row");
            continue;
        };
        assert_eq!(rows, s.rows, "rows of {} {}", s.symbol, s.dataset);
        assert_eq!(missing, s.missing_windows, "missing windows of {} {}", s.symbol, s.dataset);
    }
    let page = r.html();
    let cells = page.matches("<rect class=\"cell ").count();
    let expected: usize = r.rows.iter().chain(&r.contract_rows).map(|x| x.cells.len()).sum();
    assert_eq!(cells, expected, "one rect per cell");
    for forbidden in ["<script", "http://", "https://", "url(", "@import"] {
        assert!(!page.contains(forbidden), "self-contained: found {forbidden}");
    }
}

#[test]
fn report_writes_a_page_outside_the_lake_only() {
    let (dir, url, _lake) = example_lake();
    let out = dir.path().join("r.html");
    let (code, said, err) = twslake(&["report", "--lake", &url, "--out", out.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("wrote"), "{said}");
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("data-state=\""), "a page with cells");
    let inside = format!("{url}/report.html");
    let (code, _, err) = twslake(&["report", "--lake", &url, "--out", &inside], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--out") && err.contains("inside the lake"), "{err}");
    assert!(!std::path::Path::new(&inside).exists(), "nothing written inside the lake");
    let (code, _, err) = twslake(&["report", "--lake", &url, "--out", out.to_str().unwrap(), "--symbols", "NOPE"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("NOPE") && err.contains("twslake status"), "{err}");
    let (code, _, err) = twslake(&["report", "--lake", &url, "--from", "2024-06-01", "--to", "2024-01-01"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("--from"), "{err}");
}

/// `twslake status --json | head -1` as a shell runs it, on a lake whose status is larger than
/// a pipe holds: `head` leaves after the first line while `status` is still writing.
#[test]
fn status_json_piped_into_head_one_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    let (code, _, err) = twslake(&["synth-lake", "--lake", &lake, "--symbols", "400", "--years", "1"], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, json, _) = twslake(&["status", "--json", "--lake", &lake], &[]);
    assert_eq!(code, 0);
    // A pipe holds 64 KiB by default.
    assert!(json.len() > 80 * 1024, "status is larger than a pipe holds: {} bytes", json.len());
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            r#"set -o pipefail; "$0" status --json --lake "$1" | head -1"#,
            env!("CARGO_BIN_EXE_twslake"),
            &lake,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\n", "head printed the first line");
    assert_eq!(out.status.code(), Some(twslake::cli::EXIT_STDOUT_CLOSED), "{stderr}");
    assert!(stderr.is_empty(), "no panic, nothing on stderr: {stderr}");
}

/// A symbol without a stored surface gets one fitted from its latest option bars, or the page
/// says why it has none (here: the example lake's option bars are too few to fit one; the fitted
/// case is checked on the demo lake by `tests/python/test_report.py`).
#[test]
fn a_surface_not_stored_is_fitted_or_explained() {
    let (dir, _url, lake) = example_lake();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let now = chrono::Utc::now();
    let stored = rt.block_on(report::build(&lake, now, &ReportOptions::default())).unwrap().surfaces;
    let with = stored.iter().find(|p| p.at.is_some()).expect("the example lake stores a surface");
    assert!(!with.computed && !with.slices.is_empty(), "{with:?}");
    let encoded = twslake::domain::Symbol::new(&with.symbol).unwrap().encoded();
    std::fs::remove_dir_all(dir.path().join("lake").join("surfaces").join(format!("symbol={encoded}"))).unwrap();
    let r = rt.block_on(report::build(&lake, now, &ReportOptions::default())).unwrap();
    let now_pic = r.surfaces.iter().find(|p| p.symbol == with.symbol).unwrap();
    assert!(now_pic.at.is_none() && !now_pic.computed, "{now_pic:?}");
    let note = now_pic.note.as_deref().unwrap_or_default();
    assert!(note.contains("no surface stored") && note.contains("could be fitted"), "{note}");
    assert!(r.html().contains("no surface stored"), "the page says so");
}
