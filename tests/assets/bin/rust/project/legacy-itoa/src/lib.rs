//! A stand-in for an older itoa, so the lock file holds two versions of one crate name.
pub fn fmt(n: u32) -> String {
    n.to_string()
}
