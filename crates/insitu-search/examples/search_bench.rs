//! The discovery index against PostgreSQL (full-text search with a GIN
//! index, cone search with q3c) on the same synthetic dataset records:
//! build rate, then p50/p99 latency of a selective text query with a
//! mission filter and instrument counts, a broad text query with mission
//! counts, and a 0.5° cone, each from two client threads. Run by
//! `bench/search.sh`, which starts the PostgreSQL.
//!
//! Usage: search_bench RECORDS POSTGRES_URL [QUERIES_PER_CLIENT]
//! (`-` for the URL measures the discovery index alone).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use insitu_search::*;

const MISSIONS: [(&str, f64, &[&str]); 7] = [
    ("Hubble", 0.40, &["WFC3", "ACS", "STIS", "COS"]),
    ("XMM-Newton", 0.20, &["EPIC-pn", "EPIC-MOS", "RGS"]),
    ("Herschel", 0.15, &["PACS", "SPIRE", "HIFI"]),
    ("ISO", 0.10, &["ISOCAM", "ISOPHOT"]),
    ("JWST", 0.08, &["NIRCam", "MIRI", "NIRSpec"]),
    ("Gaia", 0.05, &["RVS", "BP/RP"]),
    ("Planck", 0.02, &["LFI", "HFI"]),
];
const FILTERS: [&str; 6] = ["F606W", "F814W", "G", "R", "I", "Z"];
/// Words every record draws its description from; `survey` is in a fifth
/// of them, each selective word in about one in a hundred.
const COMMON: [&str; 12] = [
    "image",
    "calibrated",
    "frame",
    "field",
    "pointing",
    "mosaic",
    "spectrum",
    "exposure",
    "observation",
    "reduced",
    "level",
    "product",
];
const SELECTIVE: [&str; 10] = [
    "nebula",
    "quasar",
    "cluster",
    "supernova",
    "pulsar",
    "galaxy",
    "comet",
    "nova",
    "blazar",
    "protostar",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() * v.len() as f64) as usize % v.len()]
    }
}

struct Record {
    id: u64,
    mission: &'static str,
    instrument: &'static str,
    filter: &'static str,
    title: String,
    description: String,
    ra: f64,
    dec: f64,
    date: String,
}

fn records(n: usize) -> Vec<Record> {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    (0..n)
        .map(|i| {
            let u = rng.next();
            let mut acc = 0.0;
            let (mission, _, instruments) = MISSIONS
                .iter()
                .find(|(_, w, _)| {
                    acc += w;
                    u < acc
                })
                .unwrap_or(&MISSIONS[0]);
            let instrument = rng.pick(instruments);
            let filter = rng.pick(&FILTERS);
            let object = format!("NGC {}", 1 + (rng.next() * 7840.0) as u32);
            let mut words: Vec<&str> = (0..6).map(|_| rng.pick(&COMMON)).collect();
            if rng.next() < 0.2 {
                words.push("survey");
            }
            if rng.next() < 0.1 {
                words.push(rng.pick(&SELECTIVE));
            }
            let ra = rng.next() * 360.0;
            let dec = (rng.next() * 2.0 - 1.0).asin().to_degrees();
            let year = 1995 + (rng.next() * 30.0) as u32;
            Record {
                id: i as u64,
                mission,
                instrument,
                filter,
                title: format!("{object} {instrument} {filter}"),
                description: words.join(" "),
                ra,
                dec,
                date: format!(
                    "{year}-{:02}-{:02}",
                    1 + (rng.next() * 12.0) as u32 % 12,
                    1 + (rng.next() * 28.0) as u32
                ),
            }
        })
        .collect()
}

fn asset(r: &Record) -> Asset {
    let mut a = Asset::new(
        AssetKind::Dataset,
        &format!("f{}.fits", r.id),
        &r.title,
        vec!["public".to_owned()],
    );
    a.volume = Some("bench".to_owned());
    a.description = r.description.clone();
    a.mission = vec![r.mission.to_owned()];
    a.instrument = vec![r.instrument.to_owned()];
    a.filter = vec![r.filter.to_owned()];
    a.date_obs = Some(r.date.clone());
    a.shape = Some(Shape::point(SkyPos::new(r.ra, r.dec).unwrap()));
    a
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.99))
}

/// Runs `f(client, i)` `per_client` times on each of two threads.
fn two_clients(per_client: usize, f: impl Fn(usize, usize) + Sync) -> (f64, f64) {
    let all = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for c in 0..2 {
            let (f, all) = (&f, &all);
            s.spawn(move || {
                let mut mine = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let t = Instant::now();
                    f(c, i);
                    mine.push(t.elapsed());
                }
                all.lock().unwrap().extend(mine);
            });
        }
    });
    percentiles(all.into_inner().unwrap())
}

/// CPU seconds this process has used (all its threads), from
/// `/proc/self/stat`: on a shared machine, what the index build cost
/// whatever else ran beside it.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which ends at the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // utime and stime, fields 14 and 15 of the line, in clock ticks.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn row(name: &str, ours: (f64, f64), pg: Option<(f64, f64)>) {
    let theirs = pg.map_or_else(
        || "postgres not run".to_owned(),
        |pg| format!("postgres p50 {:>7.2} ms p99 {:>7.2} ms", pg.0, pg.1),
    );
    println!(
        "{name:<44} insitu p50 {:>7.2} ms p99 {:>7.2} ms | {theirs}",
        ours.0, ours.1
    );
}

/// Loads the records into PostgreSQL with its indexes; the runtime, a pool
/// and how long the load took.
fn postgres(url: &str, recs: &[Record]) -> (tokio::runtime::Runtime, sqlx::PgPool, Duration) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pool = rt.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(url).await.unwrap();
        for q in [
            "CREATE EXTENSION IF NOT EXISTS q3c",
            "DROP TABLE IF EXISTS datasets",
            "CREATE TABLE datasets (id bigint PRIMARY KEY, mission text, instrument text, filter text, \
             title text, description text, ra double precision, dec double precision, date_obs date, \
             tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', title || ' ' || description || ' ' || mission || ' ' || instrument)) STORED)",
        ] {
            sqlx::query(q).execute(&pool).await.unwrap();
        }
        pool
    });
    let mut csv = String::with_capacity(recs.len() * 120);
    for r in recs {
        csv.push_str(&format!(
            "{},{},{},{},\"{}\",\"{}\",{},{},{}\n",
            r.id, r.mission, r.instrument, r.filter, r.title, r.description, r.ra, r.dec, r.date
        ));
    }
    let t = Instant::now();
    rt.block_on(async {
        let mut conn = pool.acquire().await.unwrap();
        let mut copy = conn
            .copy_in_raw("COPY datasets (id, mission, instrument, filter, title, description, ra, dec, date_obs) FROM STDIN (FORMAT csv)")
            .await
            .unwrap();
        for chunk in csv.as_bytes().chunks(1 << 20) {
            copy.send(chunk).await.unwrap();
        }
        copy.finish().await.unwrap();
        drop(conn);
        for q in [
            "CREATE INDEX ON datasets USING gin (tsv)",
            "CREATE INDEX ON datasets (q3c_ang2ipix(ra, dec))",
            "CREATE INDEX ON datasets (mission)",
            "CLUSTER datasets USING datasets_q3c_ang2ipix_idx",
            "ANALYZE datasets",
        ] {
            sqlx::query(q).execute(&pool).await.unwrap();
        }
    });
    (rt, pool, t.elapsed())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let url = args
        .get(2)
        .cloned()
        .expect("usage: search_bench RECORDS POSTGRES_URL [QUERIES]");
    let per_client: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(500);
    println!(
        "{n} synthetic dataset records, {per_client} queries per client, 2 clients, {} cores",
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );
    let recs = records(n);

    // The discovery index, on disk.
    let dir = tempfile::tempdir().unwrap();
    let options = IndexOptions {
        threads: 2,
        memory_bytes: 1 << 30,
    };
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let (ix, _) = SearchIndex::open(&dir.path().join("ix"), options);
    for r in &recs {
        ix.add(&asset(r)).unwrap();
    }
    ix.commit().unwrap();
    let ours_build = t.elapsed();
    let ours_cpu = cpu_seconds() - cpu;

    // PostgreSQL with the same records.
    let pg = (url != "-").then(|| postgres(&url, &recs));
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let theirs = pg.as_ref().map_or_else(
        || "postgres not run".to_owned(),
        |(_, _, d)| {
            format!(
                "postgres {:>9.0} records/s ({:.1} s)",
                rate(*d),
                d.as_secs_f64()
            )
        },
    );
    println!(
        "{:<44} insitu {:>9.0} records/s ({:.1} s) | {theirs}",
        "build (load with indexes)",
        rate(ours_build),
        ours_build.as_secs_f64(),
    );
    println!(
        "(the index build used {ours_cpu:.1} CPU seconds: {:.0} records per CPU second)",
        n as f64 / ours_cpu.max(0.01)
    );

    let keys = vec!["public".to_owned()];
    let ix = Arc::new(ix);
    let word = |c: usize, i: usize| SELECTIVE[(c * 7 + i) % SELECTIVE.len()];
    let mission = |c: usize, i: usize| MISSIONS[(c + i) % 3].0;

    // Warm both up.
    for i in 0..50 {
        let r = SearchRequest::parse(Some(&format!(
            "q={}&facet=mission:{}",
            word(0, i),
            mission(0, i)
        )))
        .unwrap();
        ix.search(&r, &keys).unwrap();
    }
    let sample = ix
        .search(&SearchRequest::parse(Some("q=survey")).unwrap(), &keys)
        .unwrap();
    let selective = ix
        .search(
            &SearchRequest::parse(Some("q=nebula&facet=mission:Hubble")).unwrap(),
            &keys,
        )
        .unwrap();
    println!(
        "(broad query: {} hits; selective query: {} hits)",
        sample.total, selective.total
    );

    let ours_sel = two_clients(per_client, |c, i| {
        let r = SearchRequest::parse(Some(&format!(
            "q={}&facet=mission:{}",
            word(c, i),
            mission(c, i)
        )))
        .unwrap();
        let found = ix.search(&r, &keys).unwrap();
        assert!(!found.facets[&FacetName::Instrument].is_empty());
    });
    let pg_sel = pg.as_ref().map(|(rt, pool, _)| {
        two_clients(per_client, |c, i| {
            rt.block_on(async {
                let (w, m) = (word(c, i), mission(c, i));
                sqlx::query("SELECT id, title FROM datasets WHERE tsv @@ to_tsquery('simple', $1) AND mission = $2 \
                             ORDER BY ts_rank(tsv, to_tsquery('simple', $1)) DESC LIMIT 20")
                    .bind(w).bind(m).fetch_all(pool).await.unwrap();
                sqlx::query("SELECT instrument, count(*) FROM datasets WHERE tsv @@ to_tsquery('simple', $1) AND mission = $2 GROUP BY instrument")
                    .bind(w).bind(m).fetch_all(pool).await.unwrap();
            });
        })
    });
    row(
        "selective text + mission filter + instrument counts",
        ours_sel,
        pg_sel,
    );

    let ours_broad = two_clients(per_client / 5, |_, _| {
        let r = SearchRequest::parse(Some("q=survey")).unwrap();
        let found = ix.search(&r, &keys).unwrap();
        assert!(found.facets[&FacetName::Mission].len() == MISSIONS.len());
    });
    let pg_broad = pg.as_ref().map(|(rt, pool, _)| {
        two_clients(per_client / 5, |_, _| {
            rt.block_on(async {
                sqlx::query("SELECT id, title FROM datasets WHERE tsv @@ to_tsquery('simple', 'survey') \
                             ORDER BY ts_rank(tsv, to_tsquery('simple', 'survey')) DESC LIMIT 20")
                    .fetch_all(pool).await.unwrap();
                sqlx::query("SELECT mission, count(*) FROM datasets WHERE tsv @@ to_tsquery('simple', 'survey') GROUP BY mission")
                    .fetch_all(pool).await.unwrap();
            });
        })
    });
    row(
        "broad text (~20% hit) + mission counts",
        ours_broad,
        pg_broad,
    );

    let centre = |c: usize, i: usize| {
        let mut r = Rng(0xC0FFEE + (c * 100_003 + i) as u64);
        (r.next() * 360.0, (r.next() * 2.0 - 1.0).asin().to_degrees())
    };
    let ours_cone = two_clients(per_client, |c, i| {
        let (ra, dec) = centre(c, i);
        ix.cone(&Cone::new(ra, dec, 0.5).unwrap(), &keys, 10_000)
            .unwrap();
    });
    let pg_cone = pg.as_ref().map(|(rt, pool, _)| {
        two_clients(per_client, |c, i| {
            let (ra, dec) = centre(c, i);
            rt.block_on(async {
                sqlx::query("SELECT id, ra, dec, title FROM datasets WHERE q3c_radial_query(ra, dec, $1, $2, 0.5)")
                    .bind(ra).bind(dec).fetch_all(pool).await.unwrap();
            });
        })
    });
    row("cone 0.5 deg", ours_cone, pg_cone);
}
