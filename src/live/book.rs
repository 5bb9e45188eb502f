//! The quote book: the current state of every subscribed contract, and the row each tick makes.

use crate::calendar;
use crate::datasets::quotes::Quote;
use crate::domain::SecType;
use crate::source::{ComputationKind, Side, StreamContract, Tick};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The state of each contract's quote, and the sequence that orders rows.
#[derive(Debug, Default)]
pub struct Book {
    states: HashMap<i64, Quote>,
    seq: i64,
}

impl Book {
    /// A book whose rows are numbered from `next_seq` (past every `seq` already stored, so a
    /// restarted capture never reuses a primary key).
    pub fn new(next_seq: i64) -> Self {
        Book { states: HashMap::new(), seq: next_seq }
    }

    /// The next sequence number.
    pub fn next_seq(&self) -> i64 {
        self.seq
    }

    /// A contract's current state.
    pub fn state(&self, con_id: i64) -> Option<&Quote> {
        self.states.get(&con_id)
    }

    /// Applies a tick to the contract's state; the row is the state after it, or `None` for a
    /// tick that changes nothing stored (IB's bid/ask/last computations: the row keeps the model's).
    pub fn apply(&mut self, c: &StreamContract, tick: &Tick, at: DateTime<Utc>) -> Option<Quote> {
        let q = self.states.entry(c.con_id).or_insert_with(|| Quote {
            con_id: c.con_id,
            sec_type: c.sec_type,
            expiry: c.expiry,
            strike: c.strike,
            right: c.right,
            ..Default::default()
        });
        match *tick {
            Tick::Price { side, price } => *slot(q, side, false) = price,
            Tick::Size { side, size } => *slot(q, side, true) = size,
            Tick::Computation { kind: ComputationKind::Model, values } if c.sec_type == SecType::Option => {
                q.implied_vol = values.implied_vol;
                q.delta = values.delta;
                q.gamma = values.gamma;
                q.vega = values.vega;
                q.theta = values.theta;
                q.underlying_price = values.underlying_price;
            }
            Tick::Computation { .. } => return None,
        }
        q.ts = at;
        q.date = calendar::trading_date(at);
        q.seq = self.seq;
        self.seq += 1;
        Some(q.clone())
    }
}

fn slot(q: &mut Quote, side: Side, size: bool) -> &mut Option<f64> {
    match (side, size) {
        (Side::Bid, false) => &mut q.bid,
        (Side::Ask, false) => &mut q.ask,
        (Side::Last, false) => &mut q.last,
        (Side::Bid, true) => &mut q.bid_size,
        (Side::Ask, true) => &mut q.ask_size,
        (Side::Last, true) => &mut q.last_size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Right, Symbol};
    use crate::source::Computation;

    #[test]
    fn rows_are_states_after_each_tick() {
        let c = StreamContract {
            con_id: 9,
            symbol: Symbol::new("SPY").unwrap(),
            sec_type: SecType::Option,
            expiry: Some("2026-12-18".parse().unwrap()),
            strike: Some(600.0),
            right: Some(Right::Call),
        };
        let at: DateTime<Utc> = "2026-11-24T17:00:00Z".parse().unwrap();
        let mut b = Book::new(100);
        let r1 = b.apply(&c, &Tick::Price { side: Side::Bid, price: Some(1.5) }, at).unwrap();
        let r2 = b.apply(&c, &Tick::Price { side: Side::Ask, price: Some(1.6) }, at).unwrap();
        assert_eq!((r1.seq, r1.bid, r1.ask), (100, Some(1.5), None));
        assert_eq!((r2.seq, r2.bid, r2.ask), (101, Some(1.5), Some(1.6)));
        let bid_comp = Tick::Computation { kind: ComputationKind::Bid, values: Computation::default() };
        assert!(b.apply(&c, &bid_comp, at).is_none());
        let model = Computation { implied_vol: Some(0.2), delta: Some(0.5), ..Default::default() };
        let r3 = b.apply(&c, &Tick::Computation { kind: ComputationKind::Model, values: model }, at).unwrap();
        assert_eq!((r3.seq, r3.implied_vol, r3.delta, r3.bid), (102, Some(0.2), Some(0.5), Some(1.5)));
        assert_eq!(r3.date, "2026-11-24".parse().unwrap());
    }
}
