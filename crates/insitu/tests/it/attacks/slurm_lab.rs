//! Labs on a cluster's node listen on the node's network, where anyone on
//! the cluster can connect: the tool must refuse everything that lacks the
//! lab's secret, which only the proxy presents. Here JupyterLab as a Slurm
//! job, reached straight at the node's address and port (as another user's
//! job on the cluster would) without a token and with a wrong one; and a
//! datalab that takes no secret is refused in a Slurm zone.

use serde_json::json;

use crate::harness::*;
use crate::lifecycle::id_of;
use crate::slurm_labs::{
    CLUSTER, OwnCluster, cluster_app, launch_in, running_on_cluster, slurm_conf,
};

#[tokio::test]
async fn a_lab_on_a_node_cannot_be_reached_without_its_secret() {
    if slurm_conf().is_none() {
        return;
    }
    let cluster = OwnCluster::start();
    let conf = cluster.conf.clone();
    let (app, _jobs) = cluster_app(Db::Sqlite, &conf).await;
    let token = app.user_with_role("mallory", "user").await;

    // A tool that would take anyone's requests never reaches the cluster.
    let (status, e) = launch_in(&app, &token, json!({"datalab": "testapp", "zone": CLUSTER})).await;
    assert_eq!(status, 409, "{e}");
    assert_eq!(e["code"], "zone_needs_credential");

    let lab = running_on_cluster(&app, &token, "jupyter-small").await;
    let id = id_of(&lab);
    let url = app.config().platform().database_url();
    let store = insitu_store::Store::connect(url.expose()).await.unwrap();
    let record = store.lab(&id.parse().unwrap()).await.unwrap().unwrap();
    store.close().await;
    let (host, port) = (record.host.unwrap(), record.port.unwrap());
    let direct = format!("http://{host}:{port}/labs/{id}/api/contents/");
    let client = plain();
    let r = client.get(&direct).send().await.unwrap();
    assert!(
        [401, 403].contains(&r.status().as_u16()),
        "no token: {}",
        r.status()
    );
    let r = client
        .get(&direct)
        .header("Authorization", format!("token {}", "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert!(
        [401, 403].contains(&r.status().as_u16()),
        "a wrong token: {}",
        r.status()
    );
    let r = client
        .get(format!("{direct}?token={}", "f".repeat(64)))
        .send()
        .await
        .unwrap();
    assert!(
        [401, 403].contains(&r.status().as_u16()),
        "a wrong token in the query: {}",
        r.status()
    );
    // Nor does the job's script keep the secret where the cluster reads it.
    let script = std::fs::read_to_string(
        app.config()
            .data_dir
            .join("labs")
            .join(&id)
            .join("lab.sbatch"),
    )
    .unwrap();
    let secret =
        std::fs::read_to_string(app.config().data_dir.join("labs").join(&id).join("secret"))
            .unwrap();
    let secret = secret.split_whitespace().nth(1).unwrap();
    assert!(
        !script.contains(secret),
        "the secret is not in the job's script"
    );
    assert!(
        !app.config()
            .data_dir
            .join("labs")
            .join(&id)
            .join("lab.private")
            .exists(),
        "the private variables are gone once the job has read them"
    );
}

/// Another process on the node listens on the port the platform chose for
/// a lab before the lab's job starts (a user squatting ports on a shared
/// node, hoping for the lab's traffic and its secret): the job ends
/// without starting the tool, the lab fails saying the port is in use, and
/// the squatter never gets a connection from the platform.
#[tokio::test]
async fn a_process_squatting_the_labs_port_on_the_node_gets_no_connection() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    if slurm_conf().is_none() {
        return;
    }
    let cluster = OwnCluster::start();
    let conf = cluster.conf.clone();
    let (app, _jobs) = cluster_app(Db::Sqlite, &conf).await;
    let token = app.user_with_role("oscar", "user").await;
    // Every CPU of the node taken, so the next lab waits in the queue.
    let blocker = running_on_cluster(&app, &token, "secretapp-big").await;
    let (status, lab) = launch_in(
        &app,
        &token,
        json!({"datalab": "secretapp", "zone": CLUSTER}),
    )
    .await;
    assert_eq!(status, 202, "{lab}");
    let id = id_of(&lab);
    // Its port, recorded once the job is submitted.
    let url = app.config().platform().database_url();
    let store = insitu_store::Store::connect(url.expose()).await.unwrap();
    let mut port = None;
    for _ in 0..600 {
        let record = store.lab(&id.parse().unwrap()).await.unwrap().unwrap();
        if let (Some(p), Some(_)) = (record.port, record.job) {
            port = Some(u16::try_from(p).unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    store.close().await;
    let port = port.expect("the lab's job was submitted with a port");
    let squatter = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&connections);
    std::thread::spawn(move || {
        for stream in squatter.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            use std::io::Write;
            let mut s = stream;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        }
    });
    // The node frees up: the lab's job starts, finds its port taken.
    crate::lifecycle::stop(&app, &token, &id_of(&blocker)).await;
    let lab = crate::lifecycle::wait_for(
        &app,
        &token,
        &id,
        std::time::Duration::from_secs(120),
        |l| l["state"] != "pending" && l["state"] != "starting",
    )
    .await;
    assert_eq!(lab["state"], "failed", "{lab}");
    let reason = lab["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("port {port} is already in use")),
        "{lab}"
    );
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the platform connected to the squatter"
    );
}
