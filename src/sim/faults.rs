//! Faults the simulator can inject, from the command line (`--fault …`) or from the library.

use std::fmt;
use std::str::FromStr;

/// A fault to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Close the first connection that has been sent `n` messages after its handshake, as a
    /// gateway restart or network cut would. Later connections are served normally.
    DropAfter(u64),
    /// Never answer requests of this kind (`historical`, `contract`, `chain`, `head`, `market`);
    /// they stay open until cancelled, as a hung HMDS farm leaves them.
    Stall(String),
    /// Send a request-less notice with this code (1100, 1101 or 1102) after `after` messages on
    /// each connection.
    Notice {
        /// The code.
        code: i32,
        /// Messages sent on the connection before the notice.
        after: u64,
    },
    /// Send one malformed frame (a length prefix too short for a message id) after `n` messages on
    /// the first connection that reaches it.
    MalformedAfter(u64),
    /// Accept connections and close them at once, before the handshake reply.
    RefuseConnections,
    /// Complete the handshake, then answer nothing at all (not even the clock), as IB Gateway
    /// does while it restarts behind a kept socket or waits for a login.
    Silent,
}

impl Fault {
    /// Whether `faults` make the gateway answer nothing after the handshake.
    pub fn silences(faults: &[Fault]) -> bool {
        faults.contains(&Fault::Silent)
    }
}

impl FromStr for Fault {
    type Err = String;

    /// `drop-after=N`, `stall=KIND`, `notice=CODE[@N]`, `malformed-after=N`, `refuse`, `silent`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, arg) = s.split_once('=').unwrap_or((s, ""));
        let num = |a: &str| a.parse::<u64>().map_err(|_| format!("fault {s:?}: expected a number"));
        match name {
            "drop-after" => Ok(Fault::DropAfter(num(arg)?)),
            "malformed-after" => Ok(Fault::MalformedAfter(num(arg)?)),
            "refuse" => Ok(Fault::RefuseConnections),
            "silent" => Ok(Fault::Silent),
            "stall" if ["historical", "contract", "chain", "head", "market"].contains(&arg) => Ok(Fault::Stall(arg.into())),
            "notice" => {
                let (code, after) = arg.split_once('@').unwrap_or((arg, "0"));
                let code = code.parse::<i32>().map_err(|_| format!("fault {s:?}: expected a code"))?;
                Ok(Fault::Notice { code, after: num(after)? })
            }
            _ => Err(format!(
                "unknown fault {s:?}: use drop-after=N, stall=historical|contract|chain|head|market, notice=CODE[@N], malformed-after=N, refuse or silent"
            )),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::DropAfter(n) => write!(f, "drop-after={n}"),
            Fault::Stall(k) => write!(f, "stall={k}"),
            Fault::Notice { code, after } => write!(f, "notice={code}@{after}"),
            Fault::MalformedAfter(n) => write!(f, "malformed-after={n}"),
            Fault::RefuseConnections => write!(f, "refuse"),
            Fault::Silent => write!(f, "silent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_round_trip_through_text() {
        for s in ["drop-after=5", "stall=historical", "notice=1100@3", "malformed-after=2", "refuse", "silent"] {
            let f: Fault = s.parse().unwrap_or(Fault::RefuseConnections);
            assert_eq!(f.to_string(), s);
        }
        assert!("stall=everything".parse::<Fault>().is_err());
        assert!("explode".parse::<Fault>().is_err());
    }
}
