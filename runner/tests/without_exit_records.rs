//! The runner without the kernel's exit records (no `CAP_NET_ADMIN`): a child the kernel reaps between two polls is
//! in no figure, and the result says the peak is a lower bound and why. A test file of its own: it drops a
//! capability of its test thread.

mod support;

use runner::{Launch, run};
use schema::results::Outcome;
use std::time::Duration;

const CAP_NET_ADMIN: u32 = 12;

/// Drops `CAP_NET_ADMIN` from this thread's effective and permitted sets (capabilities are per thread).
fn drop_net_admin() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capget and capset with a version-3 header and two data structs, as the kernel expects.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0
        );
        data[0].effective &= !(1 << CAP_NET_ADMIN);
        data[0].permitted &= !(1 << CAP_NET_ADMIN);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
            0
        );
    }
}

#[test]
fn without_exit_records_a_child_the_kernel_reaps_makes_the_peak_a_lower_bound() {
    drop_net_admin();
    let why = runner::exit_records::listen()
        .err()
        .expect("the capability is gone");
    assert!(why.contains("Operation not permitted"), "{why}");
    let measured = run(
        &Launch {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(60),
            ..support::launch(support::hidden_memory(), ["ignored-child", "200", "1500"])
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
    assert_eq!(measured.lower_bound.len(), 1, "{:?}", measured.lower_bound);
    assert!(
        measured.lower_bound[0].starts_with(
            "the kernel reaps the children of a process that ignores SIGCHLD, and nobody can read their ru_maxrss \
             (cannot read the kernel's exit records (taskstats): Operation not permitted"
        ),
        "{}",
        measured.lower_bound[0]
    );
    assert!(measured.peak_rss_bytes.unwrap() < 200 * 1024 * 1024);
}
