//! Metadata database against SQLite and a real PostgreSQL (`SOCLE_TEST_POSTGRES_URL`,
//! started by `.ci/run`).

use socle_meta::{Backend, MetaDb, migrations::MIGRATIONS};

async fn exercise(db: &MetaDb) {
    let latest = MIGRATIONS.last().unwrap().version;
    assert_eq!(db.schema_version().await.unwrap(), latest);
    db.put_view("main", "v_orders", "SELECT 1").await.unwrap();
    db.put_view("main", "v_orders", "SELECT 2").await.unwrap();
    db.put_view("staging", "stg", "SELECT 3").await.unwrap();
    assert_eq!(
        db.get_view("main", "v_orders")
            .await
            .unwrap()
            .unwrap()
            .definition,
        "SELECT 2"
    );
    assert_eq!(db.list_views(None).await.unwrap().len(), 2);
    assert_eq!(db.list_views(Some("staging")).await.unwrap().len(), 1);
    db.set_description("main", "v_orders", None, "orders view")
        .await
        .unwrap();
    db.set_description("main", "v_orders", Some("id"), "the id")
        .await
        .unwrap();
    assert_eq!(db.descriptions("main", "v_orders").await.unwrap().len(), 2);
    assert!(db.create_schema("marts").await.unwrap());
    assert!(!db.create_schema("marts").await.unwrap());
    assert_eq!(
        db.list_schemas().await.unwrap(),
        vec!["main", "marts", "staging"]
    );
    assert!(db.drop_view("main", "v_orders").await.unwrap());
    assert!(!db.drop_view("main", "v_orders").await.unwrap());
    assert!(
        db.descriptions("main", "v_orders")
            .await
            .unwrap()
            .is_empty()
    );
    users(db).await;
    models(db).await;
}

/// Model version numbers, and one version writing a model's output tables at a time.
async fn models(db: &MetaDb) {
    use socle_meta::VersionState;
    use socle_meta::models::Begin;
    // Eight trainings at once: eight numbers.
    let mut claims = Vec::new();
    for i in 0..8 {
        let db = db.clone();
        claims.push(tokio::spawn(async move {
            db.claim_version("views", "regression", "h", &format!("u{i}"))
                .await
                .unwrap()
        }));
    }
    let mut numbers = Vec::new();
    for c in claims {
        numbers.push(c.await.unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (1..=8).collect::<Vec<i64>>());
    // One writer per model.
    assert_eq!(
        db.begin_writing("views", 1, "h:1:1").await.unwrap(),
        Begin::Acquired
    );
    match db.begin_writing("views", 2, "h:2:2").await.unwrap() {
        Begin::Held(w) => {
            assert_eq!((w.version, w.writer.as_deref()), (1, Some("h:1:1")));
            assert_eq!(w.outputs_before, None);
        }
        other => panic!("{other:?}"),
    }
    // Another model is not held up.
    assert_eq!(db.claim_version("other", "k", "h", "u").await.unwrap(), 1);
    assert_eq!(
        db.begin_writing("other", 1, "h:3:3").await.unwrap(),
        Begin::Acquired
    );
    db.finish_version("other", 1, "{}", 3).await.unwrap();
    let before = r#"[{"table":"ml.views","version":4}]"#;
    db.record_outputs_before("views", 1, before).await.unwrap();
    let held = db.writing_version("views").await.unwrap().unwrap();
    assert_eq!(held.outputs_before.as_deref(), Some(before));
    // Taken over only from the writer recorded, and by one process.
    assert!(
        !db.take_over_writing("views", 1, Some("h:9:9"), "me:1:1")
            .await
            .unwrap()
    );
    assert!(
        db.take_over_writing("views", 1, Some("h:1:1"), "me:1:1")
            .await
            .unwrap()
    );
    assert!(
        !db.take_over_writing("views", 1, Some("h:1:1"), "me:2:2")
            .await
            .unwrap()
    );
    db.fail_version("views", 1, "stopped", None).await.unwrap();
    assert_eq!(db.writing_version("views").await.unwrap(), None);
    let failed = &db.versions("views").await.unwrap()[7];
    assert_eq!((failed.version, failed.state), (1, VersionState::Failed));
    assert_eq!(failed.duration_ms, None);
    // The right is free again; a version that is not training cannot take it.
    assert_eq!(
        db.begin_writing("views", 2, "h:2:2").await.unwrap(),
        Begin::Acquired
    );
    db.finish_version("views", 2, "{}", 5).await.unwrap();
    assert!(db.begin_writing("views", 2, "h:2:2").await.is_err());
    let ready = db.ready_version("views", None).await.unwrap().unwrap();
    assert_eq!((ready.version, ready.duration_ms), (2, Some(5)));
    assert_eq!(ready.metrics.as_deref(), Some("{}"));
    // Only ready versions are used, and a failed number is not reused.
    db.fail_version("views", 8, "no rows", Some(5))
        .await
        .unwrap();
    assert!(db.ready_version("views", Some(8)).await.unwrap().is_none());
    assert!(db.ready_version("views", Some(3)).await.unwrap().is_none());
    assert_eq!(
        db.claim_version("views", "regression", "h", "u")
            .await
            .unwrap(),
        9
    );
    let latest: Vec<(String, i64)> = db
        .latest_versions()
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.model, v.version))
        .collect();
    assert_eq!(latest, vec![("other".into(), 1), ("views".into(), 2)]);
    let all = db.versions("views").await.unwrap();
    assert_eq!(all.first().map(|v| v.version), Some(9));
    assert_eq!(all[1].error.as_deref(), Some("no rows"));
}

/// Users, sessions, tokens and the audit log.
async fn users(db: &MetaDb) {
    use socle_meta::Role;
    use socle_meta::users::{ApiToken, Session};
    assert!(
        db.add_user("ada", "$argon2id$x", Role::Admin, true)
            .await
            .unwrap()
    );
    assert!(
        !db.add_user("ada", "$argon2id$y", Role::Viewer, false)
            .await
            .unwrap()
    );
    assert!(
        db.add_user("bob", "$argon2id$z", Role::Viewer, false)
            .await
            .unwrap()
    );
    let ada = db.user("ada").await.unwrap().unwrap();
    assert!(ada.must_change_password && ada.role == Role::Admin);
    assert!(
        db.set_password("ada", "$argon2id$new", false)
            .await
            .unwrap()
    );
    assert!(db.set_role("bob", Role::Analyst).await.unwrap());
    assert_eq!(db.users().await.unwrap()[1].role, Role::Analyst);
    let s = Session {
        token_hash: "h1".into(),
        username: "bob".into(),
        csrf: "c".into(),
        created_at: "2024-01-01T00:00:00Z".into(),
        expires_at: "2024-01-02T00:00:00Z".into(),
        address: "127.0.0.1".into(),
    };
    db.add_session(&s).await.unwrap();
    assert_eq!(
        db.session("h1", "2024-01-01T12:00:00Z").await.unwrap(),
        Some(s)
    );
    assert_eq!(
        db.session("h1", "2024-01-03T00:00:00Z").await.unwrap(),
        None
    );
    let t = ApiToken {
        id: "t1".into(),
        name: "ci".into(),
        token_hash: "th".into(),
        username: "bob".into(),
        role: Role::Viewer,
        created_at: "2024-01-01T00:00:00Z".into(),
        expires_at: "2025-01-01T00:00:00Z".into(),
        revoked_at: None,
    };
    db.add_token(&t).await.unwrap();
    assert!(db.revoke_token("t1").await.unwrap());
    assert!(!db.revoke_token("t1").await.unwrap());
    assert!(db.token("t1").await.unwrap().unwrap().revoked_at.is_some());
    assert!(db.remove_user("bob").await.unwrap());
    assert_eq!(
        db.session("h1", "2024-01-01T12:00:00Z").await.unwrap(),
        None
    );
    db.audit("ada", "login", "", "127.0.0.1").await.unwrap();
    db.audit("ada", "query", "select 1", "127.0.0.1")
        .await
        .unwrap();
    let log = db.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 2);
}

#[tokio::test]
async fn sqlite_metadata_migrates_once_and_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/state/socle.db", tmp.path().display());
    let db = MetaDb::open(&url).await.unwrap();
    assert_eq!(db.backend(), Backend::Sqlite);
    exercise(&db).await;
    db.close().await;
    // Reopening does not re-run migrations and keeps data.
    let db = MetaDb::open(&url).await.unwrap();
    assert_eq!(db.list_views(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_refuses_a_newer_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/socle.db", tmp.path().display());
    let db = MetaDb::open(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO socle_migrations (version, name, applied_at) VALUES (999, 'future', 'x')",
    )
    .execute(db.pool())
    .await
    .unwrap();
    db.close().await;
    let err = MetaDb::open(&url).await.unwrap_err().to_string();
    assert!(err.contains("newer than this socle knows"), "{err}");
}

#[tokio::test]
async fn postgres_metadata_migrates_and_round_trips() {
    let base = std::env::var("SOCLE_TEST_POSTGRES_URL")
        .expect("SOCLE_TEST_POSTGRES_URL must point at a PostgreSQL server (scripts/test-services.sh starts one)");
    // A fresh database per run so reruns start clean.
    let admin = MetaDb::open(&base).await.unwrap();
    let name = format!("socle_meta_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(admin.pool())
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(admin.pool())
        .await
        .unwrap();
    let url = match base.rfind('/') {
        Some(i) => format!("{}/{name}", &base[..i]),
        None => panic!("bad url {base}"),
    };
    let db = MetaDb::open(&url).await.unwrap();
    assert_eq!(db.backend(), Backend::Postgres);
    exercise(&db).await;
    db.close().await;
    // FORCE: the server may not have seen the pool's last connection go yet.
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(admin.pool())
        .await
        .unwrap();
}
