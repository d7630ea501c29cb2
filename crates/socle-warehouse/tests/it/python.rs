//! Tables written by socle read by another tool: Python's `deltalake` (delta-rs bindings,
//! installed by scripts/test-services.sh) must see identical rows.

use crate::common::*;

#[tokio::test]
async fn python_reads_the_same_rows() {
    let t = warehouse().await;
    exec(
        &t.wh,
        "CREATE TABLE sales AS SELECT * FROM (VALUES
            (1, 'Zoé', DATE '2024-01-31', 12.5, true),
            (2, 'Ødegaard', DATE '2024-02-29', NULL, false),
            (3, NULL, NULL, 7.25, NULL)) AS v(id, customer, day, amount, paid)",
    )
    .await;
    exec(
        &t.wh,
        "INSERT INTO sales VALUES (4, 'Li', DATE '2024-03-01', 1.0, true)",
    )
    .await;
    let ours = query(
        &t.wh,
        "SELECT id, customer, CAST(day AS VARCHAR), amount, paid FROM sales ORDER BY id",
    )
    .await;
    let location = t.dir.path().join("lake/warehouse/main/sales");
    let script = r#"
import sys
from deltalake import DeltaTable
t = DeltaTable(sys.argv[1])
rows = t.to_pyarrow_table().to_pylist()
def fmt(v):
    if v is None: return "NULL"
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, float): return repr(v)
    return str(v)
out = sorted("|".join(fmt(r[c]) for c in ["id", "customer", "day", "amount", "paid"]) for r in rows)
print(t.version())
for line in out: print(line)
# deltalake 1.6 wheels abort in a runtime destructor at interpreter exit
# ("terminate called without an active exception"); leave without running it.
sys.stdout.flush()
import os
os._exit(0)
"#;
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&location)
        .output()
        .expect("python3 runs (scripts/test-services.sh installs deltalake)");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines.remove(0), "1", "python sees the latest version");
    assert_eq!(lines, ours);
    assert_eq!(lines.len(), 4);
}
