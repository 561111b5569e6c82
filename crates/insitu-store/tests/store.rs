//! The store's behaviour, run against every backend: SQLite always, and
//! PostgreSQL when `INSITU_TEST_POSTGRES_URL` names a server (the test command
//! starts one). With `INSITU_REQUIRE_POSTGRES=1` a missing server fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use insitu_domain::{Role, Username};
use insitu_store::{NewUser, SessionRecord, Store, StoreError, TokenRecord};

async fn backends() -> Vec<(Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("insitu.db").display());
    let mut out = vec![(Store::connect(&url).await.unwrap(), Some(dir))];
    match std::env::var("INSITU_TEST_POSTGRES_URL") {
        Ok(admin) => {
            let name = format!("insitu_store_{}", uuid_like());
            let url = insitu_store::create_postgres_database(&admin, &name)
                .await
                .unwrap();
            out.push((Store::connect(&url).await.unwrap(), None));
        }
        Err(_) => assert!(
            std::env::var("INSITU_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "INSITU_REQUIRE_POSTGRES=1 but INSITU_TEST_POSTGRES_URL is not set"
        ),
    }
    out
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{n:x}_{}", std::process::id())
}

fn user(name: &str, role: Role) -> NewUser {
    NewUser {
        username: name.parse::<Username>().unwrap(),
        password_hash: "$argon2id$x".into(),
        role,
        now: 100,
    }
}

#[tokio::test]
async fn users_roles_and_disabling() {
    for (store, _dir) in backends().await {
        let b = store.backend().as_str();
        assert_eq!(store.count_users().await.unwrap(), 0, "{b}");
        let alice = store.create_user(user("alice", Role::Admin)).await.unwrap();
        let bob = store.create_user(user("bob", Role::User)).await.unwrap();
        assert!(
            matches!(
                store.create_user(user("alice", Role::User)).await,
                Err(StoreError::UsernameTaken(_))
            ),
            "{b}"
        );
        assert_eq!(store.count_active_admins().await.unwrap(), 1, "{b}");

        store.set_role(&bob.id, Role::Moderator).await.unwrap();
        let found = store
            .user_by_username(&bob.username)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.role, Role::Moderator, "{b}");

        let session = SessionRecord {
            id_hash: "h1".into(),
            user_id: alice.id.clone(),
            csrf_token: "c".into(),
            created_at: 100,
            last_seen_at: 100,
            expires_at: 200,
        };
        store.create_session(&session).await.unwrap();
        let (s, u) = store.session_by_hash("h1").await.unwrap().unwrap();
        assert_eq!((s, u.username.as_str()), (session.clone(), "alice"), "{b}");

        store.set_disabled(&alice.id, true).await.unwrap();
        assert!(
            store.session_by_hash("h1").await.unwrap().is_none(),
            "disabling ends sessions ({b})"
        );
        assert_eq!(store.count_active_admins().await.unwrap(), 0, "{b}");
        let users = store.list_users().await.unwrap();
        assert_eq!(
            users
                .iter()
                .map(|u| (u.username.as_str(), u.disabled))
                .collect::<Vec<_>>(),
            [("alice", true), ("bob", false)],
            "{b}"
        );
    }
}

#[tokio::test]
async fn sessions_expire_and_password_change_ends_them() {
    for (store, _dir) in backends().await {
        let b = store.backend().as_str();
        let u = store.create_user(user("carol", Role::User)).await.unwrap();
        for (h, last, exp) in [
            ("old", 10, 1000),
            ("expired", 500, 600),
            ("fresh", 900, 2000),
        ] {
            store
                .create_session(&SessionRecord {
                    id_hash: h.into(),
                    user_id: u.id.clone(),
                    csrf_token: "c".into(),
                    created_at: 0,
                    last_seen_at: last,
                    expires_at: exp,
                })
                .await
                .unwrap();
        }
        // now = 950, idle limit 100 s: "old" is idle, "expired" is past expiry.
        assert_eq!(
            store.delete_stale_sessions(950, 100).await.unwrap(),
            2,
            "{b}"
        );
        assert!(
            store.session_by_hash("fresh").await.unwrap().is_some(),
            "{b}"
        );
        store.touch_session("fresh", 990).await.unwrap();
        assert_eq!(
            store
                .session_by_hash("fresh")
                .await
                .unwrap()
                .unwrap()
                .0
                .last_seen_at,
            990,
            "{b}"
        );
        store
            .set_password_hash(&u.id, "$argon2id$new")
            .await
            .unwrap();
        assert!(
            store.session_by_hash("fresh").await.unwrap().is_none(),
            "{b}"
        );
        assert_eq!(
            store
                .user_by_username(&u.username)
                .await
                .unwrap()
                .unwrap()
                .password_hash,
            "$argon2id$new",
            "{b}"
        );
    }
}

#[tokio::test]
async fn tokens_list_and_revoke_only_own() {
    for (store, _dir) in backends().await {
        let b = store.backend().as_str();
        let dan = store.create_user(user("dan", Role::User)).await.unwrap();
        let eve = store.create_user(user("eve", Role::User)).await.unwrap();
        let t = TokenRecord {
            id: "t1".parse().unwrap(),
            user_id: dan.id.clone(),
            name: "laptop".into(),
            token_hash: "hash1".into(),
            prefix: "ins_abcd".into(),
            created_at: 5,
            last_used_at: None,
            expires_at: Some(99),
            revoked_at: None,
        };
        store.create_token(&t).await.unwrap();
        let (found, owner) = store.token_by_hash("hash1").await.unwrap().unwrap();
        assert_eq!((found, owner.username.as_str()), (t.clone(), "dan"), "{b}");
        assert_eq!(
            store.revoke_token(&eve.id, &t.id, 7).await.unwrap(),
            None,
            "eve cannot revoke dan's token ({b})"
        );
        store.touch_token(&t.id, 6).await.unwrap();
        assert_eq!(
            store.list_tokens(&dan.id).await.unwrap()[0].last_used_at,
            Some(6),
            "{b}"
        );
        assert_eq!(
            store
                .revoke_token(&dan.id, &t.id, 7)
                .await
                .unwrap()
                .as_deref(),
            Some("hash1"),
            "{b}"
        );
        assert!(store.list_tokens(&dan.id).await.unwrap().is_empty(), "{b}");
        assert_eq!(
            store
                .token_by_hash("hash1")
                .await
                .unwrap()
                .unwrap()
                .0
                .revoked_at,
            Some(7),
            "{b}"
        );
    }
}

#[tokio::test]
async fn my_volumes_add_is_idempotent() {
    for (store, _dir) in backends().await {
        let b = store.backend().as_str();
        let u = store.create_user(user("fay", Role::User)).await.unwrap();
        store.add_my_volume(&u.id, "gaia", 1).await.unwrap();
        store.add_my_volume(&u.id, "gaia", 2).await.unwrap();
        store.add_my_volume(&u.id, "allsky", 3).await.unwrap();
        assert_eq!(
            store.my_volumes(&u.id).await.unwrap(),
            ["allsky", "gaia"],
            "{b}"
        );
        assert!(store.remove_my_volume(&u.id, "gaia").await.unwrap(), "{b}");
        assert!(!store.remove_my_volume(&u.id, "gaia").await.unwrap(), "{b}");
        assert_eq!(store.my_volumes(&u.id).await.unwrap(), ["allsky"], "{b}");
    }
}

#[tokio::test]
async fn reopening_keeps_data_and_refuses_bad_urls() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    let s = Store::connect(&url).await.unwrap();
    s.create_user(user("gus", Role::User)).await.unwrap();
    s.close().await;
    let s = Store::connect(&url).await.unwrap();
    assert_eq!(s.count_users().await.unwrap(), 1);
    let err = Store::connect("mysql://root:hunter2@db/x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)));
    assert!(
        !err.to_string().contains("hunter2"),
        "password leaked: {err}"
    );
}

#[tokio::test]
async fn labs_are_recorded_and_updated() {
    use insitu_domain::LabState;
    use insitu_store::LabRecord;
    for (store, _dir) in backends().await {
        let b = store.backend().as_str();
        let u = store.create_user(user("kim", Role::User)).await.unwrap();
        let mut lab = LabRecord {
            id: "lab-1".parse().unwrap(),
            user_id: u.id.clone(),
            datalab: "jupyterlab".into(),
            volumes: vec!["allsky-survey".into(), "deep-fields".into()],
            gpus: vec!["0".into(), "2".into()],
            file: Some("/media/data/deep-fields/x.fits".into()),
            state: LabState::Pending,
            reason: None,
            port: None,
            pid: None,
            pid_start: None,
            created_at: 10,
            started_at: None,
            stopped_at: None,
        };
        store.create_lab(&lab).await.unwrap();
        lab.state = LabState::Running;
        lab.port = Some(40123);
        lab.pid = Some(99);
        lab.pid_start = Some(12345678901);
        lab.started_at = Some(11);
        store.update_lab(&lab).await.unwrap();
        assert_eq!(store.lab(&lab.id).await.unwrap().unwrap(), lab, "{b}");
        assert_eq!(
            store.labs_of_user(&u.id).await.unwrap(),
            vec![lab.clone()],
            "{b}"
        );
        assert_eq!(
            store
                .labs_in_states(&[LabState::Running, LabState::Starting])
                .await
                .unwrap()
                .len(),
            1,
            "{b}"
        );
        assert!(
            store
                .labs_in_states(&[LabState::Stopped])
                .await
                .unwrap()
                .is_empty(),
            "{b}"
        );
        assert!(
            store.lab(&"nope".parse().unwrap()).await.unwrap().is_none(),
            "{b}"
        );
    }
}

#[tokio::test]
async fn proxy_sessions_are_kept_bounded_per_user_and_removed_by_lab_user_and_age() {
    use insitu_domain::LabState;
    use insitu_store::{LabRecord, ProxySessionRecord};
    for (store, _dir) in backends().await {
        let b = store.backend().as_str();
        let mut users = Vec::new();
        for name in ["pia", "quy"] {
            users.push(store.create_user(user(name, Role::User)).await.unwrap().id);
        }
        for (lab, owner) in [
            ("lab-a", &users[0]),
            ("lab-b", &users[0]),
            ("lab-c", &users[1]),
        ] {
            store
                .create_lab(&LabRecord {
                    id: lab.parse().unwrap(),
                    user_id: owner.clone(),
                    datalab: "jupyterlab".into(),
                    volumes: Vec::new(),
                    gpus: Vec::new(),
                    file: None,
                    state: LabState::Running,
                    reason: None,
                    port: None,
                    pid: None,
                    pid_start: None,
                    created_at: 1,
                    started_at: None,
                    stopped_at: None,
                })
                .await
                .unwrap();
        }
        let session = |n: u8, lab: &str, user: usize, at: i64| ProxySessionRecord {
            digest: format!("{n:02x}").repeat(32),
            lab_id: lab.parse().unwrap(),
            user_id: users[user].clone(),
            created_at_ms: at,
            expires_at_ms: at + 60_000,
        };
        // Five sessions of pia's, keeping her newest three; one of quy's.
        for n in 0..5u8 {
            let lab = if n % 2 == 0 { "lab-a" } else { "lab-b" };
            let s = session(n, lab, 0, 1_000 + i64::from(n));
            store.insert_proxy_session(&s, 3).await.unwrap();
            assert_eq!(
                store.proxy_session(&s.digest).await.unwrap(),
                Some(s),
                "{b}: the newest is always kept"
            );
        }
        store
            .insert_proxy_session(&session(9, "lab-c", 1, 1_000), 3)
            .await
            .unwrap();
        let held = |n: u8| {
            let store = store.clone();
            async move {
                store
                    .proxy_session(&format!("{n:02x}").repeat(32))
                    .await
                    .unwrap()
                    .is_some()
            }
        };
        for (n, kept) in [
            (0, false),
            (1, false),
            (2, true),
            (3, true),
            (4, true),
            (9, true),
        ] {
            assert_eq!(held(n).await, kept, "{b}: session {n}");
        }

        // Stopping lab-a ends its sessions only.
        let gone = store
            .delete_proxy_sessions_of_lab(&"lab-a".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(gone, 2, "{b}");
        assert!(!held(2).await && held(3).await, "{b}");
        // Expired ones go, at their expiry.
        assert_eq!(
            store.delete_expired_proxy_sessions(61_002).await.unwrap(),
            1,
            "{b}: session 9 expired at 61000"
        );
        assert!(!held(9).await && held(3).await, "{b}");
        // A user's go with them.
        store
            .delete_proxy_sessions_of_user(&users[0])
            .await
            .unwrap();
        assert!(!held(3).await, "{b}");
        assert!(
            store
                .proxy_session(&"zz".repeat(32))
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn pipeline_versions_are_kept_per_owner_and_never_replaced() {
    use insitu_store::PipelineVersionRecord;
    for (store, _dir) in backends().await {
        let b = store.backend().as_str();
        let alice = store.create_user(user("alice", Role::User)).await.unwrap();
        let version =
            |owner: Option<&insitu_domain::UserId>, v: &str, at: i64| PipelineVersionRecord {
                owner: owner.cloned(),
                name: "flow".parse().unwrap(),
                version: v.parse().unwrap(),
                description: format!("version {v}"),
                keywords: vec!["a".into(), "b".into()],
                author: "Alice".into(),
                licence: "MIT".into(),
                main: "workflow.cwl".into(),
                files: [("workflow.cwl".to_owned(), format!("# {v}\n"))].into(),
                pushed_by: alice.id.clone(),
                created_at_ms: at,
            };
        assert!(
            store
                .insert_pipeline_version(&version(Some(&alice.id), "1.0", 1))
                .await
                .unwrap()
        );
        assert!(
            store
                .insert_pipeline_version(&version(Some(&alice.id), "1.1", 2))
                .await
                .unwrap()
        );
        // The same version again is refused, whatever it holds.
        let mut again = version(Some(&alice.id), "1.0", 3);
        again.files.insert("workflow.cwl".into(), "changed".into());
        assert!(!store.insert_pipeline_version(&again).await.unwrap(), "{b}");
        // The system catalogue is another owner with the same names.
        assert!(
            store
                .insert_pipeline_version(&version(None, "1.0", 4))
                .await
                .unwrap()
        );
        let name = "flow".parse().unwrap();
        let mine = store
            .pipeline_versions(Some(&alice.id), &name)
            .await
            .unwrap();
        let versions: Vec<&str> = mine.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(versions, ["1.1", "1.0"], "{b}");
        assert_eq!(mine[1].files["workflow.cwl"], "# 1.0\n", "{b}");
        assert_eq!(mine[1].keywords, ["a", "b"]);
        let latest = store
            .latest_pipeline_versions(Some(&alice.id))
            .await
            .unwrap();
        assert_eq!(latest.len(), 1);
        assert_eq!(latest[0].version.as_str(), "1.1");
        let system = store.latest_pipeline_versions(None).await.unwrap();
        assert_eq!(system.len(), 1);
        assert_eq!(system[0].owner, None);
    }
}

#[tokio::test]
async fn runs_move_between_states_only_from_the_expected_one() {
    use insitu_domain::{RunId, RunState};
    use insitu_store::RunRecord;
    for (store, _dir) in backends().await {
        let b = store.backend().as_str();
        let alice = store.create_user(user("alice", Role::User)).await.unwrap();
        let id = RunId::from_random([1, 2, 3, 4, 5, 6]);
        let mut run = RunRecord {
            id: id.clone(),
            user_id: alice.id.clone(),
            pipeline: "source-extraction".into(),
            version: "1.0.0".into(),
            state: RunState::Queued,
            reason: None,
            notice: None,
            job: "{}".into(),
            resumed_from: None,
            lineage: id.clone(),
            pid: None,
            pid_start: None,
            outputs: None,
            created_at_ms: 10,
            started_at_ms: None,
            finished_at_ms: None,
            cleaned_at_ms: None,
        };
        store.create_run(&run).await.unwrap();
        assert!(
            store
                .move_run(&id, RunState::Queued, RunState::Running)
                .await
                .unwrap()
        );
        // A second start (or a cancel that lost the race) does not move it.
        assert!(
            !store
                .move_run(&id, RunState::Queued, RunState::Cancelled)
                .await
                .unwrap(),
            "{b}"
        );
        run.state = RunState::Succeeded;
        run.finished_at_ms = Some(20);
        run.outputs = Some("{\"x\":1}".into());
        store.update_run(&run).await.unwrap();
        assert_eq!(store.run(&id).await.unwrap().unwrap(), run, "{b}");
        assert_eq!(store.runs_of_user(&alice.id, 10).await.unwrap().len(), 1);
        assert!(
            store
                .runs_in_states(&[RunState::Queued])
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.runs_to_clean(21).await.unwrap().len(), 1);
        assert!(store.runs_to_clean(20).await.unwrap().is_empty());
        run.cleaned_at_ms = Some(30);
        store.update_run(&run).await.unwrap();
        assert!(store.runs_to_clean(100).await.unwrap().is_empty(), "{b}");
        assert_eq!(store.runs_of_lineage(&id).await.unwrap().len(), 1);
    }
}
