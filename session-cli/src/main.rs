//! sessionctl (being written).
fn main() {}
