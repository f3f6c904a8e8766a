//! LiveHandle, LiveEnd and ResumePolicy on their own.

use std::net::SocketAddr;
use std::time::Duration;

use session_core::{EndReason, LiveHandle, ResumePolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn the_stream_is_taken_once_and_carries_bytes() {
    let (ours, mut theirs) = tokio::io::duplex(64);
    let (handle, _end) = LiveHandle::streaming(ours);
    let clone = handle.clone();
    assert!(handle.addresses().is_empty());
    let mut stream = clone.take_stream().expect("the first take gets the stream");
    assert!(handle.take_stream().is_none(), "clones share one stream");
    stream.write_all(b"ls\n").await.unwrap();
    let mut got = [0u8; 3];
    theirs.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ls\n");
}

#[tokio::test]
async fn the_first_end_counts_and_every_clone_sees_it() {
    let address = SocketAddr::from(([127, 0, 0, 1], 4000));
    let (handle, end) = LiveHandle::listening([address]);
    let watcher = handle.clone();
    let waiting = tokio::spawn(async move { watcher.ended().await });
    assert_eq!(handle.addresses(), &[address]);
    assert_eq!(handle.end_reason(), None);
    end.end(EndReason::NetworkLost("wifi".into()));
    end.end(EndReason::ClosedByUser);
    assert!(end.is_ended());
    assert_eq!(
        waiting.await.unwrap(),
        EndReason::NetworkLost("wifi".into())
    );
    assert_eq!(handle.ended().await, EndReason::NetworkLost("wifi".into()));
}

#[tokio::test]
async fn a_provider_that_drops_its_end_loses_the_connection() {
    let (handle, end) = LiveHandle::listening([]);
    drop(end);
    let reason = handle.ended().await;
    assert!(reason.is_resumable(), "{reason}");
    assert!(matches!(reason, EndReason::NetworkLost(_)));
}

#[test]
fn only_a_lost_network_is_resumed() {
    assert!(EndReason::NetworkLost("x".into()).is_resumable());
    assert!(!EndReason::ClosedByUser.is_resumable());
    assert!(!EndReason::ClosedByService("canceled".into()).is_resumable());
    assert!(!EndReason::Expired.is_resumable());
    assert_eq!(
        EndReason::ClosedByService("Inactivity timeout reached".into()).to_string(),
        "closed by the service: Inactivity timeout reached",
        "the service's reason is kept verbatim"
    );
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let policy = ResumePolicy::default()
        .with_first_backoff(Duration::from_secs(1))
        .with_max_backoff(Duration::from_secs(30));
    let waits: Vec<u64> = (1..=7).map(|n| policy.backoff(n).as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
    assert_eq!(
        policy.backoff(u32::MAX),
        Duration::from_secs(30),
        "no overflow"
    );
}
