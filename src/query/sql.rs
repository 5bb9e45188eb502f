//! SQL over the lake: every dataset registered as a table of the same name (`equity_bars`,
//! `option_bars`, `chains`, `contracts`, `quotes`, `surfaces`) in a polars SQL context.
//!
//! Tables are lazy scans: a query reads only the partitions and columns it needs after polars'
//! predicate and projection pushdown (filters on `symbol` and `date` prune Hive folders).
//!
//! **Only the lake's tables.** polars' SQL also offers table functions that read any file or URL
//! the process can reach (`read_csv`, `read_parquet`, `read_ipc`, `read_json`, with globs). A
//! query is parsed first, with the parser and options polars uses, and refused before anything
//! runs when any of its table references, at any depth (subqueries, CTEs, joins, `EXPLAIN`), is
//! a function call rather than a table name, or when the statement is not a query (`SELECT`,
//! `WITH`, `EXPLAIN`, `SHOW TABLES`). Walking the parsed statement, not matching strings, so
//! case, spacing, quoting and comments change nothing; refusing every table function, not a list
//! of known ones, so a function a later polars adds is refused too.

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

/// Plans a SQL query over `lake`'s tables; a malformed query, or one that reaches past the
/// lake's tables (see the module's docs), is a [`Error::BadInput`] and runs nothing.
pub async fn sql(lake: &Lake, query: &str) -> Result<LazyFrame> {
    check_sandbox(query)?;
    let mut ctx = sql_context(lake).await?;
    ctx.execute(query).map_err(|e| Error::bad_input("SQL query", query, e.to_string()))
}

/// The tables a query may read, for messages.
fn tables() -> String {
    Dataset::ALL.iter().map(|d| d.name()).collect::<Vec<_>>().join(", ")
}

/// Refuses a statement that is not a query or that calls a table function anywhere.
pub fn check_sandbox(query: &str) -> Result<()> {
    use sqlparser::ast::{Statement, TableFactor, Visit, Visitor};
    use sqlparser::dialect::GenericDialect;
    use sqlparser::parser::{Parser, ParserOptions};
    use std::ops::ControlFlow;

    struct Sandbox;
    impl Visitor for Sandbox {
        type Break = String;
        fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<String> {
            match s {
                Statement::Query(_) | Statement::Explain { .. } | Statement::ShowTables { .. } => {
                    ControlFlow::Continue(())
                }
                _ => ControlFlow::Break(
                    "only queries run over the lake (SELECT, WITH, EXPLAIN, SHOW TABLES); the lake is changed by \
                     `twslake setup`/`update`, not by SQL"
                        .to_string(),
                ),
            }
        }
        fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<String> {
            let function = match t {
                TableFactor::Table { args: None, .. }
                | TableFactor::Derived { .. }
                | TableFactor::NestedJoin { .. }
                | TableFactor::UNNEST { .. } => return ControlFlow::Continue(()),
                TableFactor::Table { name, .. } => name.to_string(),
                TableFactor::Function { name, .. } => name.to_string(),
                TableFactor::TableFunction { expr, .. } => expr.to_string(),
                other => other.to_string(),
            };
            ControlFlow::Break(format!(
                "`{function}` is a table function, and SQL here reads only the lake's tables: {}; \
                 name one of them in FROM (to query another file, use DuckDB or polars directly)",
                tables()
            ))
        }
    }

    // The parser and options of polars' `SQLContext::execute`: what is checked is what would run.
    let parsed = Parser::new(&GenericDialect)
        .with_options(ParserOptions { trailing_commas: true, ..Default::default() })
        .try_with_sql(query)
        .and_then(|mut p| p.parse_statements());
    // A query that does not parse is left to polars, whose message says why; it runs nothing.
    let Ok(statements) = parsed else { return Ok(()) };
    match statements.visit(&mut Sandbox) {
        ControlFlow::Break(reason) => Err(Error::bad_input("SQL query", query, reason)),
        ControlFlow::Continue(()) => Ok(()),
    }
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

    #[test]
    fn table_functions_are_refused_wherever_they_hide() {
        for q in [
            "SELECT * FROM read_csv('/etc/os-release')",
            "select * from READ_PARQUET('/any/path')",
            "SELECT * FROM read_parquet('/tmp/**/*.parquet')",
            "SELECT * FROM Read_Ipc('x.ipc') AS t",
            "SELECT * FROM read_json('http://example.com/x.json')",
            "SELECT * FROM (SELECT * FROM read_csv('/etc/passwd')) AS s",
            "WITH f AS (SELECT * FROM read_csv('/etc/hostname')) SELECT * FROM f",
            "SELECT * FROM equity_bars e JOIN read_csv('/etc/hosts') h ON e.symbol = h.symbol",
            "SELECT * FROM equity_bars WHERE symbol IN (SELECT symbol FROM read_csv('/etc/group'))",
            "EXPLAIN SELECT * FROM /* c */ read_csv ( '/etc/os-release' )",
            "SELECT * FROM \"read_csv\"('/etc/os-release')",
        ] {
            let e = super::check_sandbox(q).expect_err(q).to_string();
            assert!(e.contains("table function") && e.contains("equity_bars, option_bars"), "{q}: {e}");
        }
        let e = super::check_sandbox("CREATE TABLE t AS SELECT * FROM equity_bars").unwrap_err().to_string();
        assert!(e.contains("only queries"), "{e}");
        for q in [
            "SELECT symbol FROM equity_bars",
            "WITH x AS (SELECT * FROM chains) SELECT count(*) FROM x JOIN contracts USING (con_id)",
            "SELECT * FROM (SELECT 1 AS a) AS t",
            "SHOW TABLES",
        ] {
            super::check_sandbox(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_refused_query_reads_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
        let secret = dir.path().join("outside.csv");
        std::fs::write(&secret, "a\n42\n").unwrap();
        let q = format!("SELECT * FROM read_csv('{}')", secret.display());
        let e = super::sql(&lake, &q).await.err().expect("refused").to_string();
        assert!(e.contains("read_csv") && e.contains("quotes"), "{e}");
    }
}
