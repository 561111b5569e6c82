//! Pages of the pipeline catalogue, the development page and runs.
