//! Helpers: a warehouse in a temporary folder, and result formatting for assertions.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use socle_core::WarehouseConfig;
use socle_lake::Lake;
use socle_meta::MetaDb;
use socle_warehouse::Warehouse;

pub struct TestWarehouse {
    pub dir: tempfile::TempDir,
    pub wh: Warehouse,
}

pub fn config() -> WarehouseConfig {
    socle_core::Config::defaults("t", std::path::Path::new("/tmp")).warehouse
}

pub async fn warehouse() -> TestWarehouse {
    let dir = tempfile::tempdir().unwrap();
    let wh = open_at(dir.path()).await;
    TestWarehouse { dir, wh }
}

pub async fn open_at(path: &std::path::Path) -> Warehouse {
    let url = url::Url::from_directory_path(path.join("lake")).unwrap();
    let lake = Lake::open_url(&url, &[]).unwrap();
    let meta = MetaDb::open(&format!("sqlite://{}/socle.db", path.display()))
        .await
        .unwrap();
    Warehouse::open(lake, meta, &config()).await.unwrap()
}

/// Rows as strings, `|`-separated, sorted (so tests do not depend on file order).
pub fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let f: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                f.iter()
                    .map(|f| f.value(r).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out.sort();
    out
}

pub async fn query(wh: &Warehouse, sql: &str) -> Vec<String> {
    rows(&wh.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")))
}

pub async fn exec(wh: &Warehouse, sql: &str) {
    wh.execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

pub async fn version(wh: &Warehouse, table: &str) -> Option<i64> {
    wh.describe(table).await.unwrap().version
}
