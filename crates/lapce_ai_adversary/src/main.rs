//! Hostile peers for the adversarial suite (`__test__/adversary`).
fn main() {}
