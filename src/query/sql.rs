//! SQL over the lake: every dataset registered as a table of the same name (`equity_bars`,
//! `option_bars`, `chains`, `contracts`, `quotes`, `surfaces`) in a polars SQL context.
//!
//! Tables are lazy scans: a query reads only the partitions and columns it needs after polars'
//! predicate and projection pushdown (filters on `symbol` and `date` prune Hive folders).

use crate::datasets::Dataset;
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::query::{ScanFilter, Scans};
use polars::prelude::*;
use polars::sql::SQLContext;

/// A SQL context with every dataset of `lake` registered as a table.
pub async fn sql_context(lake: &Lake) -> Result<SQLContext> {
    let ctx = SQLContext::new();
    for d in Dataset::ALL {
        ctx.register(d.name(), Scans::new(lake).scan(d, &ScanFilter::default()).await?);
    }
    Ok(ctx)
}

/// Plans a SQL query over `lake`'s tables; a malformed query is a [`Error::BadInput`].
pub async fn sql(lake: &Lake, query: &str) -> Result<LazyFrame> {
    let mut ctx = sql_context(lake).await?;
    ctx.execute(query).map_err(|e| Error::bad_input("SQL query", query, e.to_string()))
}

#[cfg(test)]
mod tests {
    use crate::query::collect;
    use crate::Lake;

    #[tokio::test(flavor = "multi_thread")]
    async fn queries_every_table() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        crate::lake::example::write_example(&lake).await.unwrap();
        let q =
            "SELECT symbol, count(*) AS n FROM equity_bars WHERE bar_size = '1 day' GROUP BY symbol ORDER BY symbol";
        let df = collect(super::sql(&lake, q).await.unwrap()).await.unwrap();
        assert_eq!(df.height(), 2);
        for t in ["option_bars", "chains", "contracts", "quotes"] {
            let df =
                collect(super::sql(&lake, &format!("SELECT count(*) AS n FROM {t}")).await.unwrap()).await.unwrap();
            assert_eq!(df.height(), 1);
        }
        assert!(super::sql(&lake, "SELEC nonsense").await.is_err());
    }
}
