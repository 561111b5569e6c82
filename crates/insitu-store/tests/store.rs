//! The store's behaviour, run against every backend: SQLite always, and
//! PostgreSQL when `INSITU_TEST_POSTGRES_URL` names a server (the test command
//! starts one). With `INSITU_REQUIRE_POSTGRES=1` a missing server fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use insitu_domain::{LabState, Role, Username};
use insitu_store::{
    LabAdmission, LabRecord, NewUser, SessionRecord, Store, StoreError, TokenRecord, UserUpdate,
};

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

/// Two stores on one database (as two server processes would have), for
/// every backend.
async fn store_pairs() -> Vec<(Store, Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("insitu.db").display());
    let a = Store::connect(&url).await.unwrap();
    let b = Store::connect(&url).await.unwrap();
    let mut out = vec![(a, b, Some(dir))];
    if let Ok(admin) = std::env::var("INSITU_TEST_POSTGRES_URL") {
        let name = format!("insitu_store_{}", uuid_like());
        let url = insitu_store::create_postgres_database(&admin, &name)
            .await
            .unwrap();
        let a = Store::connect(&url).await.unwrap();
        let b = Store::connect(&url).await.unwrap();
        out.push((a, b, None));
    }
    out
}

fn pending_lab(id: &str, user_id: &insitu_domain::UserId) -> LabRecord {
    LabRecord {
        id: id.parse().unwrap(),
        user_id: user_id.clone(),
        datalab: "testapp".into(),
        volumes: Vec::new(),
        gpus: Vec::new(),
        file: None,
        state: LabState::Pending,
        reason: None,
        port: None,
        pid: None,
        pid_start: None,
        created_at: 10,
        started_at: None,
        stopped_at: None,
        cpu_millis: 0,
        memory_bytes: 0,
        zone: insitu_domain::Name::local_zone(),
        job: None,
        host: None,
    }
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
async fn a_slurm_lab_keeps_its_zone_job_and_node_and_may_be_unknown() {
    for (store, _dir) in backends().await {
        let b = store.backend().as_str();
        let u = store.create_user(user("sam", Role::User)).await.unwrap();
        let mut lab = pending_lab("lab-s", &u.id);
        lab.zone = "hpc".parse().unwrap();
        store.create_lab(&lab).await.unwrap();
        assert_eq!(
            store.lab(&lab.id).await.unwrap().unwrap().zone.as_str(),
            "hpc",
            "{b}"
        );
        let mut submitted = lab.clone();
        submitted.job = Some("4242".into());
        assert!(
            store
                .update_lab_if(&submitted, &[LabState::Pending])
                .await
                .unwrap()
        );
        let mut running = submitted.clone();
        running.state = LabState::Running;
        running.host = Some("10.1.2.3".into());
        running.port = Some(40001);
        assert!(
            store
                .update_lab_if(&running, &[LabState::Pending])
                .await
                .unwrap()
        );
        let mut unknown = running.clone();
        unknown.state = LabState::Unknown;
        unknown.reason = Some("Slurm could not be reached".into());
        assert!(
            store
                .update_lab_if(&unknown, &[LabState::Running])
                .await
                .unwrap()
        );
        assert_eq!(store.lab(&lab.id).await.unwrap().unwrap(), unknown, "{b}");
        // Unknown is active: it counts against the quota and is adopted.
        let active = store.labs_in_states(&LabState::ACTIVE).await.unwrap();
        assert!(active.iter().any(|l| l.id == lab.id), "{b}");
        // A stale writer expecting running does not win.
        assert!(
            !store
                .update_lab_if(&running, &[LabState::Running])
                .await
                .unwrap()
        );
    }
}

#[tokio::test]
async fn labs_are_recorded_and_updated() {
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
            cpu_millis: 0,
            memory_bytes: 0,
            zone: insitu_domain::Name::local_zone(),
            job: None,
            host: None,
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

fn new_lab(id: &str, user_id: &insitu_domain::UserId) -> insitu_store::LabRecord {
    insitu_store::LabRecord {
        id: id.parse().unwrap(),
        user_id: user_id.clone(),
        datalab: "jupyterlab".into(),
        volumes: Vec::new(),
        gpus: Vec::new(),
        file: None,
        state: insitu_domain::LabState::Pending,
        reason: None,
        port: None,
        pid: None,
        pid_start: None,
        created_at: 10,
        started_at: None,
        stopped_at: None,
        cpu_millis: 0,
        memory_bytes: 0,
        zone: insitu_domain::Name::local_zone(),
        job: None,
        host: None,
    }
}

#[tokio::test]
async fn a_lab_changes_state_only_from_the_state_its_writer_expects() {
    use insitu_domain::LabState;
    for (store, _dir) in backends().await {
        let b = store.backend().as_str();
        let u = store.create_user(user("lee", Role::User)).await.unwrap();
        let lab = new_lab("lab-cas", &u.id);
        store.create_lab(&lab).await.unwrap();
        // A stop and a launch race: the stop moves the lab on first.
        let mut stop = lab.clone();
        stop.state = LabState::Stopping;
        assert!(
            store
                .update_lab_if(&stop, &[LabState::Pending, LabState::Starting])
                .await
                .unwrap(),
            "{b}"
        );
        let mut launch = lab.clone();
        launch.state = LabState::Starting;
        launch.pid = Some(42);
        assert!(
            !store
                .update_lab_if(&launch, &[LabState::Pending])
                .await
                .unwrap(),
            "the launch no longer finds its lab pending: {b}"
        );
        let now = store.lab(&lab.id).await.unwrap().unwrap();
        assert_eq!((now.state, now.pid), (LabState::Stopping, None), "{b}");
        assert!(
            !store.update_lab_if(&launch, &[]).await.unwrap(),
            "no expected state, no write: {b}"
        );
        let mut missing = launch.clone();
        missing.id = "nope".parse().unwrap();
        assert!(
            !store
                .update_lab_if(&missing, &LabState::ACTIVE)
                .await
                .unwrap(),
            "{b}"
        );
    }
}

#[tokio::test]
async fn lab_events_and_activity_are_kept() {
    use insitu_domain::LabEventKind;
    use insitu_store::LabEventRecord;
    for (store, _dir) in backends().await {
        let b = store.backend().as_str();
        let u = store.create_user(user("mae", Role::User)).await.unwrap();
        let lab = new_lab("lab-ev", &u.id);
        store.create_lab(&lab).await.unwrap();
        assert_eq!(store.lab_activity(&lab.id).await.unwrap(), None, "{b}");
        store.set_lab_activity(&lab.id, 1234).await.unwrap();
        assert_eq!(
            store.lab_activity(&lab.id).await.unwrap(),
            Some(1234),
            "{b}"
        );
        assert!(store.lab_events(&lab.id).await.unwrap().is_empty(), "{b}");
        let later = LabEventRecord {
            lab_id: lab.id.clone(),
            at: 20,
            kind: LabEventKind::MemoryKill,
            pid: None,
            command: None,
            memory_limit: None,
            tool: true,
        };
        let first = LabEventRecord {
            at: 15,
            pid: Some(4321),
            command: Some("python3".into()),
            memory_limit: Some(256 << 20),
            tool: false,
            ..later.clone()
        };
        store.add_lab_event(&later).await.unwrap();
        store.add_lab_event(&first).await.unwrap();
        assert_eq!(
            store.lab_events(&lab.id).await.unwrap(),
            vec![first.clone(), later.clone()],
            "{b}"
        );
        let other = store.create_user(user("ned", Role::User)).await.unwrap();
        store
            .create_lab(&new_lab("lab-ned", &other.id))
            .await
            .unwrap();
        assert_eq!(
            store.lab_events_of_user(&u.id).await.unwrap(),
            vec![first, later],
            "{b}"
        );
        assert!(
            store
                .lab_events_of_user(&other.id)
                .await
                .unwrap()
                .is_empty(),
            "another user's labs have none: {b}"
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
                    cpu_millis: 0,
                    memory_bytes: 0,
                    zone: insitu_domain::Name::local_zone(),
                    job: None,
                    host: None,
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
async fn two_stores_on_one_database_hold_the_cpu_memory_and_gpu_quotas() {
    use insitu_store::{LabLimits, LabResource};
    for (a, b, _dir) in store_pairs().await {
        let backend = a.backend().as_str();
        let u = a.create_user(user("lee", Role::User)).await.unwrap();
        let limits = LabLimits {
            labs: 100,
            cpu_millis: Some(4000),
            memory_bytes: Some(5 << 30),
            gpus: Some(1),
        };
        let mut launches = tokio::task::JoinSet::new();
        for n in 0..16 {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            let mut lab = pending_lab(&format!("cpu-{n}"), &u.id);
            lab.cpu_millis = 1500;
            launches.spawn(async move { store.create_lab_within(&lab, &limits).await.unwrap() });
        }
        let mut created = 0;
        while let Some(done) = launches.join_next().await {
            match done.unwrap() {
                LabAdmission::Created => created += 1,
                LabAdmission::OverQuota { what, used } => {
                    assert_eq!((what, used), (LabResource::CpuMillis, 3000), "{backend}");
                }
                other => panic!("{backend}: {other:?}"),
            }
        }
        assert_eq!(
            created, 2,
            "{backend}: 2 × 1.5 cores fit in 4, a third does not"
        );
        // Memory and GPUs are counted the same way; a lab asking for none
        // of a resource over its quota still starts.
        let mut big = pending_lab("mem", &u.id);
        big.memory_bytes = 6 << 30;
        assert_eq!(
            a.create_lab_within(&big, &limits).await.unwrap(),
            LabAdmission::OverQuota {
                what: LabResource::MemoryBytes,
                used: 0
            },
            "{backend}"
        );
        let mut gpu = pending_lab("gpu-1", &u.id);
        gpu.gpus = vec!["0".into()];
        assert_eq!(
            a.create_lab_within(&gpu, &limits).await.unwrap(),
            LabAdmission::Created
        );
        let mut gpu = pending_lab("gpu-2", &u.id);
        gpu.gpus = vec!["1".into()];
        assert_eq!(
            b.create_lab_within(&gpu, &limits).await.unwrap(),
            LabAdmission::OverQuota {
                what: LabResource::Gpus,
                used: 1
            },
            "{backend}"
        );
        let plain = pending_lab("plain", &u.id);
        let tight = LabLimits {
            cpu_millis: Some(1),
            gpus: Some(0),
            ..limits
        };
        assert_eq!(
            b.create_lab_within(&plain, &tight).await.unwrap(),
            LabAdmission::Created
        );
    }
}

#[tokio::test]
async fn two_stores_on_one_database_hold_the_lab_limit() {
    for (a, b, _dir) in store_pairs().await {
        let backend = a.backend().as_str();
        let u = a.create_user(user("kim", Role::User)).await.unwrap();
        let mut ended = pending_lab("ended", &u.id);
        ended.state = LabState::Stopped;
        a.create_lab(&ended).await.unwrap();
        let mut launches = tokio::task::JoinSet::new();
        for n in 0..16 {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            let lab = pending_lab(&format!("lab-{n}"), &u.id);
            launches.spawn(async move {
                store
                    .create_lab_within(
                        &lab,
                        &insitu_store::LabLimits {
                            labs: 2,
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap()
            });
        }
        let mut created = 0;
        while let Some(done) = launches.join_next().await {
            match done.unwrap() {
                LabAdmission::Created => created += 1,
                LabAdmission::OverLimit { active } => assert_eq!(active, 2, "{backend}"),
                other => panic!("{backend}: {other:?}"),
            }
        }
        assert_eq!(created, 2, "{backend}: a stopped lab does not count");
        let active = b
            .labs_of_user(&u.id)
            .await
            .unwrap()
            .iter()
            .filter(|l| l.state.is_active())
            .count();
        assert_eq!(active, 2, "{backend}");
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
            zone: insitu_domain::Name::local_zone(),
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
        assert!(
            store
                .record_run_start(&id, 4242, Some(99), 15)
                .await
                .unwrap(),
            "{b}"
        );
        let started = store.run(&id).await.unwrap().unwrap();
        assert_eq!(
            (
                started.state,
                started.pid,
                started.pid_start,
                started.started_at_ms
            ),
            (RunState::Running, Some(4242), Some(99), Some(15)),
            "{b}"
        );
        (run.pid, run.pid_start, run.started_at_ms) = (Some(4242), Some(99), Some(15));
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
        // A run cancelled while its engine started is not recorded as
        // started.
        let late = RunId::from_random([6, 5, 4, 3, 2, 1]);
        run.id = late.clone();
        run.lineage = late.clone();
        (run.state, run.pid, run.pid_start, run.started_at_ms) =
            (RunState::Queued, None, None, None);
        (run.finished_at_ms, run.outputs, run.cleaned_at_ms) = (None, None, None);
        store.create_run(&run).await.unwrap();
        assert!(
            store
                .move_run(&late, RunState::Queued, RunState::Running)
                .await
                .unwrap()
        );
        assert!(
            store
                .move_run(&late, RunState::Running, RunState::Cancelled)
                .await
                .unwrap()
        );
        assert!(
            !store
                .record_run_start(&late, 4243, Some(98), 16)
                .await
                .unwrap(),
            "{b}"
        );
        let cancelled = store.run(&late).await.unwrap().unwrap();
        assert_eq!(
            (cancelled.state, cancelled.pid, cancelled.started_at_ms),
            (RunState::Cancelled, None, None),
            "{b}"
        );
    }
}

#[tokio::test]
async fn two_stores_on_one_database_never_remove_the_last_admin() {
    for (a, b, _dir) in store_pairs().await {
        let backend = a.backend().as_str();
        let mut survivor = a.create_user(user("root", Role::Admin)).await.unwrap();
        for round in 0..10 {
            let rival = a
                .create_user(user(&format!("rival-{round}"), Role::Admin))
                .await
                .unwrap();
            let (x, y) = tokio::join!(
                a.update_user(&survivor.id, Some(Role::User), None),
                b.update_user(&rival.id, None, Some(true)),
            );
            let (x, y) = (x.unwrap(), y.unwrap());
            assert!(
                [x, y].contains(&UserUpdate::Done) && x != y,
                "{backend} round {round}: {x:?} {y:?}"
            );
            assert_eq!(a.count_active_admins().await.unwrap(), 1, "{backend}");
            if x == UserUpdate::Done {
                survivor = rival;
            }
        }
        // A change that keeps an administrator is never refused.
        let other = a.create_user(user("other", Role::User)).await.unwrap();
        assert_eq!(
            a.update_user(&other.id, Some(Role::Moderator), Some(true))
                .await
                .unwrap(),
            UserUpdate::Done
        );
    }
}

/// A database migrated by an earlier release (every migration of its
/// backend but the newest) takes the rest at start and keeps its
/// accounts; checked on every backend, so both directories hold the same
/// versions and each applies on top of its predecessors.
#[tokio::test]
async fn a_database_migrated_before_takes_the_newer_migrations_at_start() {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let mut databases = vec![(
        "sqlite",
        format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display()),
    )];
    if let Ok(admin) = std::env::var("INSITU_TEST_POSTGRES_URL") {
        let name = format!("insitu_store_{}", uuid_like());
        let url = insitu_store::create_postgres_database(&admin, &name)
            .await
            .unwrap();
        databases.push(("postgres", url));
    }
    let versions = |backend: &str| {
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut files: Vec<_> = std::fs::read_dir(source)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    };
    let names = |files: &[std::path::PathBuf]| -> Vec<String> {
        files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(
        names(&versions("sqlite")),
        names(&versions("postgres")),
        "both backends have the same migrations"
    );
    for (backend, url) in databases {
        let files = versions(backend);
        let (newest, older) = files.split_last().unwrap();
        let earlier = tempfile::tempdir().unwrap();
        for f in older {
            std::fs::copy(f, earlier.path().join(f.file_name().unwrap())).unwrap();
        }
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(earlier.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, role, disabled, created_at) \
             VALUES ('u-before', 'before', 'x', 'user', 0, 1)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = Store::connect(&url).await.unwrap();
        let kept = store
            .user_by_username(&"before".parse::<Username>().unwrap())
            .await
            .unwrap();
        assert!(kept.is_some(), "{backend}: the account made before is kept");
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let applied: Vec<i64> =
            sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<i64, _>("version"))
                .collect();
        let expected: Vec<i64> = files
            .iter()
            .map(|f| {
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                name.split('_').next().unwrap().parse().unwrap()
            })
            .collect();
        assert_eq!(applied, expected, "{backend}: {newest:?} applied on top");
        pool.close().await;
    }
}

#[tokio::test]
async fn teams_invite_accept_and_always_keep_an_owner() {
    use insitu_domain::{Name, TeamRole};
    use insitu_store::{MemberChange, TeamChange};
    for (store, _dir) in backends().await {
        let ann = store.create_user(user("ann", Role::User)).await.unwrap();
        let bob = store.create_user(user("bob", Role::User)).await.unwrap();
        let team: Name = "astro".parse().unwrap();
        assert!(store.create_team(&team, &ann.id, 1).await.unwrap());
        assert!(
            !store.create_team(&team, &bob.id, 2).await.unwrap(),
            "taken"
        );
        assert!(store.team_exists(&team).await.unwrap());
        assert!(
            store
                .invite_member(&team, &bob.id, TeamRole::Member, &ann.id, 3)
                .await
                .unwrap()
        );
        assert!(
            !store
                .invite_member(&team, &bob.id, TeamRole::Owner, &ann.id, 4)
                .await
                .unwrap(),
            "invited once"
        );
        let bobs = store.teams_of_user(&bob.id).await.unwrap();
        assert_eq!(bobs.len(), 1);
        assert!(!bobs[0].accepted && bobs[0].role == TeamRole::Member);
        let accept = store
            .change_member(&team, &bob.id, MemberChange::Accept)
            .await
            .unwrap();
        assert_eq!(accept, TeamChange::Done);
        let members = store.team_members(&team).await.unwrap();
        let names: Vec<_> = members.iter().map(|m| m.username.as_str()).collect();
        assert_eq!(names, ["ann", "bob"], "owners first");
        assert!(members.iter().all(|m| m.accepted));
        // The only owner can neither leave nor step down.
        for change in [
            MemberChange::Remove,
            MemberChange::SetRole(TeamRole::Member),
        ] {
            assert_eq!(
                store.change_member(&team, &ann.id, change).await.unwrap(),
                TeamChange::WouldLeaveNoOwner
            );
        }
        // An invited owner does not count until they accept.
        store
            .change_member(&team, &bob.id, MemberChange::Remove)
            .await
            .unwrap();
        store
            .invite_member(&team, &bob.id, TeamRole::Owner, &ann.id, 5)
            .await
            .unwrap();
        assert_eq!(
            store
                .change_member(&team, &ann.id, MemberChange::Remove)
                .await
                .unwrap(),
            TeamChange::WouldLeaveNoOwner
        );
        store
            .change_member(&team, &bob.id, MemberChange::Accept)
            .await
            .unwrap();
        assert_eq!(
            store
                .change_member(&team, &ann.id, MemberChange::Remove)
                .await
                .unwrap(),
            TeamChange::Done
        );
        assert_eq!(
            store
                .change_member(&team, &ann.id, MemberChange::Remove)
                .await
                .unwrap(),
            TeamChange::NotMember
        );
        assert!(store.teams_of_user(&ann.id).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn two_owners_leaving_at_once_leave_one() {
    use insitu_domain::{Name, TeamRole};
    use insitu_store::{MemberChange, TeamChange};
    for (a, b, _dir) in store_pairs().await {
        let ann = a.create_user(user("ann", Role::User)).await.unwrap();
        let bob = a.create_user(user("bob", Role::User)).await.unwrap();
        let team: Name = "pair".parse().unwrap();
        a.create_team(&team, &ann.id, 1).await.unwrap();
        a.invite_member(&team, &bob.id, TeamRole::Owner, &ann.id, 2)
            .await
            .unwrap();
        a.change_member(&team, &bob.id, MemberChange::Accept)
            .await
            .unwrap();
        let (x, y) = tokio::join!(
            a.change_member(&team, &ann.id, MemberChange::Remove),
            b.change_member(&team, &bob.id, MemberChange::Remove),
        );
        let outcomes = [x.unwrap(), y.unwrap()];
        assert!(outcomes.contains(&TeamChange::Done), "{outcomes:?}");
        assert!(
            outcomes.contains(&TeamChange::WouldLeaveNoOwner),
            "{outcomes:?}"
        );
        let members = a.team_members(&team).await.unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].role, TeamRole::Owner);
    }
}

#[tokio::test]
async fn revoking_a_share_ends_that_users_sessions_in_that_lab_only() {
    use insitu_store::ProxySessionRecord;
    for (store, _dir) in backends().await {
        let ann = store.create_user(user("ann", Role::User)).await.unwrap();
        let bob = store.create_user(user("bob", Role::User)).await.unwrap();
        for id in ["lab-a", "lab-b"] {
            store.create_lab(&pending_lab(id, &ann.id)).await.unwrap();
        }
        let (a, b) = ("lab-a".parse().unwrap(), "lab-b".parse().unwrap());
        assert!(store.add_lab_share(&a, &bob.id, 1).await.unwrap());
        assert!(!store.add_lab_share(&a, &bob.id, 2).await.unwrap(), "once");
        assert!(store.add_lab_share(&b, &bob.id, 3).await.unwrap());
        let names: Vec<_> = store
            .lab_shares(&a)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, n)| n.to_string())
            .collect();
        assert_eq!(names, ["bob"]);
        assert_eq!(
            store.labs_shared_with(&bob.id).await.unwrap(),
            [b.clone(), a.clone()]
        );
        assert_eq!(store.all_lab_shares().await.unwrap().len(), 2);
        let session = |n: u8, lab: &str, user: &insitu_domain::UserId| ProxySessionRecord {
            digest: format!("{n:02x}").repeat(32),
            lab_id: lab.parse().unwrap(),
            user_id: user.clone(),
            created_at_ms: 1,
            expires_at_ms: i64::MAX,
        };
        for s in [
            session(1, "lab-a", &bob.id),
            session(2, "lab-b", &bob.id),
            session(3, "lab-a", &ann.id),
        ] {
            store.insert_proxy_session(&s, 10).await.unwrap();
        }
        assert!(store.remove_lab_share(&a, &bob.id).await.unwrap());
        assert!(!store.remove_lab_share(&a, &bob.id).await.unwrap());
        assert!(
            store
                .proxy_session(&"01".repeat(32))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .proxy_session(&"02".repeat(32))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .proxy_session(&"03".repeat(32))
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(store.labs_shared_with(&bob.id).await.unwrap(), [b]);
    }
}

fn devlab(name: &str, owner: &insitu_store::UserRecord) -> insitu_store::DevlabRecord {
    use insitu_domain::devlab::{BaseImages, Template};
    let bases = BaseImages {
        python: "localhost/insitu/python:3".into(),
        desktop: "localhost/insitu/desktop:1".into(),
    };
    insitu_store::DevlabRecord {
        name: name.parse().unwrap(),
        owner_id: owner.id.clone(),
        owner: owner.username.clone(),
        template: Template::WebTool,
        definition: Template::WebTool.definition("Tool", "Ada"),
        source: Template::WebTool.source(&bases),
        public: false,
        shared_with: Vec::new(),
        created_at: 100,
        updated_at: 100,
    }
}

fn build_of(d: &insitu_store::DevlabRecord) -> insitu_store::BuildRecord {
    insitu_store::BuildRecord {
        devlab: d.name.clone(),
        number: -1,
        version: d.definition.version.clone(),
        state: insitu_domain::BuildState::Queued,
        definition: d.definition.clone(),
        source: d.source.clone(),
        image: format!("localhost/insitu-devlab/{}:0.1.0-{{number}}", d.name),
        image_id: None,
        error: None,
        image_kept: true,
        imported: false,
        created_at: 200,
        started_at: None,
        finished_at: None,
    }
}

#[tokio::test]
async fn developed_datalabs_keep_their_drafts_builds_audience_and_decisions() {
    use insitu_domain::{BuildState, ReleaseState};
    use insitu_store::{BuildAdmission, Decision, ReleaseRecord};
    for (store, _dir) in backends().await {
        let b = store.backend().as_str();
        let ada = store
            .create_user(user("ada", Role::Developer))
            .await
            .unwrap();
        let bob = store.create_user(user("bob", Role::User)).await.unwrap();
        let moe = store
            .create_user(user("moe", Role::Moderator))
            .await
            .unwrap();
        let d = devlab("tool", &ada);
        assert!(store.create_devlab(&d).await.unwrap(), "{b}");
        assert!(
            !store.create_devlab(&d).await.unwrap(),
            "a name is taken once ({b})"
        );
        assert_eq!(store.devlab("tool").await.unwrap().unwrap(), d, "{b}");

        let mut changed = d.definition.clone();
        changed.version = "1.0.0".into();
        store
            .update_devlab_draft(&d.name, &changed, &d.source, 150)
            .await
            .unwrap();
        store
            .set_devlab_audience(&d.name, false, std::slice::from_ref(&bob.id), 160)
            .await
            .unwrap();
        let again = store.devlab("tool").await.unwrap().unwrap();
        assert_eq!(again.definition.version, "1.0.0");
        assert_eq!(
            again.shared_with,
            std::slice::from_ref(&bob.username),
            "{b}"
        );
        assert_eq!(store.devlabs_of(&ada.id).await.unwrap().len(), 1);
        assert!(store.devlabs_of(&bob.id).await.unwrap().is_empty());

        // One build at a time, numbered from 0.
        assert_eq!(
            store.create_build(&build_of(&d)).await.unwrap(),
            BuildAdmission::Created(0)
        );
        assert_eq!(
            store.create_build(&build_of(&d)).await.unwrap(),
            BuildAdmission::Busy(0),
            "{b}"
        );
        let mut first = store.build("tool", 0).await.unwrap().unwrap();
        assert_eq!(first.image, "localhost/insitu-devlab/tool:0.1.0-0");
        first.state = BuildState::Succeeded;
        first.image_id = Some("abc".into());
        first.finished_at = Some(300);
        store.update_build(&first).await.unwrap();
        assert_eq!(
            store.create_build(&build_of(&d)).await.unwrap(),
            BuildAdmission::Created(1)
        );
        let mut second = store.build("tool", 1).await.unwrap().unwrap();
        second.state = BuildState::Succeeded;
        store.update_build(&second).await.unwrap();
        assert_eq!(
            store
                .builds_of("tool")
                .await
                .unwrap()
                .iter()
                .map(|b| b.number)
                .collect::<Vec<_>>(),
            [1, 0]
        );

        // Submitted once; decided once; a version is published once.
        let release = |number| ReleaseRecord {
            devlab: d.name.clone(),
            number,
            version: "0.1.0".into(),
            state: ReleaseState::Submitted,
            reason: None,
            submitted_by: ada.username.clone(),
            submitted_at: 400,
            decided_by: None,
            decided_at: None,
        };
        assert!(store.insert_release(&release(0)).await.unwrap());
        assert!(!store.insert_release(&release(0)).await.unwrap(), "{b}");
        assert!(store.insert_release(&release(1)).await.unwrap());
        assert_eq!(
            store
                .releases_in_state(ReleaseState::Submitted)
                .await
                .unwrap()
                .len(),
            2
        );
        let decide = |n, state| {
            let (store, d, moe) = (store.clone(), d.name.clone(), moe.username.clone());
            async move {
                store
                    .decide_release(&d, n, state, None, &moe, 500)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(decide(0, ReleaseState::Approved).await, Decision::Done);
        assert_eq!(
            decide(0, ReleaseState::Rejected).await,
            Decision::NotPending,
            "{b}"
        );
        assert_eq!(
            decide(1, ReleaseState::Approved).await,
            Decision::VersionPublished,
            "{b}"
        );
        assert_eq!(decide(1, ReleaseState::Rejected).await, Decision::Done);
        let releases = store.releases_of("tool").await.unwrap();
        assert_eq!(releases[0].state, ReleaseState::Rejected);
        assert_eq!(releases[1].decided_by.as_ref(), Some(&moe.username));

        store.set_star(&d.name, &bob.id, true).await.unwrap();
        store.set_star(&d.name, &bob.id, true).await.unwrap();
        assert_eq!(store.star_counts().await.unwrap()["tool"], 1, "{b}");
        assert_eq!(store.starred_by(&bob.id).await.unwrap(), ["tool"]);
        store.delete_devlab(&d.name).await.unwrap();
        assert!(store.devlab("tool").await.unwrap().is_none());
        assert!(store.builds_of("tool").await.unwrap().is_empty(), "{b}");
        assert!(store.star_counts().await.unwrap().is_empty());
    }
}
