//! The house rules of `ARCHITECTURE.md`, checked on the source itself:
//! - no module imports one on its own floor or a higher one (the floors are listed below, as in
//!   `ARCHITECTURE.md`);
//! - no file under `src/` over 500 lines;
//! - no string literal for a security type, a bar size or a what-to-show outside the ground
//!   floor and the parsers of outside input (the command line, and the simulator, which reads
//!   a client's requests as IB's gateway does).

use std::path::{Path, PathBuf};

/// Every top-level module of the crate and its floor; a module may import only modules on lower
/// floors. Keep in step with `ARCHITECTURE.md`.
const FLOORS: &[(&str, u8)] = &[
    ("error", 0),
    ("calendar", 1),
    ("clock", 1),
    ("domain", 2),
    ("datasets", 3),
    ("monitor", 3),
    ("pricing", 3),
    ("lake", 4),
    ("query", 5),
    ("source", 5),
    ("sim", 5),
    ("jobs", 6),
    ("live", 7),
    ("run", 8),
    ("cli", 9),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, with its path relative to `src/`.
fn files() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![src()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(src()).unwrap().display().to_string();
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The code of a file: comment lines dropped, and its test module (`#[cfg(test)]` onwards).
fn code(text: &str) -> Vec<(usize, &str)> {
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end]
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
        .collect()
}

/// The crate root's re-exports, by the module they come from.
const ROOT: &[(&str, &str)] = &[("Error", "error"), ("Result", "error"), ("Lake", "lake")];

fn floor(module: &str) -> Option<u8> {
    let module = ROOT.iter().find(|(name, _)| *name == module).map_or(module, |(_, from)| *from);
    FLOORS.iter().find(|(m, _)| *m == module).map(|(_, f)| *f)
}

/// The top-level modules a line names through `crate::…`.
fn named(line: &str) -> Vec<&str> {
    line.match_indices("crate::")
        .map(|(i, _)| {
            let rest = &line[i + "crate::".len()..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn no_module_imports_its_own_floor_or_a_higher_one() {
    let mut wrong = Vec::new();
    for (rel, text) in files() {
        let top = rel.split('/').next().unwrap().trim_end_matches(".rs");
        if top == "lib" || top == "main" {
            continue;
        }
        let own = floor(top).unwrap_or_else(|| panic!("src/{rel}: module {top} has no floor in FLOORS"));
        for (n, line) in code(&text) {
            for dep in named(line) {
                let dep = ROOT.iter().find(|(name, _)| *name == dep).map_or(dep, |(_, from)| *from);
                if dep == top {
                    continue;
                }
                let theirs = floor(dep).unwrap_or_else(|| panic!("src/{rel}:{n}: crate::{dep} has no floor"));
                if theirs >= own {
                    wrong.push(format!("src/{rel}:{n}: {top} (floor {own}) uses {dep} (floor {theirs})"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the floors of ARCHITECTURE.md:\n{}", wrong.join("\n"));
}

#[test]
fn no_file_is_over_500_lines() {
    let big: Vec<String> = files()
        .into_iter()
        .filter(|(_, text)| text.lines().count() > 500)
        .map(|(rel, text)| format!("src/{rel}: {} lines", text.lines().count()))
        .collect();
    assert!(big.is_empty(), "split by job (STYLE.md, small rooms):\n{}", big.join("\n"));
}

#[test]
fn security_types_bar_sizes_and_what_to_show_are_types_outside_the_ground_floor() {
    let codes = ["STK", "OPT", "TRADES", "MIDPOINT", "BID_ASK", "BID", "ASK", "ADJUSTED_LAST"];
    let units = ["sec", "secs", "min", "mins", "hour", "hours", "day", "week", "month"];
    let is_bar_size = |s: &str| {
        let mut it = s.splitn(2, ' ');
        matches!((it.next(), it.next()), (Some(n), Some(u)) if n.parse::<u32>().is_ok() && units.contains(&u))
    };
    let mut found = Vec::new();
    for (rel, text) in files() {
        // The ground floor defines them; the command line and the simulator parse outside text.
        if ["domain/", "cli/", "sim/"].iter().any(|p| rel.starts_with(p)) {
            continue;
        }
        for (n, line) in code(&text) {
            for lit in line.split('"').skip(1).step_by(2) {
                if codes.contains(&lit) || is_bar_size(lit) {
                    found.push(format!("src/{rel}:{n}: \"{lit}\""));
                }
            }
        }
    }
    assert!(found.is_empty(), "use the domain types (SecType, BarSize, WhatToShow):\n{}", found.join("\n"));
}
