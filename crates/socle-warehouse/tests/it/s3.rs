//! The lake on an S3-compatible server: moto's S3 server on loopback (a real HTTP S3
//! implementation from PyPI, installed by scripts/test-services.sh), reached through
//! object_store like any S3 bucket, with credentials passed by reference.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use socle_lake::Lake;
use socle_meta::MetaDb;
use socle_warehouse::{Warehouse, WriteMode};

use crate::common::{config, rows};

struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_moto() -> Moto {
    let port = free_port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m moto.server (scripts/test-services.sh installs moto[server])");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto { child, port }
}

/// Creates a bucket with a plain HTTP PUT (object_store does not create buckets).
fn create_bucket(port: u16, bucket: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn warehouse_on_s3_compatible_storage() {
    let moto = start_moto();
    create_bucket(moto.port, "socle-lake");
    // Credentials are referenced from the environment, as socle.yml requires.
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "name: s3test\nlake:\n  url: s3://socle-lake/prod/\n  options:\n    endpoint: http://127.0.0.1:{}\n    region: us-east-1\n    allow_http: \"true\"\n    access_key_id: \"${{env:SOCLE_TEST_S3_KEY}}\"\n    secret_access_key: \"${{env:SOCLE_TEST_S3_SECRET}}\"\n",
        moto.port
    );
    let cfg = socle_core::Config::from_yaml(&yaml, std::path::Path::new("socle.yml"), dir.path())
        .unwrap();
    struct Creds;
    impl socle_core::secrets::Resolver for Creds {
        fn env(&self, name: &str) -> Option<String> {
            match name {
                "SOCLE_TEST_S3_KEY" => Some("testing".into()),
                "SOCLE_TEST_S3_SECRET" => Some("testing".into()),
                _ => None,
            }
        }
        fn secret(&self, _: &str) -> Result<Option<String>, String> {
            Ok(None)
        }
    }
    let lake = Lake::open(&cfg.lake, &Creds).unwrap();
    lake.check().await.unwrap();
    let meta = MetaDb::open(&format!("sqlite://{}/socle.db", dir.path().display()))
        .await
        .unwrap();
    let wh = Warehouse::open(lake.clone(), meta, &config())
        .await
        .unwrap();

    wh.execute(
        "CREATE TABLE raw_orders AS SELECT * FROM (VALUES (1, 9.5), (2, 3.0)) AS v(id, amount)",
    )
    .await
    .unwrap();
    let df = wh
        .session()
        .sql("SELECT * FROM (VALUES (2, 4.0), (3, 1.5)) AS v(id, amount)")
        .await
        .unwrap();
    let r = wh
        .load(
            "raw_orders",
            df,
            WriteMode::Merge {
                keys: vec!["id".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!((r.rows_inserted, r.rows_updated, r.version), (1, 1, 1));
    let got = rows(&wh.query("SELECT id, amount FROM raw_orders").await.unwrap());
    assert_eq!(got, vec!["1|9.5", "2|4.0", "3|1.5"]);
    assert_eq!(
        rows(
            &wh.query("SELECT count(*) FROM raw_orders VERSION AS OF 0")
                .await
                .unwrap()
        ),
        vec!["2"]
    );
    // The files really are in the bucket, under the lake prefix.
    let files = lake.list_files("warehouse/main/raw_orders").await.unwrap();
    assert!(
        files
            .iter()
            .any(|(f, _)| f.contains("_delta_log/00000000000000000001.json")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|(f, _)| f.ends_with(".parquet")),
        "{files:?}"
    );
}
