//! Property tests of `lapce_ai_transport::Consumer`, the code that reads what an untrusted peer
//! wrote into shared memory, from the attacker's side. The transport's own properties
//! (`src/proptests.rs`: arbitrary shared memory, round trips) are not repeated here; these add
//! the attacks: one word scribbled into an honestly written ring must give written messages or a
//! typed error, and a peer scribbling concurrently while we read cannot make the consumer panic
//! or read outside the mapping. After a corruption the consumer stays failed.

use std::os::fd::AsFd;
use std::sync::Arc;

use lapce_ai_transport::ring::{self, Consumer, Next, Producer, HEADER_SIZE};
use lapce_ai_transport::shm::{create_sealed_memfd, Mapping};
use lapce_ai_transport::Error;
use proptest::prelude::*;

const CAP: usize = 4096;
const MAX_MESSAGE: usize = 16 * 1024;
const OFF_HEAD: usize = 64;
const OFF_TAIL: usize = 128;

fn ring() -> Arc<Mapping> {
    let fd = create_sealed_memfd("prop", ring::region_size(CAP)).unwrap();
    let map = Mapping::map(fd.as_fd(), ring::region_size(CAP)).unwrap();
    map.write_bytes(0, &ring::header_prefix(CAP).unwrap());
    Arc::new(map)
}

/// What reading until empty, full or failed produced.
#[derive(Debug, PartialEq)]
enum Read {
    Messages(Vec<Vec<u8>>),
    Failed(Vec<Vec<u8>>),
}

/// Reads up to `limit` messages, checking the in-place bounds of each.
fn read_all(map: &Mapping, c: &mut Consumer, limit: usize) -> Read {
    let mut got = Vec::new();
    for _ in 0..limit {
        match c.next_message() {
            Ok(None) => {
                // Fragments read into the reassembly buffer are released too.
                c.release();
                return Read::Messages(got);
            }
            Ok(Some(Next::InPlace { offset, len })) => {
                assert!(
                    offset >= HEADER_SIZE && offset + len <= HEADER_SIZE + CAP,
                    "in-place message {offset}+{len} outside the data area"
                );
                let mut buf = vec![0; len];
                map.read_bytes(offset, &mut buf);
                got.push(buf);
            }
            Ok(Some(Next::Assembled(m))) => {
                assert!(m.len() <= MAX_MESSAGE, "assembled message of {} bytes passes max_message", m.len());
                got.push(m);
            }
            Err(Error::Corrupt(_)) | Err(Error::MessageTooLarge { .. }) | Err(Error::ResourceExhausted(_)) => {
                // Failed stays failed: nothing after a bad record is trusted.
                assert!(c.next_message().is_err(), "a consumer that failed must stay failed");
                return Read::Failed(got);
            }
            Err(e) => panic!("untyped consumer error: {e}"),
        }
        c.release();
    }
    Read::Messages(got)
}

proptest! {
    // No regression files in the tree: a failure prints its minimal input, which is what a
    // reviewer needs; the seed is random per run so CI keeps exploring.
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// One scribbled word in an honestly written ring: the consumer returns only messages that
    /// were written (a prefix of them, possibly with one altered payload), or an error.
    #[test]
    fn one_scribbled_word_gives_messages_or_an_error(
        sizes in proptest::collection::vec(0usize..1500, 1..6),
        word in 0usize..(CAP / 4 + 3),
        value in prop_oneof![any::<u32>(), Just(u32::MAX), Just(0), Just(CAP as u32), Just(ring::FLAG_MORE), Just(ring::FLAG_PAD)],
    ) {
        let map = ring();
        let mut p = Producer::new(map.clone(), CAP).unwrap();
        let msgs: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![0xA5; n]).collect();
        let mut written = 0;
        for m in &msgs {
            let mut progress = 0;
            if !p.write(m, &mut progress).unwrap() {
                break;
            }
            written += 1;
        }
        p.publish();
        // Words 0..CAP/4 are the data area; the last three are head, tail and closed.
        let at = match word {
            w if w < CAP / 4 => HEADER_SIZE + 4 * w,
            w if w == CAP / 4 => OFF_HEAD,
            w if w == CAP / 4 + 1 => OFF_TAIL,
            _ => 320,
        };
        map.write_u32(at, value);
        let mut c = match Consumer::new(map.clone(), CAP, MAX_MESSAGE) {
            Ok(c) => c,
            Err(Error::InvalidShm(_)) => return Ok(()),
            Err(e) => panic!("untyped error opening a scribbled ring: {e}"),
        };
        let got = match read_all(&map, &mut c, 64) {
            Read::Messages(g) | Read::Failed(g) => g,
        };
        // A scribbled `head` publishes bytes nobody wrote: zeroed memory reads as valid empty
        // records (8 bytes each), which no consumer can tell from real ones. Anywhere else one
        // word can alter or end at most one message.
        let bound = if at == OFF_HEAD { CAP / ring::RECORD_HEADER } else { written + 1 };
        prop_assert!(got.len() <= bound, "{} messages out of {} written", got.len(), written);
        for m in &got {
            prop_assert!(m.len() <= CAP, "a message longer than the ring came out of one scribble");
        }
    }
}

/// A peer scribbling random words while we read: the consumer never panics or reads out of
/// bounds (one read of each length and flags word, validated before use).
#[test]
fn concurrent_scribbler_cannot_break_the_consumer() {
    let map = ring();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scribbler = {
        let (map, stop) = (map.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let word = (x as usize >> 8) % (CAP / 4);
                let v = if x & 3 == 0 { (x >> 32) as u32 & 0x1FF8 } else { (x >> 32) as u32 };
                map.write_u32(HEADER_SIZE + 4 * word, v);
                if x & 0xF == 0 {
                    // Sometimes plausible (within a ring of the tail), sometimes not.
                    let h = if x & 0x10 == 0 {
                        (x >> 40) as u32 & (CAP as u32 - 8)
                    } else {
                        (x >> 40) as u32
                    };
                    map.write_u32(OFF_HEAD, h);
                }
            }
        })
    };
    let mut failures = 0;
    let start = std::time::Instant::now();
    let (quick, hard) = (std::time::Duration::from_millis(500), std::time::Duration::from_secs(10));
    while start.elapsed() < quick || (failures == 0 && start.elapsed() < hard) {
        let mut c = Consumer::new(map.clone(), CAP, MAX_MESSAGE).unwrap();
        if let Read::Failed(_) = read_all(&map, &mut c, 256) {
            failures += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    scribbler.join().unwrap();
    assert!(failures > 0, "the scribbler should have corrupted the ring at least once");
}
