//! The pacing ledger: one file per gateway address that every process on the machine reads and
//! appends to, under an exclusive file lock, before each paced request (see the decision in
//! [`super`]'s docs).
//!
//! The file is a few lines of text, one per request sent in the last window:
//! `<unix microseconds>\t<weight>\t<s|r>\t<contract key>\t<identical key>`. `s` marks a request
//! paced by the hard rules (it counts in the per-contract and global budgets), `r` one paced by
//! the relaxed rules (it counts for the identical-request rule only). A penalty after a pacing
//! violation is a line of weight 60 with empty keys: it fills the global budget of every process.
//! Each admission locks the file, reads it, drops lines older than the longest window, checks the
//! rules, appends its own line if admitted, rewrites the file in place and unlocks: at IB's
//! pace the file holds at most a few dozen lines (a few kB), read and written in well under a
//! millisecond. Lines that do not parse (a process killed in the middle of a rewrite) are dropped:
//! at worst that forgets the requests of one window, as a restart of one process would.
//!
//! Text lines rather than a binary format: the keys are short, a human can read the file, and no
//! hash has to stay stable across twslake versions that share a gateway.

use super::{PaceKey, PacingRules};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The state directory of twslake: `$TWSLAKE_STATE_DIR`, else `$XDG_STATE_HOME/twslake`, else
/// `~/.local/state/twslake`; `None` when none of them is set.
pub fn state_dir() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("TWSLAKE_STATE_DIR")
        .or_else(|| var("XDG_STATE_HOME").map(|d| d.join("twslake")))
        .or_else(|| var("HOME").map(|h| h.join(".local").join("state").join("twslake")))
}

/// The ledger file of a gateway address under `dir`: `pacing/<host>_<port>.ledger`, every byte
/// but letters, digits, `.` and `-` written as `_`. The address is not resolved: processes must
/// name one gateway the same way (`localhost:4002` and `127.0.0.1:4002` are two ledgers).
pub fn ledger_path(dir: &Path, gateway: &str) -> PathBuf {
    let name: String =
        gateway.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    dir.join("pacing").join(format!("{name}.ledger"))
}

/// One request in the ledger.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    at: u64,
    weight: u32,
    strict: bool,
    contract: String,
    identical: String,
}

impl Line {
    fn parse(s: &str) -> Option<Line> {
        let mut f = s.splitn(5, '\t');
        let at = f.next()?.parse().ok()?;
        let weight = f.next()?.parse().ok()?;
        let strict = match f.next()? {
            "s" => true,
            "r" => false,
            _ => return None,
        };
        Some(Line { at, weight, strict, contract: f.next()?.to_string(), identical: f.next()?.to_string() })
    }

    fn write(&self, out: &mut String) {
        let flag = if self.strict { "s" } else { "r" };
        out.push_str(&format!("{}\t{}\t{flag}\t{}\t{}\n", self.at, self.weight, self.contract, self.identical));
    }
}

/// Keys are ours, but a tab or a newline in one would break the line format.
fn clean(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(micros).unwrap_or(0)
}

/// The shared ledger of one gateway.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    /// The open file; the mutex serialises the tasks of this process (a file lock is held per
    /// open file, so two tasks of one process would both "hold" it).
    file: Mutex<File>,
}

impl Ledger {
    /// Opens (creating it and its folder) the ledger at `path`.
    pub fn open(path: &Path) -> std::io::Result<Ledger> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        Ok(Ledger { path: path.to_path_buf(), file: Mutex::new(file) })
    }

    /// Where it lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Under the lock: reads the lines, drops those older than `horizon`, lets `decide` look at
    /// them and add some, writes them back.
    fn with_lines<T>(&self, horizon: Duration, decide: impl FnOnce(&mut Vec<Line>, u64) -> T) -> std::io::Result<T> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.lock()?;
        let result: std::io::Result<T> = (|| {
            let mut text = String::new();
            file.seek(SeekFrom::Start(0))?;
            // Bytes that are not UTF-8 (a torn write) read as no lines at all.
            if file.read_to_string(&mut text).is_err() {
                text.clear();
            }
            let now = now_micros();
            let oldest = now.saturating_sub(micros(horizon));
            // Lines from the future (a clock stepped back) are kept only within one horizon.
            let newest = now.saturating_add(micros(horizon));
            let mut lines: Vec<Line> =
                text.lines().filter_map(Line::parse).filter(|l| l.at > oldest && l.at < newest).collect();
            let before = lines.len();
            let out = decide(&mut lines, now);
            if lines.len() != before || text.lines().count() != before {
                let mut s = String::with_capacity(lines.len() * 64);
                lines.iter().for_each(|l| l.write(&mut s));
                file.seek(SeekFrom::Start(0))?;
                file.set_len(0)?;
                file.write_all(s.as_bytes())?;
                file.flush()?;
            }
            Ok(out)
        })();
        let unlocked = file.unlock();
        let out = result?;
        unlocked?;
        Ok(out)
    }

    /// Admits `key` under `rules` if the requests of every process allow it now (recording it),
    /// else says how long to wait before asking again. `strict`: paced by the hard rules (counts
    /// in the per-contract and global budgets).
    pub fn try_admit(&self, rules: &PacingRules, key: &PaceKey, strict: bool) -> std::io::Result<Option<Duration>> {
        let horizon = rules.identical_window.max(rules.contract_window).max(rules.global_window);
        self.with_lines(horizon, |lines, now| {
            let t = earliest(rules, lines, key, now);
            if t > now {
                return Some(Duration::from_micros(t - now));
            }
            let (contract, identical) = (clean(&key.contract), clean(&key.identical));
            lines.push(Line { at: now, weight: key.weight, strict, contract, identical });
            None
        })
    }

    /// After a pacing violation: fills the global budget of every process for one window.
    pub fn penalize(&self, rules: &PacingRules) -> std::io::Result<()> {
        let horizon = rules.identical_window.max(rules.contract_window).max(rules.global_window);
        let weight = rules.global_max.min(60);
        self.with_lines(horizon, |lines, now| {
            lines.push(Line { at: now, weight, strict: true, contract: String::new(), identical: String::new() })
        })
    }
}

/// The earliest instant (unix µs) `key` may be sent given the ledger's `lines`: the in-process
/// scheduler's rules, over every process's requests.
fn earliest(r: &PacingRules, lines: &[Line], key: &PaceKey, now: u64) -> u64 {
    let (ident, contract_w, global_w) =
        (micros(r.identical_window), micros(r.contract_window), micros(r.global_window));
    let mut t = now;
    let identical = clean(&key.identical);
    if !identical.is_empty() {
        for l in lines.iter().filter(|l| l.identical == identical && l.at + ident > now) {
            t = t.max(l.at + ident);
        }
    }
    let strict: Vec<&Line> = lines.iter().filter(|l| l.strict).collect();
    if r.contract_max != u32::MAX {
        let contract = clean(&key.contract);
        let mut recent: Vec<u64> =
            strict.iter().filter(|l| l.contract == contract && l.at + contract_w > now).map(|l| l.at).collect();
        recent.sort_unstable();
        if recent.len() as u64 >= u64::from(r.contract_max) {
            t = t.max(recent[recent.len() - r.contract_max as usize] + contract_w);
        }
    }
    if r.global_max != u32::MAX {
        let mut recent: Vec<(u64, u32)> =
            strict.iter().filter(|l| l.at + global_w > now).map(|l| (l.at, l.weight)).collect();
        recent.sort_unstable();
        let mut used: u64 = recent.iter().map(|(_, w)| u64::from(*w)).sum();
        let (want, max) = (u64::from(key.weight), u64::from(r.global_max));
        if used + want > max {
            for (at, w) in recent {
                used -= u64::from(w);
                if used + want <= max {
                    t = t.max(at + global_w);
                    break;
                }
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32, contract: &str) -> PaceKey {
        PaceKey { identical: format!("{contract}-{i}"), contract: contract.into(), weight: 1 }
    }

    #[test]
    fn two_handles_share_one_budget() {
        let dir = tempfile::tempdir().unwrap();
        let path = ledger_path(dir.path(), "127.0.0.1:4002");
        assert!(path.ends_with("pacing/127.0.0.1_4002.ledger"));
        // Two processes: two handles on one file.
        let (a, b) = (Ledger::open(&path).unwrap(), Ledger::open(&path).unwrap());
        let rules = PacingRules::ib(1.0);
        for i in 0..30 {
            assert_eq!(a.try_admit(&rules, &key(i, &format!("a{i}")), true).unwrap(), None);
            assert_eq!(b.try_admit(&rules, &key(i, &format!("b{i}")), true).unwrap(), None);
        }
        // 60 in the window: the next one of either waits about ten minutes.
        let wait = a.try_admit(&rules, &key(99, "c"), true).unwrap().expect("the global budget is spent");
        assert!(wait > Duration::from_secs(590), "{wait:?}");
        // A relaxed request is not counted by the global rule, only the identical one.
        let relaxed = PacingRules::relaxed(1.0);
        assert_eq!(b.try_admit(&relaxed, &key(1, "d"), false).unwrap(), None);
        assert!(a.try_admit(&relaxed, &key(1, "d"), false).unwrap().is_some(), "identical across processes");
        assert!(a.try_admit(&relaxed, &key(0, "a0"), false).unwrap().is_some(), "identical to a strict one");
    }

    #[test]
    fn per_contract_rule_and_penalty_cross_processes() {
        let dir = tempfile::tempdir().unwrap();
        let path = ledger_path(dir.path(), "[::1]:7497");
        let (a, b) = (Ledger::open(&path).unwrap(), Ledger::open(&path).unwrap());
        let rules = PacingRules::ib(1.0);
        for i in 0..5 {
            let l = if i % 2 == 0 { &a } else { &b };
            assert_eq!(l.try_admit(&rules, &key(i, "spy"), true).unwrap(), None);
        }
        let wait = b.try_admit(&rules, &key(9, "spy"), true).unwrap().expect("five for one contract");
        assert!(wait > Duration::from_millis(1500) && wait <= Duration::from_millis(2300), "{wait:?}");
        assert_eq!(b.try_admit(&rules, &key(9, "qqq"), true).unwrap(), None, "another contract");
        a.penalize(&rules).unwrap();
        assert!(b.try_admit(&rules, &key(10, "iwm"), true).unwrap().is_some(), "a penalty stops every process");
    }

    #[test]
    fn old_and_torn_lines_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.ledger");
        let old = now_micros() - 3_600_000_000;
        std::fs::write(&path, format!("{old}\t60\ts\t\t\ngarbage\n{}\t1\ts\tc\tc-1\n\u{0}\u{1}", now_micros()))
            .unwrap();
        let l = Ledger::open(&path).unwrap();
        let rules = PacingRules::ib(1.0);
        assert_eq!(l.try_admit(&rules, &key(2, "c"), true).unwrap(), None, "the old penalty is gone");
        assert!(l.try_admit(&rules, &key(1, "c"), true).unwrap().is_some(), "the recent line is kept");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        assert_eq!(l.try_admit(&rules, &key(3, "c"), true).unwrap(), None, "bytes that are not text: no panic");
    }

    #[test]
    fn state_dir_prefers_twslake_state_dir() {
        // Read only: the variables of this process are not changed (tests run in parallel).
        if let Some(d) = std::env::var_os("TWSLAKE_STATE_DIR").filter(|v| !v.is_empty()) {
            assert_eq!(state_dir(), Some(PathBuf::from(d)));
        } else if std::env::var_os("XDG_STATE_HOME").is_none() && std::env::var_os("HOME").is_some() {
            assert!(state_dir().is_some_and(|d| d.ends_with(".local/state/twslake")));
        }
    }
}
