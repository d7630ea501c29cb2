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
