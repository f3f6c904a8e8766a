//! Random-looking ids, tokens and keys of the right shape, and time on the
//! wire (whole seconds, epoch milliseconds); shared with the SSM fake.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

pub(in crate::fakes) const ALNUM: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub(in crate::fakes) const URL_SAFE: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
pub(in crate::fakes) const SECRET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub(in crate::fakes) const KEY_ID: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
pub(in crate::fakes) const USER_CODE: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
pub(in crate::fakes) const HEX: &[u8] = b"0123456789abcdef";

/// Random-looking, not cryptographic: a fresh SipHash key per call (from
/// std's per-process random seed) over a counter.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

pub(in crate::fakes) fn random_chars(alphabet: &[u8], len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut bits = random_u64();
        for _ in 0..8 {
            if out.len() == len {
                break;
            }
            let index = usize::from((bits & 0xff) as u8) % alphabet.len();
            out.push(char::from(alphabet[index]));
            bits >>= 8;
        }
    }
    out
}

pub(in crate::fakes) fn request_id() -> String {
    let hex = |n: u64| format!("{n:016x}");
    let (a, b) = (hex(random_u64()), hex(random_u64()));
    format!(
        "{}-{}-{}-{}-{}",
        &a[..8],
        &a[8..12],
        &a[12..],
        &b[..4],
        &b[4..]
    )
}

/// `d` rounded down to whole seconds, as the wire carries seconds.
pub(in crate::fakes) fn whole_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

pub(in crate::fakes) fn epoch_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_have_the_requested_shape() {
        let key = format!("ASIA{}", random_chars(KEY_ID, 16));
        assert_eq!(key.len(), 20);
        assert!(key.bytes().all(|b| KEY_ID.contains(&b)));
        assert_ne!(random_chars(ALNUM, 32), random_chars(ALNUM, 32));
        assert_eq!(request_id().len(), 36);
    }
}
