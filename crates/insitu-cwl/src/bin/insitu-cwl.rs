//! Thin binary around [`insitu_cwl::cli_main`].

fn main() {
    std::process::exit(insitu_cwl::cli_main(std::env::args_os().collect()));
}
