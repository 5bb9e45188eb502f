//! The simulated TWS gateway: the server side of the TWS API wire protocol on TCP, serving a
//! deterministic market with IB's refusals, pacing and faults, so the real `ibapi` client can be
//! driven without an account.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use twslake::sim::Sim;
//! let sim = Sim::builder().seed(7).pacing_scale(600.0).start().await?;
//! let client = ibapi::Client::connect(&sim.address(), 1).await.expect("connect");
//! # drop(client);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`wire`]: framing, handshake, frame limits.
//! - [`proto`]: our protobuf messages with the TWS field tags.
//! - [`market`]: the deterministic market (spot paths, sessions, options, the surface).
//! - [`conn`]: what a handler is handed: the shared gateway state and one connection.
//! - [`resolve`]: contract specs to instruments and back, as IB matches them.
//! - [`history`]: historical bars and head timestamps, IB's duration/bar-size table.
//! - [`contracts`], [`mktdata`]: contract details, option chains, market data.
//! - [`pacing`]: IB's four historical pacing rules, scaled.
//! - [`faults`]: drops, stalls, notices, malformed frames, refused connections.
//! - [`server`], [`session`]: accept loop, per-client sessions and dispatch.
//!
//! The handlers (`contracts`, `history`, `mktdata`) import the leaves (`conn`, `resolve`,
//! `market`, `proto`, `record`, `pacing`, `wire`) and not each other; `session` dispatches to
//! the handlers and `server` runs sessions. A test below holds the import graph acyclic. IB's
//! codes and texts come from [`crate::domain::codes`].
//! - [`record`]: the request journal and `--request-log`.
//! - [`truth`], [`cli`]: the ground truth and `twslake sim`.

//! # Behaviour, as a client sees it
//! - Handshake: server version 226 (or the client's highest in 215–226), the gateway time as
//!   `YYYYMMDD HH:MM:SS US/Eastern`, then NextValidId, ManagedAccounts (`DU1234567`) and the farm
//!   notices 2104/2106/2158. A client id already connected gets 326 and the socket closes.
//!   A client offering only versions below 215 (ib_async, ib_insync: `v157..178`, the text
//!   protocol) gets IB's error 506 "Unsupported version" at once, in the text framing it decodes,
//!   and the socket closes; one offering only versions above 226 is answered 226 and decides.
//! - Historical bars: exactly one bars message then the end message, whose start/end read
//!   `YYYYMMDD HH:MM:SS US/Eastern`; daily and longer bars dated `YYYYMMDD`, intraday bars as
//!   `YYYYMMDD HH:MM:SS US/Eastern` for `formatDate=1` (IB's default) and in epoch seconds for
//!   `formatDate=2` (`keepUpToDate` updates alike); head timestamps `YYYYMMDD-HH:MM:SS` (UTC) or
//!   epoch seconds; only completed minutes up to the market clock; regular hours only (`useRTH`
//!   is accepted either way). Volume/WAP/count are `-1` except for TRADES, as TWS sends.
//! - Refusals: 200 unknown or expired contract; 162 pacing, too fine a bar for the duration
//!   (IB's table), no data (no session in the window, bars ≤ 30 s older than six months);
//!   321 malformed bar size, duration, end or what-to-show; 354 market data for the
//!   unsubscribed symbol (MSFT by default) unless the client asked for delayed data; an option
//!   that did not trade answers TRADES with an empty bars message.
//! - `keepUpToDate`: after the bars and the end message, the latest bar at the market clock is
//!   sent again every second until the request is cancelled.
//! - Option computation ticks: the model tick and the bid/ask/last ticks carry their own implied
//!   volatility (inverted by the contract's exercise style) and price, and the greeks of the
//!   surface's volatility at the strike with IB's conventions (delta and gamma on the spot, vega
//!   per volatility point, theta per calendar day with the spot fixed): the American pricer's
//!   for American-style classes (every listed one today), Black's on the cash-dividend forward
//!   for European ones (see `market::american`, `market::options::SpotGreeks`).
//! - Corporate actions (`market::corporate`): quarterly cash dividends (SPY, QQQ, AAPL, MSFT;
//!   none for BRK B) and AAPL's 4:1 split with ex-date 2026-06-15. Bars, ticks, strikes and the
//!   truth are served adjusted for the splits whose ex-date is at or before the clock's date
//!   (prices ÷ ratio, volumes and option contracts × ratio, option con_ids, multiplier and
//!   trading class unchanged, as the OCC adjusts a whole-number split); `ADJUSTED_LAST` (daily
//!   or longer stock bars, no end date: 321 otherwise) is also back-adjusted for dividends.
//! - Not simulated: extended hours, real-time bars, tick-by-tick, orders. For sub-minute option bars the VWAP does not
//!   aggregate exactly to the minute (prices, volumes and counts do).

pub mod cli;
pub mod conn;
pub mod contracts;
pub mod faults;
pub mod history;
pub mod market;
pub mod mktdata;
pub mod pacing;
pub mod proto;
pub mod record;
pub mod resolve;
pub mod server;
pub mod session;
pub mod truth;
pub mod wire;

pub use faults::Fault;
pub use market::{Clock, ManualClock, WallClock};
pub use record::{Outcome, RequestRecord};
pub use server::{Sim, SimBuilder, SimHandle};

#[cfg(test)]
mod tests {
    //! The modules of `sim/` must not import each other in a circle: the handlers depend on the
    //! leaves (`conn`, `resolve`, `market`, …), the session on the handlers, the server on the
    //! session, and never back.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// The sibling modules of `sim/` each file under `src/sim/` refers to, by `super::…` paths
    /// that reach `sim` (one `super` from `sim/x.rs` or `sim/x/mod.rs`, two from `sim/x/y.rs`) or
    /// by `crate::sim::…`. Comments and the file's `#[cfg(test)]` module are left out (there
    /// `super` names the file itself). A name `mod.rs` re-exports (`Sim`) counts as its module.
    fn graph(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
        let root = std::fs::read_to_string(dir.join("mod.rs")).unwrap_or_default();
        let modules: BTreeSet<String> = root
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub mod ").and_then(|m| m.strip_suffix(';')))
            .map(str::to_string)
            .collect();
        let mut reexports = BTreeMap::new();
        for line in root.lines() {
            if let Some((m, rest)) = line.trim().strip_prefix("pub use ").and_then(|r| r.split_once("::")) {
                for name in idents(rest) {
                    reexports.insert(name, m.to_string());
                }
            }
        }
        let mut graph = BTreeMap::new();
        for (module, depth, path) in files(dir) {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let code: String =
                code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
            let deps: &mut BTreeSet<String> = graph.entry(module.clone()).or_default();
            for target in targets(&code, depth) {
                let target = reexports.get(&target).cloned().unwrap_or(target);
                if target != module && modules.contains(&target) {
                    deps.insert(target);
                }
            }
        }
        graph
    }

    /// Every `.rs` file under `dir` but `mod.rs`: its top module in `sim`, and how many `super`
    /// reach `sim` from it.
    fn files(dir: &Path) -> Vec<(String, usize, std::path::PathBuf)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().trim_end_matches(".rs").to_string();
            if path.is_dir() {
                for sub in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                    let depth = if sub.file_name() == "mod.rs" { 1 } else { 2 };
                    out.push((name.clone(), depth, sub.path()));
                }
            } else if name != "mod" {
                out.push((name, 1, path));
            }
        }
        out
    }

    /// The first names after each path in `code` that reaches `sim`.
    fn targets(code: &str, depth: usize) -> Vec<String> {
        let mut out = Vec::new();
        let bytes = code.as_bytes();
        let mut i = 0;
        while i < code.len() {
            let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'_' | b':'));
            let rest = &code[i..];
            let after = if !boundary {
                None
            } else if let Some(r) = rest.strip_prefix("crate::sim::") {
                Some(r)
            } else {
                let mut r = rest;
                let mut supers = 0;
                while let Some(next) = r.strip_prefix("super::") {
                    r = next;
                    supers += 1;
                }
                (supers == depth).then_some(r)
            };
            if let Some(r) = after {
                out.extend(idents(r));
            }
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
        out
    }

    /// The leading names of a path tail: `a::b` gives `a`, `{a, b::{c, d}, e}` gives `a, b, e`.
    fn idents(tail: &str) -> Vec<String> {
        let ident =
            |s: &str| s.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
        let Some(group) = tail.strip_prefix('{') else {
            return vec![ident(tail)];
        };
        let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
        for (k, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    out.push(ident(&group[start..k]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(ident(&group[start..k]));
                    start = k + 1;
                }
                _ => {}
            }
        }
        out.retain(|s| !s.is_empty());
        out
    }

    /// A cycle in `graph`, if any, as the path of modules around it.
    fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
        fn visit(
            m: &str,
            graph: &BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(at) = path.iter().position(|p| p == m) {
                let mut c = path[at..].to_vec();
                c.push(m.to_string());
                return Some(c);
            }
            if done.contains(m) {
                return None;
            }
            path.push(m.to_string());
            for d in graph.get(m).into_iter().flatten() {
                if let Some(c) = visit(d, graph, path, done) {
                    return Some(c);
                }
            }
            path.pop();
            done.insert(m.to_string());
            None
        }
        let mut done = BTreeSet::new();
        graph.keys().find_map(|m| visit(m, graph, &mut Vec::new(), &mut done))
    }

    #[test]
    fn sim_modules_import_each_other_without_a_cycle() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sim");
        let graph = graph(&dir);
        let edges = |m: &str| graph.get(m).cloned().unwrap_or_default();
        // The reader sees what it must: the known edges of the dispatch and of resolution.
        assert!(edges("session").contains("history") && edges("server").contains("session"), "{graph:?}");
        assert!(edges("history").contains("resolve") && edges("mktdata").contains("conn"), "{graph:?}");
        assert!(edges("cli").contains("server"), "{graph:?}");
        assert_eq!(cycle(&graph), None, "sim modules import each other in a circle: {graph:#?}");
    }

    #[test]
    fn the_cycle_check_sees_a_cycle() {
        let g = |edges: &[(&str, &str)]| {
            let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (a, b) in edges {
                g.entry(a.to_string()).or_default().insert(b.to_string());
            }
            g
        };
        let c = cycle(&g(&[("session", "history"), ("history", "conn"), ("history", "session")]));
        assert_eq!(c, Some(vec!["history".into(), "session".into(), "history".into()]));
        assert_eq!(cycle(&g(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
        assert_eq!(
            targets("use super::{conn::{Conn, OpenReq}, market};\nsuper::wire::frame()", 1),
            ["conn", "market", "wire"]
        );
        assert_eq!(
            targets("use super::spec::X; super::super::proto::Y; crate::sim::market::Z", 2),
            ["proto", "market"]
        );
    }
}
