//! Unit tests of the sender, the receiver and the RTT estimator.

use std::time::Duration;

use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

use super::*;
use crate::ssm::message::{ClientMessage, EncodeError, MessageFlags, MessageType, PayloadType};
use crate::ssm::payload::Acknowledgement;

const T0: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

fn at(ms: u64) -> OffsetDateTime {
    T0 + Duration::from_millis(ms)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n + 1)
}

fn ack_of(bytes: &[u8]) -> Acknowledgement {
    Acknowledgement::of(&ClientMessage::decode(bytes).unwrap())
}

fn client(window: usize) -> Sender {
    Sender::new(
        Side::Client,
        SenderConfig {
            window,
            ..SenderConfig::default()
        },
    )
}

fn send(sender: &mut Sender, n: u128, now: OffsetDateTime) -> Vec<u8> {
    sender
        .send(PayloadType::Output, vec![n as u8; 3], id(n), now)
        .unwrap()
}

// --- RTT estimator -------------------------------------------------------

#[test]
fn estimator_starts_from_the_reference_values() {
    let rtt = RttEstimator::default();
    assert_eq!(rtt.srtt(), ms(100));
    assert_eq!(rtt.rttvar(), Duration::ZERO);
    assert_eq!(rtt.rto(), ms(200));
}

#[test]
fn jacobson_arithmetic() {
    let mut rtt = RttEstimator::default();
    // RTTVAR = ¾·0 + ¼·|100 − 300| = 50; SRTT = ⅞·100 + ⅛·300 = 125;
    // RTO = 125 + max(10, 200) = 325.
    rtt.sample(ms(300));
    assert_eq!(rtt.rttvar(), ms(50));
    assert_eq!(rtt.srtt(), ms(125));
    assert_eq!(rtt.rto(), ms(325));
    // RTTVAR = 37.5 + ¼·25 = 43.75; SRTT = 109.375 + 12.5 = 121.875;
    // RTO = 121.875 + 175 = 296.875.
    rtt.sample(ms(100));
    assert_eq!(rtt.rttvar(), Duration::from_micros(43_750));
    assert_eq!(rtt.srtt(), Duration::from_micros(121_875));
    assert_eq!(rtt.rto(), Duration::from_micros(296_875));
    assert_eq!(rtt.samples(), 2);
}

#[test]
fn variance_term_has_a_10ms_floor() {
    let mut rtt = RttEstimator::default();
    rtt.sample(ms(100));
    assert_eq!(rtt.rttvar(), Duration::ZERO);
    assert_eq!(rtt.rto(), ms(110));
}

#[test]
fn rto_is_capped_at_one_second() {
    let mut rtt = RttEstimator::default();
    rtt.sample(Duration::from_secs(5));
    assert_eq!(rtt.rto(), Duration::from_secs(1));
    assert!(rtt.srtt() > Duration::from_secs(0));
}

// --- Sender --------------------------------------------------------------

#[test]
fn sequence_numbers_count_from_zero_and_the_bytes_are_a_stream_message() {
    let mut sender = client(8);
    for n in 0..3 {
        let bytes = send(&mut sender, n, at(0));
        let message = ClientMessage::decode(&bytes).unwrap();
        assert_eq!(message.message_type, MessageType::InputStreamData);
        assert_eq!(message.sequence_number, n as i64);
        assert_eq!(message.flags, MessageFlags::NONE);
        assert_eq!(message.message_id, id(n));
        assert_eq!(message.created_date, T0.unix_timestamp() as u64 * 1000);
    }
    assert_eq!(sender.next_sequence_number(), 3);
    assert_eq!(sender.counters().sent, 3);
}

#[test]
fn an_unencodable_message_consumes_no_sequence_number() {
    let mut sender = client(8);
    assert_eq!(
        sender.send(PayloadType::Output, vec![1], Uuid::nil(), at(0)),
        Err(SendError::Encode(EncodeError::NilMessageId))
    );
    assert_eq!(sender.next_sequence_number(), 0);
    assert_eq!(sender.in_flight(), 0);
    let bytes = send(&mut sender, 0, at(0));
    assert_eq!(ClientMessage::decode(&bytes).unwrap().sequence_number, 0);
}

#[test]
fn resend_all_writes_nothing_while_paused() {
    let mut sender = client(8);
    send(&mut sender, 0, at(0));
    sender.pause(at(10));
    assert!(sender.resend_all(at(20)).is_empty());
    sender.resume(at(30));
    assert_eq!(sender.resend_all(at(30)).len(), 1);
}

#[test]
fn agent_side_sets_syn_on_its_first_message_only() {
    let mut agent = Sender::new(Side::Agent, SenderConfig::default());
    let first = ClientMessage::decode(&send(&mut agent, 0, at(0))).unwrap();
    let second = ClientMessage::decode(&send(&mut agent, 1, at(0))).unwrap();
    assert_eq!(first.message_type, MessageType::OutputStreamData);
    assert_eq!(first.flags, MessageFlags::SYN);
    assert_eq!(second.flags, MessageFlags::NONE);
}

#[test]
fn counter_survives_acks_and_reconnects() {
    let mut sender = client(8);
    let bytes = send(&mut sender, 0, at(0));
    sender.on_ack(&ack_of(&bytes), at(10));
    let _ = sender.resend_all(at(20));
    let bytes = send(&mut sender, 1, at(30));
    assert_eq!(ClientMessage::decode(&bytes).unwrap().sequence_number, 1);
}

#[test]
fn withheld_ack_means_identical_retransmission_at_the_deadline() {
    let mut sender = client(8);
    let bytes = send(&mut sender, 0, at(0));
    assert_eq!(sender.next_deadline(), Some(at(200)));
    assert!(sender.poll_retransmit(at(199)).unwrap().is_empty());
    let again = sender.poll_retransmit(at(200)).unwrap();
    assert_eq!(again, vec![bytes.clone()]);
    let original = ClientMessage::decode(&bytes).unwrap();
    let resent = ClientMessage::decode(&again[0]).unwrap();
    assert_eq!(resent.message_id, original.message_id);
    assert_eq!(resent.sequence_number, original.sequence_number);
    assert_eq!(sender.counters().retransmissions, 1);
}

#[test]
fn each_message_has_its_own_timer() {
    let mut sender = client(8);
    let a = send(&mut sender, 0, at(0));
    let b = send(&mut sender, 1, at(150));
    assert_eq!(sender.poll_retransmit(at(200)).unwrap(), vec![a]);
    assert_eq!(sender.next_deadline(), Some(at(350)));
    assert_eq!(sender.poll_retransmit(at(350)).unwrap(), vec![b]);
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let mut sender = client(8);
    send(&mut sender, 0, at(0));
    let mut now = at(0);
    let mut gaps = Vec::new();
    for _ in 0..6 {
        let deadline = sender.next_deadline().unwrap();
        gaps.push(elapsed(now, deadline));
        now = deadline;
        assert_eq!(sender.poll_retransmit(now).unwrap().len(), 1);
    }
    assert_eq!(
        gaps,
        [ms(200), ms(400), ms(800), ms(1000), ms(1000), ms(1000)]
    );
}

#[test]
fn clean_ack_feeds_an_rtt_sample() {
    let mut sender = client(8);
    let bytes = send(&mut sender, 0, at(0));
    let outcome = sender.on_ack(&ack_of(&bytes), at(300));
    assert_eq!(
        outcome,
        AckOutcome::Acked {
            sequence_number: 0,
            rtt_sample: Some(ms(300))
        }
    );
    assert_eq!(sender.rtt().rto(), ms(325));
    assert_eq!(sender.in_flight(), 0);
    assert_eq!(sender.next_deadline(), None);
}

/// On a fast link the estimate falls to SRTT + 10 ms; a first
/// transmission still waits the 200 ms floor before it is resent (unless
/// the floor is configured away), so a queue at the agent is not taken for
/// a loss.
#[test]
fn the_rto_of_a_first_transmission_has_a_floor() {
    for floor in [None, Some(Duration::ZERO)] {
        let mut config = SenderConfig::default();
        if let Some(floor) = floor {
            config.min_rto = floor;
        }
        let mut sender = Sender::new(Side::Client, config);
        let mut now = 0;
        for n in 0..40 {
            let bytes = send(&mut sender, n, at(now));
            now += 1;
            sender.on_ack(&ack_of(&bytes), at(now));
        }
        let estimate = sender.rtt().rto();
        assert!(estimate < ms(25), "{:?}", sender.rtt());
        send(&mut sender, 40, at(now));
        let wait = sender.next_deadline().expect("a deadline") - at(now);
        let expected = if floor.is_some() { estimate } else { ms(200) };
        assert_eq!(wait, expected, "floor {floor:?}");
    }
}

#[test]
fn karn_no_sample_from_a_retransmitted_message() {
    let mut sender = client(8);
    let bytes = send(&mut sender, 0, at(0));
    sender.poll_retransmit(at(200)).unwrap();
    let before = sender.rtt().clone();
    let outcome = sender.on_ack(&ack_of(&bytes), at(250));
    assert_eq!(
        outcome,
        AckOutcome::Acked {
            sequence_number: 0,
            rtt_sample: None
        }
    );
    assert_eq!(sender.rtt(), &before);
    assert_eq!(sender.counters().karn_skipped, 1);
    assert_eq!(sender.counters().rtt_samples, 0);
}

#[test]
fn unknown_and_duplicate_acks_are_ignored() {
    let mut sender = client(8);
    let bytes = send(&mut sender, 0, at(0));
    let ack = ack_of(&bytes);
    assert!(matches!(
        sender.on_ack(&ack, at(10)),
        AckOutcome::Acked { .. }
    ));
    assert_eq!(sender.on_ack(&ack, at(20)), AckOutcome::Unknown);
    let mut stray = ack.clone();
    stray.acknowledged_message_sequence_number = 99;
    assert_eq!(sender.on_ack(&stray, at(30)), AckOutcome::Unknown);
    assert_eq!(sender.counters().unknown_acks, 2);
    assert_eq!(sender.counters().acks_received, 1);
}

#[test]
fn window_lets_n_messages_fly_before_the_first_ack() {
    let mut sender = client(4);
    let sent: Vec<_> = (0..4).map(|n| send(&mut sender, n, at(0))).collect();
    assert!(!sender.can_send());
    assert_eq!(
        sender.send(PayloadType::Output, vec![], id(9), at(0)),
        Err(SendError::WindowFull { window: 4 })
    );
    // An ack from the middle opens one slot.
    sender.on_ack(&ack_of(&sent[2]), at(50));
    assert!(sender.can_send());
    let next = send(&mut sender, 4, at(50));
    assert_eq!(ClientMessage::decode(&next).unwrap().sequence_number, 4);
    let unacked: Vec<i64> = sender.unacked().map(|u| u.sequence_number).collect();
    assert_eq!(unacked, [0, 1, 3, 4]);
}

// --- Congestion window -------------------------------------------------

#[test]
fn slow_start_lets_64_fly_then_one_more_per_ack() {
    let mut sender = client(4096);
    let sent: Vec<_> = (0..64).map(|n| send(&mut sender, n, at(0))).collect();
    assert!(!sender.can_send(), "64 messages before the first ack");
    assert_eq!(sender.congestion_window(), 64);
    sender.on_ack(&ack_of(&sent[0]), at(50));
    // One slot freed by the ack, one more by the window's growth.
    send(&mut sender, 64, at(50));
    send(&mut sender, 65, at(50));
    assert!(!sender.can_send());
    assert_eq!(sender.congestion_window(), 65);
}

#[test]
fn a_time_out_shrinks_the_window_and_puts_off_most_of_the_resends() {
    let mut sender = client(4096);
    let sent: Vec<_> = (0..64).map(|n| send(&mut sender, n, at(0))).collect();
    let resent = sender.poll_retransmit(at(200)).unwrap();
    assert_eq!(resent, sent[..16].to_vec(), "the 16 oldest, not all 64");
    assert_eq!(sender.congestion_window(), 16);
    assert_eq!(sender.counters().congestion_events, 1);
    assert_eq!(sender.counters().retransmissions_deferred, 48);
    // The others come due one RTO later: the same event, no new shrink,
    // and again at most a window of them.
    assert_eq!(sender.next_deadline(), Some(at(400)));
    let later = sender.poll_retransmit(at(400)).unwrap();
    assert_eq!(later, sent[16..32].to_vec());
    assert_eq!(sender.counters().congestion_events, 1);
    // Acks regrow the window: one per ack up to half of the 64 in flight
    // (16 acks), then one per window of acks (48 more: 1.5).
    for bytes in &sent {
        sender.on_ack(&ack_of(bytes), at(450));
    }
    assert_eq!(sender.congestion_window(), 33);
    assert_eq!(sender.in_flight(), 0);
}

#[test]
fn zero_window_is_treated_as_one() {
    let mut sender = client(0);
    assert!(sender.can_send());
    send(&mut sender, 0, at(0));
    assert!(!sender.can_send());
}

#[test]
fn gives_up_after_the_deadline_since_the_oldest_was_first_sent() {
    let mut sender = client(8);
    send(&mut sender, 0, at(0));
    let mut now;
    let gave_up = loop {
        now = sender.next_deadline().unwrap();
        match sender.poll_retransmit(now) {
            Ok(resent) => assert!(resent.len() <= 1),
            Err(gave_up) => break gave_up,
        }
    };
    assert_eq!(now, at(300_000));
    assert_eq!(gave_up.sequence_number, 0);
    assert_eq!(gave_up.unacked_for, Duration::from_secs(300));
    // 200 + 400 + 800 ms, then one per second.
    assert_eq!(gave_up.transmissions, 1 + 3 + 298);
    assert_eq!(sender.next_deadline(), None);
    assert_eq!(sender.gave_up(), Some(&gave_up));
    assert!(!sender.can_send());
    assert_eq!(
        sender.send(PayloadType::Output, vec![], id(5), now),
        Err(SendError::GaveUp(gave_up.clone()))
    );
    assert_eq!(sender.poll_retransmit(now), Err(gave_up));
}

#[test]
fn give_up_deadline_is_configurable_and_follows_the_oldest_unacked() {
    let mut sender = Sender::new(
        Side::Client,
        SenderConfig {
            give_up_after: Duration::from_secs(2),
            ..SenderConfig::default()
        },
    );
    let first = send(&mut sender, 0, at(0));
    send(&mut sender, 1, at(1_500));
    sender.on_ack(&ack_of(&first), at(1_600));
    // The clock now runs from message 1 (first sent at 1.5 s).
    assert!(sender.poll_retransmit(at(3_000)).is_ok());
    let gave_up = sender.poll_retransmit(at(3_500)).unwrap_err();
    assert_eq!(gave_up.sequence_number, 1);
}

#[test]
fn pause_suspends_timers_and_keeps_the_buffer() {
    let mut sender = client(8);
    let bytes = send(&mut sender, 0, at(0));
    sender.pause(at(50));
    assert!(sender.is_paused());
    assert_eq!(sender.next_deadline(), None);
    assert!(!sender.can_send());
    assert_eq!(
        sender.send(PayloadType::Output, vec![], id(7), at(60)),
        Err(SendError::Paused)
    );
    // Ten minutes paused: no retransmission, no give-up.
    assert!(sender.poll_retransmit(at(600_000)).unwrap().is_empty());
    assert_eq!(sender.in_flight(), 1);
    sender.resume(at(600_000));
    // The 150 ms left of its time-out continue after the pause.
    assert_eq!(sender.next_deadline(), Some(at(600_150)));
    assert_eq!(sender.poll_retransmit(at(600_150)).unwrap(), vec![bytes]);
}

#[test]
fn paused_time_does_not_count_towards_giving_up() {
    let mut sender = Sender::new(
        Side::Client,
        SenderConfig {
            give_up_after: Duration::from_secs(10),
            ..SenderConfig::default()
        },
    );
    send(&mut sender, 0, at(0));
    sender.pause(at(5_000));
    sender.resume(at(65_000));
    assert!(sender.poll_retransmit(at(69_000)).is_ok());
    assert!(sender.poll_retransmit(at(70_000)).is_err());
}

#[test]
fn an_ack_ends_a_pause_without_an_rtt_sample() {
    let mut sender = client(8);
    let a = send(&mut sender, 0, at(0));
    send(&mut sender, 1, at(0));
    sender.pause(at(10));
    let outcome = sender.on_ack(&ack_of(&a), at(5_000));
    assert_eq!(
        outcome,
        AckOutcome::Acked {
            sequence_number: 0,
            rtt_sample: None
        }
    );
    assert!(!sender.is_paused());
    assert!(sender.can_send());
    assert_eq!(sender.next_deadline(), Some(at(5_190)));
}

#[test]
fn resend_all_after_a_reconnect() {
    let mut sender = client(8);
    let sent: Vec<_> = (0..3).map(|n| send(&mut sender, n, at(0))).collect();
    sender.on_ack(&ack_of(&sent[1]), at(20));
    let again = sender.resend_all(at(100));
    assert_eq!(again, vec![sent[0].clone(), sent[2].clone()]);
    let views: Vec<_> = sender.unacked().collect();
    assert_eq!(views.len(), 2);
    assert_eq!(views[0].bytes, sent[0].as_slice());
    assert_eq!(views[0].message_id, id(0));
    assert_eq!(views[1].transmissions, 2);
    assert_eq!(sender.counters().retransmissions, 2);
    // Timers restart from the resend with each message's own time-out
    // (200 ms, the RTO when they were sent), not doubled.
    assert_eq!(sender.next_deadline(), Some(at(300)));
    let outcome = sender.on_ack(&ack_of(&sent[0]), at(120));
    assert!(matches!(
        outcome,
        AckOutcome::Acked {
            rtt_sample: None,
            ..
        }
    ));
}

// --- Receiver ------------------------------------------------------------

fn output(seq: i64) -> ClientMessage {
    ClientMessage {
        message_type: MessageType::OutputStreamData,
        schema_version: 1,
        created_date: 1,
        sequence_number: seq,
        flags: MessageFlags::NONE,
        message_id: Uuid::from_u128(u128::from(seq as u64) + 1000),
        payload_type: PayloadType::Output,
        payload: seq.to_be_bytes().to_vec(),
    }
}

fn receiver(capacity: usize) -> Receiver {
    Receiver::new(
        Side::Client,
        ReceiverConfig {
            reorder_capacity: capacity,
        },
    )
}

fn seqs(received: &Received) -> Vec<i64> {
    received.deliver.iter().map(|m| m.sequence_number).collect()
}

#[test]
fn in_order_is_acked_and_delivered() {
    let mut rx = receiver(10);
    let got = rx.on_message(output(0)).unwrap();
    assert_eq!(got.disposition, Disposition::InOrder);
    assert_eq!(got.ack, Some(Acknowledgement::of(&output(0))));
    assert_eq!(seqs(&got), [0]);
    assert_eq!(rx.expected(), 1);
}

#[test]
fn early_messages_are_acked_buffered_then_drained_in_order() {
    let mut rx = receiver(10);
    for seq in [2, 1, 4] {
        let got = rx.on_message(output(seq)).unwrap();
        assert_eq!(got.disposition, Disposition::Buffered);
        assert_eq!(got.ack, Some(Acknowledgement::of(&output(seq))));
        assert!(got.deliver.is_empty());
    }
    assert_eq!(rx.buffered(), 3);
    let got = rx.on_message(output(0)).unwrap();
    assert_eq!(seqs(&got), [0, 1, 2]);
    assert_eq!(rx.expected(), 3);
    assert_eq!(rx.buffered(), 1);
    assert_eq!(seqs(&rx.on_message(output(3)).unwrap()), [3, 4]);
    assert_eq!(rx.counters().delivered, 5);
    assert_eq!(rx.counters().buffered, 3);
}

#[test]
fn duplicates_are_re_acked_and_not_delivered() {
    let mut rx = receiver(10);
    rx.on_message(output(0)).unwrap();
    rx.on_message(output(2)).unwrap();
    for seq in [0, 2, 0] {
        let got = rx.on_message(output(seq)).unwrap();
        assert_eq!(got.disposition, Disposition::Duplicate);
        assert_eq!(got.ack, Some(Acknowledgement::of(&output(seq))));
        assert!(got.deliver.is_empty());
    }
    assert_eq!(rx.buffered(), 1);
    assert_eq!(rx.counters().re_acks, 3);
    assert_eq!(rx.counters().acks_sent, 5);
}

/// A peer that restarted its counter sends old numbers as new messages:
/// refused (no ack, nothing delivered), never mistaken for resends.
#[test]
fn an_old_number_with_a_new_message_id_is_a_conflict() {
    let mut rx = receiver(10);
    rx.on_message(output(0)).unwrap();
    rx.on_message(output(1)).unwrap();
    rx.on_message(output(3)).unwrap();
    for seq in [0, 3] {
        let mut restarted = output(seq);
        restarted.message_id = Uuid::from_u128(7);
        let got = rx.on_message(restarted).unwrap();
        assert_eq!(got.disposition, Disposition::Conflict);
        assert_eq!(got.ack, None);
        assert!(got.deliver.is_empty());
    }
    // Never seen, and behind `expected`: not a resend either.
    assert_eq!(
        rx.on_message(output(-5)).unwrap().disposition,
        Disposition::Conflict
    );
    assert_eq!(rx.counters().conflicts, 3);
    assert_eq!(rx.expected(), 2);
}

/// A reorder buffer that reaches further ahead than the history does not
/// push the delivered numbers out of it: a resend of a recent one is
/// still a resend.
#[test]
fn a_long_reorder_buffer_keeps_recent_resends_recognised() {
    use super::receiver::HISTORY;
    let mut rx = receiver(100_000);
    rx.on_message(output(0)).unwrap();
    let far = i64::try_from(HISTORY).unwrap();
    // Buffered, far ahead: its history slot is 0's.
    assert_eq!(
        rx.on_message(output(far)).unwrap().disposition,
        Disposition::Buffered
    );
    assert_eq!(
        rx.on_message(output(0)).unwrap().disposition,
        Disposition::Duplicate
    );
    assert_eq!(
        rx.on_message(output(far)).unwrap().disposition,
        Disposition::Duplicate
    );
}

/// Resends are checked up to `HISTORY` numbers back; older numbers cannot
/// be and are taken for resends (a busy peer may resend that late), except
/// number 0, which a restarted peer sends first.
#[test]
fn resends_are_checked_within_the_history_and_at_zero() {
    use super::receiver::HISTORY;
    let mut rx = receiver(10);
    let last = i64::try_from(HISTORY).unwrap() + 10;
    for seq in 0..=last {
        rx.on_message(output(seq)).unwrap();
    }
    let oldest_kept = last - i64::try_from(HISTORY).unwrap() + 1;
    let other = |seq| {
        let mut message = output(seq);
        message.message_id = Uuid::from_u128(7);
        message
    };
    assert_eq!(
        rx.on_message(other(oldest_kept)).unwrap().disposition,
        Disposition::Conflict
    );
    assert_eq!(
        rx.on_message(other(oldest_kept - 1)).unwrap().disposition,
        Disposition::Duplicate
    );
    assert_eq!(
        rx.on_message(output(0)).unwrap().disposition,
        Disposition::Duplicate
    );
    assert_eq!(
        rx.on_message(other(0)).unwrap().disposition,
        Disposition::Conflict
    );
}

#[test]
fn beyond_the_reorder_buffer_is_dropped_without_an_ack() {
    let mut rx = receiver(3);
    assert_eq!(
        rx.on_message(output(2)).unwrap().disposition,
        Disposition::Buffered
    );
    for seq in [3, i64::MAX] {
        let got = rx.on_message(output(seq)).unwrap();
        assert_eq!(got.disposition, Disposition::DroppedFull);
        assert_eq!(got.ack, None);
    }
    assert_eq!(rx.counters().dropped_full, 2);
    // Once the gap closes, the retransmitted message fits.
    assert_eq!(seqs(&rx.on_message(output(0)).unwrap()), [0]);
    assert_eq!(seqs(&rx.on_message(output(1)).unwrap()), [1, 2]);
    assert_eq!(seqs(&rx.on_message(output(3)).unwrap()), [3]);
}

#[test]
fn unsequenced_messages_are_handed_back() {
    let mut rx = receiver(10);
    let ack = Acknowledgement::of(&output(0)).to_message(id(1), 1);
    let mut input = output(0);
    input.message_type = MessageType::InputStreamData;
    let mut others = vec![ack, input];
    for kind in [
        MessageType::ChannelClosed,
        MessageType::StartPublication,
        MessageType::PausePublication,
        MessageType::from("agent_session_state"),
    ] {
        let mut message = output(0);
        message.message_type = kind;
        others.push(message);
    }
    for message in others {
        assert_eq!(rx.on_message(message.clone()), Err(NotSequenced(message)));
    }
    assert_eq!(rx.expected(), 0);
    assert_eq!(rx.counters(), &ReceiverCounters::default());
    assert_eq!(rx.accepts(), MessageType::OutputStreamData);
}

#[test]
fn which_types_are_sequenced() {
    assert!(is_sequenced(&MessageType::InputStreamData));
    assert!(is_sequenced(&MessageType::OutputStreamData));
    assert!(!is_sequenced(&MessageType::Acknowledge));
    assert!(!is_sequenced(&MessageType::ChannelClosed));
    assert!(!is_sequenced(&MessageType::StartPublication));
    assert!(!is_sequenced(&MessageType::PausePublication));
}
