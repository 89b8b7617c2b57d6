//! One integration test binary (one link of polars), a module per feature.
mod it;
