//! CommandLineTools and ExpressionTools: [`bind`] (the command line),
//! [`stage`] (inputs and InitialWorkDir in place), [`mod@run`] (a job from
//! prepared inputs to its output object) and [`outputs`] (collecting and
//! checking what the job made).

pub mod bind;
pub mod outputs;
pub mod run;
pub mod stage;

pub use outputs::glob;
pub use run::{run_command_line_tool, run_expression_tool};
