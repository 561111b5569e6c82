//! Large bodies are streamed both ways, never buffered whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::support::{LAB, OWNER, Rig, Zeros, rss_bytes};

const SIZE: u64 = 200 * 1024 * 1024;
/// Far below `SIZE`: buffering either body would blow it.
const MAX_GROWTH: u64 = 64 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_bodies_stream_through_with_bounded_memory() {
    let rig = Rig::start().await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    // Warm up connections and allocator arenas.
    assert_eq!(
        rig.get("/labs/lab-1/", &[("cookie", &cookie)]).await.status,
        StatusCode::OK
    );

    let baseline = rss_bytes();
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (peak, done) = (peak.clone(), done.clone());
        async move {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(rss_bytes(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });

    let uploader = Client::builder(TokioExecutor::new()).build_http::<Zeros>();
    let upload = Request::post(rig.url("/labs/lab-1/upload"))
        .header("cookie", &cookie)
        .body(Zeros::new(SIZE))
        .unwrap();
    let response = uploader.request(upload).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let received: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(received["received"], SIZE);

    let downloader = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let download = Request::get(rig.url(&format!("/labs/lab-1/download?bytes={SIZE}")))
        .header("cookie", &cookie)
        .body(Empty::new())
        .unwrap();
    let response = downloader.request(download).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-length"],
        SIZE.to_string().as_str()
    );
    let mut body = response.into_body();
    let mut downloaded = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            downloaded += data.len() as u64;
        }
    }
    assert_eq!(downloaded, SIZE);

    done.store(true, Ordering::SeqCst);
    sampler.await.unwrap();
    let growth = peak.load(Ordering::SeqCst).saturating_sub(baseline);
    assert!(
        growth < MAX_GROWTH,
        "RSS grew by {} MiB while streaming 2 × {} MiB",
        growth >> 20,
        SIZE >> 20
    );
    eprintln!("RSS growth while streaming: {} KiB", growth >> 10);
}
