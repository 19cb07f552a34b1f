//! Formats a number with both itoa versions.
pub fn format(n: u64) -> String {
    format!("{}/{}", itoa::Buffer::new().format(n), itoa04::fmt(n as u32))
}
