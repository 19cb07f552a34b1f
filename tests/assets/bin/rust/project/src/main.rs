//! Prints its process id; carries the dependency list in a `.dep-v0` section the way
//! `cargo auditable` links it in (a retained static in a dedicated linker section).

#[used]
#[link_section = ".dep-v0"]
static AUDITABLE_VERSION_INFO: [u8; include_bytes!(env!("GARRISON_AUDIT_DATA")).len()] =
    *include_bytes!(env!("GARRISON_AUDIT_DATA"));

cfg_if::cfg_if! {
    if #[cfg(unix)] {
        fn pid() -> u64 { unsafe { libc::getpid() as u64 } }
    } else {
        fn pid() -> u64 { 0 }
    }
}

fn main() {
    let marker = std::hint::black_box(&AUDITABLE_VERSION_INFO)[0];
    println!("{} {}", helper::format(pid()), marker);
}
