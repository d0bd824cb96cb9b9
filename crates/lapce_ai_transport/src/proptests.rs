//! Property tests of the ring (issue 7): whatever a hostile producer writes into the shared
//! header and records, the consumer never panics, never reads outside the mapping, and answers
//! with data or a clean error; and a producer and consumer round-trip any message sequence
//! under any interleaving of reads.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use proptest::prelude::*;

use crate::ring::{self, init_header, region_size, Consumer, Next, Producer, Record, HEADER_SIZE, OFF_HEAD, OFF_TAIL};
use crate::shm::{create_sealed_memfd, Mapping};
use crate::Error;

const CAPACITY: usize = 4096;
const MAX_MESSAGE: usize = 1 << 16;

fn mapped(capacity: usize) -> (Arc<Mapping>, Arc<Mapping>) {
    let fd = create_sealed_memfd("prop", region_size(capacity)).unwrap();
    let a = Arc::new(Mapping::map(fd.as_fd(), region_size(capacity)).unwrap());
    init_header(&a, capacity).unwrap();
    let b = Arc::new(Mapping::map(fd.as_fd(), region_size(capacity)).unwrap());
    (a, b)
}

/// Checks that a record or in-place message lies in the data area.
fn check_in_ring(offset: usize, len: usize, map: &Mapping) {
    assert!(offset >= HEADER_SIZE + ring::RECORD_HEADER, "payload inside the header: {offset}");
    assert!(offset + len <= map.len(), "payload {offset}+{len} out of the mapping");
    assert!(len <= ring::max_fragment(CAPACITY));
}

/// Reads until empty or failed, checking every answer; returns whether it failed. `by_records`:
/// read with `next_record` (the JS binding's reader) rather than `next_message`.
fn read_all(c: &mut Consumer, map: &Mapping, steps: usize, by_records: bool) -> bool {
    let mut message = 0usize;
    for _ in 0..steps {
        let read = if by_records {
            c.next_record().map(|r| match r {
                Some(Record::Whole { offset, len }) => {
                    check_in_ring(offset, len, map);
                    true
                }
                Some(Record::Fragment { offset, len, last }) => {
                    check_in_ring(offset, len, map);
                    message += len;
                    assert!(message <= MAX_MESSAGE, "a fragmented message grew past max_message");
                    if last {
                        message = 0;
                    }
                    true
                }
                None => false,
            })
        } else {
            c.next_message().map(|m| match m {
                Some(Next::InPlace { offset, len }) => {
                    check_in_ring(offset, len, map);
                    true
                }
                Some(Next::Assembled(v)) => {
                    assert!(v.len() <= MAX_MESSAGE);
                    true
                }
                None => false,
            })
        };
        match read {
            Ok(true) => {}
            Ok(false) => return false,
            Err(Error::Corrupt(_) | Error::MessageTooLarge { .. } | Error::ResourceExhausted(_)) => {
                let again = if by_records {
                    c.next_record().err()
                } else {
                    c.next_message().err()
                };
                assert!(again.is_some(), "a failed consumer stays failed");
                return true;
            }
            Err(e) => panic!("unexpected error kind: {e}"),
        }
        c.release();
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary header words and record bytes: never a panic or an out-of-bounds read, always
    /// data, emptiness or a typed error.
    #[test]
    fn arbitrary_shared_memory_never_escapes_validation(
        tail in any::<u32>().prop_map(|t| t & !7),
        heads in proptest::collection::vec(any::<u32>(), 1..6),
        words in proptest::collection::vec((0..(CAPACITY / 4), any::<u32>()), 0..64),
        small_heads in proptest::collection::vec(0u32..(2 * CAPACITY as u32), 0..6),
        by_records in any::<bool>(),
    ) {
        let (_producer_view, map) = mapped(CAPACITY);
        map.atomic_u32(OFF_TAIL).store(tail, Ordering::Relaxed);
        map.atomic_u32(OFF_HEAD).store(tail, Ordering::Relaxed);
        let mut c = Consumer::new(map.clone(), CAPACITY, MAX_MESSAGE).unwrap();
        for (w, v) in words {
            map.write_u32(HEADER_SIZE + 4 * w, v);
        }
        // Heads near the tail reach the record checks; arbitrary ones the index checks.
        for h in small_heads.into_iter().map(|d| tail.wrapping_add(d)).chain(heads) {
            map.atomic_u32(OFF_HEAD).store(h, Ordering::Release);
            if read_all(&mut c, &map, 64, by_records) {
                break;
            }
        }
    }

    /// Any sequence of messages (empty, tiny, fragmented) round-trips in order, whatever the
    /// schedule of consumer reads between producer writes.
    #[test]
    fn producer_to_consumer_round_trips_any_sequence(
        msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 1..40),
        schedule in proptest::collection::vec(0usize..4, 1..64),
        by_records in any::<bool>(),
    ) {
        let (pm, cm) = mapped(CAPACITY);
        let mut p = Producer::new(pm, CAPACITY).unwrap();
        let mut c = Consumer::new(cm, CAPACITY, MAX_MESSAGE).unwrap();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut assembling: Vec<u8> = Vec::new();
        let (mut next, mut progress, mut turn) = (0usize, 0usize, 0usize);
        while got.len() < msgs.len() {
            // Write a little or a lot, then read up to `reads` messages (0: let the ring fill).
            if next < msgs.len() && p.write(&msgs[next], &mut progress).unwrap() {
                next += 1;
                progress = 0;
            }
            p.publish();
            let reads = schedule[turn % schedule.len()];
            turn += 1;
            // Never starve the consumer for ever: every few turns it drains.
            let reads = if turn % 5 == 0 { usize::MAX } else { reads };
            let mut n = 0;
            while n < reads {
                if by_records {
                    // Reassembled by the caller, as the JS binding does.
                    match c.next_record().unwrap() {
                        Some(Record::Whole { offset, len }) => {
                            let mut v = vec![0; len];
                            c.mapping().read_bytes(offset, &mut v);
                            got.push(v);
                        }
                        Some(Record::Fragment { offset, len, last }) => {
                            let mut v = vec![0; len];
                            c.mapping().read_bytes(offset, &mut v);
                            assembling.extend_from_slice(&v);
                            if !last {
                                continue;
                            }
                            got.push(std::mem::take(&mut assembling));
                        }
                        None => break,
                    }
                } else {
                    match c.next_message().unwrap() {
                        Some(Next::InPlace { offset, len }) => {
                            let mut v = vec![0; len];
                            c.mapping().read_bytes(offset, &mut v);
                            got.push(v);
                        }
                        Some(Next::Assembled(v)) => got.push(v),
                        None => break,
                    }
                }
                n += 1;
            }
            c.release();
            prop_assert!(turn < 100_000, "no progress");
        }
        prop_assert_eq!(got, msgs);
    }
}
