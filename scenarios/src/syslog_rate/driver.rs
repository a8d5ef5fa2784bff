//! The load side of `syslog-rate`, in a process of its own: RFC 5424 lines over UDP on loopback at a set rate,
//! the workflows taking turns of [`TRIM_EVERY_NTH_RECORD`] messages (see [`workflow_of_message`]), with every
//! `invalid_every`th datagram malformed on purpose (alternately garbage and a line cut short) so the receiver's
//! bad-input path runs under load too.

use super::rfc5424::{SyslogAlert, format_line};
use anyhow::Context as _;
use memproof::exec_history::trim_dispatch::TRIM_EVERY_NTH_RECORD;
use serde::{Deserialize, Serialize};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// What the case asks the driver to send.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriverArgs {
    /// The receiver's address, `127.0.0.1:port`.
    pub target: String,
    pub messages: u64,
    pub rate_per_second: f64,
    pub workflows: u64,
    /// Every n-th datagram is malformed; 0 sends none.
    pub invalid_every: u64,
    /// The timestamp of message 0; message `seq` is stamped `start_ns + seq` milliseconds.
    pub start_ns: i64,
}

/// What the driver did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DriverFigures {
    /// Datagrams handed to the kernel, valid and malformed.
    pub messages_sent: u64,
    /// Of those, malformed on purpose.
    pub invalid_sent: u64,
    /// `send_to` calls that failed (the datagram never left).
    pub send_errors: u64,
}

/// The workflow of record `index` of the seeded table.
pub fn workflow_of(index: u64, workflows: u64) -> String {
    format!("wf-{}", index % workflows.max(1))
}

/// The workflow of message `seq`: the workflows take turns of [`TRIM_EVERY_NTH_RECORD`] messages, so each
/// workflow's trims fire half a trigger period after the other's (10 ms at ci's 500 messages/s over two), where
/// one message after the other's (2 ms) made whether the two trims' work overlapped a matter of scheduling: the
/// merged fix's peak heap spread 1.12x over one ci run's five repeats at 50 records, and best's 1.114x over seven
/// runs as medians. Seed A's syslog carried its workflows in no particular order; this is one of them.
pub fn workflow_of_message(seq: u64, workflows: u64) -> String {
    workflow_of(seq / TRIM_EVERY_NTH_RECORD, workflows)
}

/// Whether message `seq` is malformed on purpose.
pub fn is_invalid(seq: u64, invalid_every: u64) -> bool {
    invalid_every > 0 && (seq + 1).is_multiple_of(invalid_every)
}

/// The datagram for message `seq`.
pub fn datagram(args: &DriverArgs, seq: u64) -> Vec<u8> {
    let alert = SyslogAlert {
        priority: 134,
        timestamp_ns: args.start_ns + seq as i64 * 1_000_000,
        hostname: "edge-7".into(),
        app_name: "alertd".into(),
        workflow_id: workflow_of_message(seq, args.workflows),
        seq,
        message: format!("upstream timeout on GET /api/v1/events status=503 attempt={seq}"),
    };
    let line = format_line(&alert);
    if !is_invalid(seq, args.invalid_every) {
        return line.into_bytes();
    }
    if (seq / args.invalid_every).is_multiple_of(2) {
        format!("garbage datagram {seq}").into_bytes()
    } else {
        let cut = line.find("seq=").map_or(line.len() / 2, |at| at + 6);
        line.as_bytes()[..cut].to_vec()
    }
}

/// Sends the stream and returns its figures.
pub fn send_stream(args: &DriverArgs) -> anyhow::Result<DriverFigures> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("cannot bind the driver's UDP socket")?;
    socket
        .connect(&args.target)
        .with_context(|| format!("cannot address the receiver at {}", args.target))?;
    let interval = Duration::from_secs_f64(1.0 / args.rate_per_second.max(1e-3));
    let started = Instant::now();
    let mut figures = DriverFigures::default();
    for seq in 0..args.messages {
        let due = started + interval.mul_f64(seq as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let bytes = datagram(args, seq);
        match socket.send(&bytes) {
            Ok(_) => {
                figures.messages_sent += 1;
                figures.invalid_sent += u64::from(is_invalid(seq, args.invalid_every));
            }
            Err(_) => figures.send_errors += 1,
        }
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog_rate::rfc5424::parse_line;

    #[test]
    fn valid_datagrams_parse_and_malformed_ones_do_not() {
        let args = DriverArgs {
            target: String::new(),
            messages: 0,
            rate_per_second: 1.0,
            workflows: 3,
            invalid_every: 4,
            start_ns: 0,
        };
        for seq in 0..12 {
            let parsed = parse_line(&datagram(&args, seq));
            if is_invalid(seq, 4) {
                assert!(parsed.is_err(), "{seq}");
            } else {
                let alert = parsed.unwrap();
                assert_eq!(
                    (alert.seq, alert.workflow_id),
                    (seq, workflow_of_message(seq, 3))
                );
                assert_eq!(alert.timestamp_ns, seq as i64 * 1_000_000);
            }
        }
    }

    #[test]
    fn workflows_take_turns_of_a_trim_trigger() {
        let of = |seq| workflow_of_message(seq, 2);
        assert_eq!(TRIM_EVERY_NTH_RECORD, 5);
        assert!((0..5).all(|seq| of(seq) == "wf-0"));
        assert!((5..10).all(|seq| of(seq) == "wf-1"));
        assert_eq!(of(10), "wf-0");
        assert_eq!(workflow_of_message(7, 1), "wf-0");
    }

    #[test]
    fn the_stream_arrives_on_loopback() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let args = DriverArgs {
            target: receiver.local_addr().unwrap().to_string(),
            messages: 20,
            rate_per_second: 10_000.0,
            workflows: 2,
            invalid_every: 0,
            start_ns: 0,
        };
        let figures = send_stream(&args).unwrap();
        assert_eq!(figures.messages_sent, 20);
        let mut buffer = [0u8; 2048];
        let (n, _) = receiver.recv_from(&mut buffer).unwrap();
        assert_eq!(parse_line(&buffer[..n]).unwrap().seq, 0);
    }
}
