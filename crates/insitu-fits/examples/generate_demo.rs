//! Writes the demo data volumes under the directory given as first argument
//! (default `demo-data`) and prints what was written.
//!
//! `cargo run -p insitu-fits --example generate_demo -- /tmp/demo`

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "demo-data".to_owned()),
    );
    for v in insitu_fits::generate_demo_volumes(&root)? {
        println!("{} ({}): {}", v.name, v.path.display(), v.title);
        for f in &v.files {
            println!("  {f}");
        }
    }
    Ok(())
}
