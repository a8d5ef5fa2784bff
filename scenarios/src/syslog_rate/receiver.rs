//! The measured side of `syslog-rate`: the receiver of seed A's service. A tokio UDP socket on loopback; each
//! datagram that parses as an RFC 5424 line becomes an execution record (several hundred KB in the seed) written
//! to the SQLite store, and every 5th record of a workflow fires a trim through the [`TrimDispatcher`]. A datagram
//! that does not parse is counted (the first error kept as an example) and the receiver goes on.

use super::driver::{DriverArgs, DriverFigures};
use super::record_shapes::RecordShapes;
use super::rfc5424::parse_line;
use anyhow::Context as _;
use memproof::exec_history::store::{ExecutionStore, InsertedFields};
use memproof::exec_history::trim_dispatch::TrimDispatcher;
use std::time::Duration;
use tokio::net::UdpSocket;

/// After the driver has finished, the receiver stops once this long passes without a datagram (the rest were
/// dropped by the kernel) or as soon as it has received every datagram sent.
const QUIET_AFTER_DRIVER: Duration = Duration::from_millis(500);
/// The receive buffer the receiver asks for; the kernel caps it at `net.core.rmem_max`.
const RECEIVE_BUFFER_BYTES: libc::c_int = 8 << 20;

/// What the receiver counted.
#[derive(Debug, Clone, Default)]
pub struct ReceiverFigures {
    pub driver: DriverFigures,
    /// Datagrams received, valid or not.
    pub messages_received: u64,
    pub messages_invalid: u64,
    /// The first malformed datagram's error.
    pub first_invalid_error: Option<String>,
    pub records_written: u64,
    /// Records written whose fields the prefix regex could not read (a full parse at insert read them or not).
    pub fast_path_misses_at_insert: u64,
    pub unreadable_at_insert: u64,
}

fn enlarge_receive_buffer(socket: &UdpSocket) {
    use std::os::fd::AsRawFd as _;
    // SAFETY: a valid socket fd and a c_int option value of the right size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&RECEIVE_BUFFER_BYTES as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Receives the driver's stream into `store`, firing trims through `dispatcher`. `start_driver` is called with the
/// receiver's address once it listens, and returns a blocking wait for the driver's figures.
pub async fn receive_stream(
    store: &ExecutionStore,
    dispatcher: &TrimDispatcher,
    shapes: &RecordShapes,
    driver_args: DriverArgs,
    start_driver: impl FnOnce(
        &DriverArgs,
    ) -> anyhow::Result<
        Box<dyn FnOnce() -> anyhow::Result<DriverFigures> + Send>,
    >,
) -> anyhow::Result<ReceiverFigures> {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .context("cannot bind the receiver's UDP socket")?;
    enlarge_receive_buffer(&socket);
    let driver_args = DriverArgs {
        target: socket.local_addr()?.to_string(),
        ..driver_args
    };
    let wait_for_driver = start_driver(&driver_args)?;
    let mut driver_done = tokio::task::spawn_blocking(wait_for_driver);
    let mut figures = ReceiverFigures::default();
    let mut driver_finished: Option<DriverFigures> = None;
    // The largest UDP payload.
    let mut buffer = vec![0u8; 65_536];
    loop {
        let received = match &driver_finished {
            None => tokio::select! {
                received = socket.recv_from(&mut buffer) => received,
                joined = &mut driver_done => {
                    let driver = joined.context("the driver's waiter panicked")??;
                    driver_finished = Some(driver);
                    continue;
                }
            },
            Some(driver) => {
                if figures.messages_received >= driver.messages_sent {
                    break;
                }
                match tokio::time::timeout(QUIET_AFTER_DRIVER, socket.recv_from(&mut buffer)).await
                {
                    Ok(received) => received,
                    Err(_) => break,
                }
            }
        };
        let (n_bytes, _) = received.context("the receiver's UDP socket failed")?;
        figures.messages_received += 1;
        let alert = match parse_line(&buffer[..n_bytes]) {
            Ok(alert) => alert,
            Err(error) => {
                figures.messages_invalid += 1;
                figures
                    .first_invalid_error
                    .get_or_insert_with(|| error.to_string());
                continue;
            }
        };
        let key = format!("workflow_execution/s{:010}", alert.seq);
        let value = shapes.record_json(&key, &alert.workflow_id, alert.timestamp_ns, alert.seq);
        match store.insert(&key, &value)? {
            InsertedFields::Prefix => {}
            InsertedFields::FullParseFallback => figures.fast_path_misses_at_insert += 1,
            InsertedFields::Unreadable => {
                figures.fast_path_misses_at_insert += 1;
                figures.unreadable_at_insert += 1;
            }
        }
        drop(value);
        figures.records_written += 1;
        dispatcher.record_written(&alert.workflow_id);
    }
    figures.driver = driver_finished.unwrap_or_default();
    Ok(figures)
}
