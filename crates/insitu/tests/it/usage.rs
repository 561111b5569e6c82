//! The operator's console over time: while a lab runs, samples of the
//! platform's use (labs running, CPU the labs used, workspace storage) are
//! recorded in the store and come back from `GET /api/v1/admin/usage` in
//! steps, and as SVG plots on `/admin/labs`; each lab shows its zone and
//! its CPU now.

use serde_json::Value;

use crate::harness::*;
use crate::labs::{launch, sandbox_available, settle};

#[tokio::test]
async fn usage_is_sampled_while_a_lab_runs_and_served_in_steps() {
    if !sandbox_available() {
        return;
    }
    for db in backends() {
        let app = spawn_with(Options {
            db,
            configure: |c| c.usage.sample_every = "1s".to_owned(),
            ..Options::default()
        })
        .await;
        let admin = app.user_with_role("olga", "admin").await;
        let mona = app.user_with_role("mona", "user").await;
        let started = insitu_core::clock::now();
        let (status, lab) = launch(&app, &mona, "testapp", &[]).await;
        assert_eq!(status, 202, "{lab}");
        let id = lab["id"].as_str().unwrap().to_owned();
        assert_eq!(settle(&app, &mona, &id).await["state"], "running");
        // Something in Mona's workspace for the storage samples to count.
        let workspace = app.dir.path().join("data/workspaces/mona");
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::write(workspace.join("catalogue.fits"), vec![7u8; 300_000]).unwrap();

        let url = app.u(&format!(
            "/api/v1/admin/usage?from={}&to={}&step=1",
            started - 5,
            started + 600
        ));
        let mut last = Value::Null;
        let mut seen = false;
        for _ in 0..300 {
            let (status, body) = get_json(&plain(), &url, &admin).await;
            assert_eq!(status, 200, "{body}");
            let points = body["points"].as_array().unwrap();
            assert_eq!(points.len(), 605, "one point per step");
            let running = points.iter().any(|p| p["labs_running"].as_u64() >= Some(1));
            let cpu: f64 = points.iter().filter_map(|p| p["cpu_hours"].as_f64()).sum();
            let stored = points
                .iter()
                .filter_map(|p| p["storage_bytes"].as_u64())
                .max()
                .unwrap_or(0);
            last = body;
            if running && cpu > 0.0 && stored >= 300_000 {
                seen = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(
            seen,
            "{db:?}: no sample shows the running lab, its CPU and the workspace: {last}"
        );
        assert_eq!(last["step_seconds"], 1);

        // Every lab runs in the local zone; once in two samples, its CPU
        // now is known (where control groups count it).
        let mut item = Value::Null;
        for _ in 0..50 {
            let (_, labs) = get_json(&plain(), &app.u("/api/v1/admin/labs"), &admin).await;
            item = labs["items"][0].clone();
            if !item["cpu_cores"].is_null() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(item["zone"], "local", "{item}");
        if std::env::var("INSITU_REQUIRE_ISOLATION").as_deref() == Ok("1") {
            assert!(
                item["cpu_cores"].as_f64().is_some_and(|c| c >= 0.0),
                "{item}"
            );
        }

        // The console draws the same series as three plots.
        let console = app.login("olga", PASSWORD).await;
        let page = console
            .client
            .get(app.u("/admin/labs?usage=1h"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for chart in ["usage-labs", "usage-cpu", "usage-storage"] {
            assert!(page.contains(&format!("id=\"{chart}\"")), "{chart}: {page}");
        }
        assert!(page.contains("class=\"bar\""), "{page}");
        assert!(page.contains(">local<"), "{page}");

        // A range the server will not compute is a clear error.
        for q in [
            "from=10&to=5",
            "step=0",
            "from=0&to=100000000&step=1",
            "step=fortnight",
            "zone=x",
        ] {
            let (status, body) = get_json(
                &plain(),
                &app.u(&format!("/api/v1/admin/usage?{q}")),
                &admin,
            )
            .await;
            assert_eq!(
                (status, body["code"].as_str()),
                (400, Some("invalid_query")),
                "{q}: {body}"
            );
        }
    }
}
