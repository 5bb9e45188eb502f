//! The exercise style of each option of a symbol, from the contracts dataset: what research
//! prices American contracts as American by ([`super::surface`], [`super::iv`]).
//!
//! A contract row holds its style (`exercise_style`, decided at ingest from the trading class);
//! a row written before the column existed reads as null and is decided from its trading class
//! by the same rule ([`crate::datasets::contracts::Contract::style`]). An option with no
//! contract row at all (bars ingested without descriptions) takes the style of the underlying's
//! own class: [`ExerciseStyle::of_class`] of the symbol (`SPX` European, `SPY` American). A
//! contract's style never changes, so it is read as the latest description says, not point in
//! time.

use super::{collect, ScanFilter, Scans};
use crate::datasets::contracts::Contract;
use crate::datasets::Dataset;
use crate::domain::{ExerciseStyle, SecType, Symbol};
use crate::error::Result;
use crate::lake::Lake;
use polars::prelude::*;
use std::collections::HashMap;

/// The column name of the exercise style, in the contracts dataset and in research frames.
pub const STYLE_COLUMN: &str = "exercise_style";

/// Exercise styles by contract id, with the style of contracts not described.
#[derive(Debug, Clone, PartialEq)]
pub struct Styles {
    by_con_id: HashMap<i64, ExerciseStyle>,
    /// The style of an option with no contract row: the underlying's class's.
    pub otherwise: ExerciseStyle,
}

impl Styles {
    /// No descriptions: every option of `symbol` takes the style of its class.
    pub fn of_symbol(symbol: &str) -> Self {
        Styles { by_con_id: HashMap::new(), otherwise: ExerciseStyle::of_class(&symbol.replace(' ', "")) }
    }

    /// The style of contract `con_id`.
    pub fn of(&self, con_id: i64) -> ExerciseStyle {
        self.by_con_id.get(&con_id).copied().unwrap_or(self.otherwise)
    }

    /// Contracts described.
    pub fn len(&self) -> usize {
        self.by_con_id.len()
    }

    /// True when no contract is described.
    pub fn is_empty(&self) -> bool {
        self.by_con_id.is_empty()
    }

    /// Adds the `exercise_style` column (`american`/`european`) to a frame with `con_id`.
    pub fn with_column(&self, lf: LazyFrame) -> LazyFrame {
        let styles = self.clone();
        let style_of = move |c: Column| -> PolarsResult<Column> {
            let ids = c.cast(&DataType::Int64)?;
            let out: StringChunked = ids.i64()?.iter().map(|id| id.map(|id| styles.of(id).as_str())).collect();
            Ok(out.with_name(STYLE_COLUMN.into()).into_column())
        };
        let field = |_: &Schema, f: &Field| Ok(Field::new(f.name().clone(), DataType::String));
        lf.with_column(col("con_id").map(style_of, field).alias(STYLE_COLUMN))
    }

    /// The styles of `symbol`'s options stored in `lake` (see the module docs).
    pub async fn read(lake: &Lake, symbol: &Symbol) -> Result<Self> {
        let mut styles = Styles::of_symbol(symbol.as_str());
        let names = ["con_id", "sec_type", "trading_class", "local_symbol", STYLE_COLUMN];
        let lf = Scans::new(lake).scan(Dataset::Contracts, &ScanFilter::symbol(symbol)).await?;
        let df = collect(lf.filter(col("sec_type").eq(lit(SecType::Option.ib()))).select(names.map(col))).await?;
        let con = df.column("con_id")?.i64()?;
        let text = |n: &str| -> Result<StringChunked> { Ok(df.column(n)?.cast(&DataType::String)?.str()?.clone()) };
        let (class, local, stored) = (text("trading_class")?, text("local_symbol")?, text(STYLE_COLUMN)?);
        for i in 0..df.height() {
            let Some(con_id) = con.get(i) else { continue };
            let row = Contract {
                con_id,
                sec_type: SecType::Option,
                trading_class: class.get(i).map(Into::into),
                local_symbol: local.get(i).map(Into::into),
                exercise_style: stored.get(i).and_then(ExerciseStyle::parse),
                ..Default::default()
            };
            if let Some(style) = row.style() {
                styles.by_con_id.insert(con_id, style);
            }
        }
        Ok(styles)
    }
}
