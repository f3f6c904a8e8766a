//! Jacobson's round-trip estimator with the reference numbers of `ssm.md`
//! §2.6.

use std::time::Duration;

/// The smoothed RTT before any sample (`ssm.md` §2.6: 100 ms).
pub(super) const INITIAL_SRTT: Duration = Duration::from_millis(100);
/// The RTO before any sample (200 ms).
pub(super) const INITIAL_RTO: Duration = Duration::from_millis(200);
/// The floor of the variance term of the RTO (10 ms).
pub(super) const MIN_VARIANCE_TERM: Duration = Duration::from_millis(10);
/// The cap of the RTO and of its exponential backoff (1 s).
pub(super) const MAX_RTO: Duration = Duration::from_secs(1);

/// Smoothed RTT, RTT variance and the retransmission time-out derived from
/// them.
///
/// Starts from the reference values (SRTT 100 ms, RTTVAR 0, RTO 200 ms);
/// each sample `s` updates, in this order:
/// `RTTVAR = ¾·RTTVAR + ¼·|SRTT − s|`, `SRTT = ⅞·SRTT + ⅛·s`,
/// `RTO = min(SRTT + max(10 ms, 4·RTTVAR), 1 s)`.
///
/// As in the plugin and the agent, the first sample is blended into the
/// 100 ms starting value rather than replacing it (RFC 6298 would set
/// SRTT = s); the difference fades after a few samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RttEstimator {
    srtt: Duration,
    rttvar: Duration,
    rto: Duration,
    max_rto: Duration,
    samples: u64,
}

impl Default for RttEstimator {
    fn default() -> Self {
        Self::new(INITIAL_RTO, MAX_RTO)
    }
}

impl RttEstimator {
    /// An estimator whose RTO starts at `initial_rto` and never exceeds
    /// `max_rto`.
    pub fn new(initial_rto: Duration, max_rto: Duration) -> Self {
        Self {
            srtt: INITIAL_SRTT,
            rttvar: Duration::ZERO,
            rto: initial_rto.min(max_rto),
            max_rto,
            samples: 0,
        }
    }

    /// Feeds one RTT sample, taken from a message sent exactly once.
    pub fn sample(&mut self, rtt: Duration) {
        let diff = self.srtt.abs_diff(rtt);
        self.rttvar = self.rttvar * 3 / 4 + diff / 4;
        self.srtt = self.srtt * 7 / 8 + rtt / 8;
        let variance_term = (self.rttvar.saturating_mul(4)).max(MIN_VARIANCE_TERM);
        self.rto = self.srtt.saturating_add(variance_term).min(self.max_rto);
        self.samples = self.samples.saturating_add(1);
    }

    /// The smoothed RTT.
    pub fn srtt(&self) -> Duration {
        self.srtt
    }

    /// The RTT variance.
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// The current retransmission time-out for a first transmission.
    pub fn rto(&self) -> Duration {
        self.rto
    }

    /// How many samples were fed.
    pub fn samples(&self) -> u64 {
        self.samples
    }
}
