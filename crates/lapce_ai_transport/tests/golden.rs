//! Golden ring bytes (`docs/PROTOCOL.md` §3.7, §10): a fresh ring header, and a 4 KiB ring
//! holding three released messages, a fragmented message and the PAD record it needed, all as
//! written by the Rust `Producer`. The TypeScript writer is checked against the same files
//! (`__test__/transport/golden.test.ts`), and so is the client crate.
//!
//! Regenerate (only when the layout deliberately changes) with
//! `LAPCE_AI_UPDATE_GOLDEN=1 cargo test -p lapce_ai_transport --test golden`.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;

use lapce_ai_transport::ring::{self, Consumer, Next, Producer};
use lapce_ai_transport::shm::{create_sealed_memfd, Mapping};

const CAPACITY: usize = 4096;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

/// Payload byte `j` of message `i` (the same rule in the TypeScript test).
fn payload(i: u8, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 37 + j) as u8).collect()
}

fn fresh_ring() -> (Arc<Mapping>, Arc<Mapping>) {
    let size = ring::region_size(CAPACITY);
    let fd = create_sealed_memfd("golden", size).unwrap();
    let a = Arc::new(Mapping::map(fd.as_fd(), size).unwrap());
    a.write_bytes(0, &ring::header_prefix(CAPACITY).unwrap());
    let b = Arc::new(Mapping::map(fd.as_fd(), size).unwrap());
    (a, b)
}

fn region(map: &Mapping) -> Vec<u8> {
    let mut out = vec![0u8; map.len()];
    map.read_bytes(0, &mut out);
    out
}

/// The sequence the golden ring holds: three 1000-byte messages written and released by the
/// consumer, then a 2500-byte message that travels in three fragments (1016 + 1016 + 468), the
/// second after a PAD record at the end of the data area.
fn golden_ring() -> Vec<u8> {
    let (pm, cm) = fresh_ring();
    let mut p = Producer::new(pm.clone(), CAPACITY).unwrap();
    let mut c = Consumer::new(cm, CAPACITY, 1 << 20).unwrap();
    for i in 1..=3u8 {
        let mut progress = 0;
        assert!(p.write(&payload(i, 1000), &mut progress).unwrap());
        p.publish();
        assert!(matches!(c.next_message().unwrap(), Some(Next::InPlace { len: 1000, .. })));
    }
    c.release();
    let mut progress = 0;
    assert!(p.write(&payload(4, 2500), &mut progress).unwrap());
    p.publish();
    region(&pm)
}

/// Hex dump format of the golden files: `#` comment lines, then one line per 32 bytes,
/// `OFFSET HEX` (8 hex digits, 64 hex digits); lines whose 32 bytes are all zero are left out.
fn to_hex(bytes: &[u8], comment: &str) -> String {
    let mut s = String::new();
    for line in comment.lines() {
        s.push_str("# ");
        s.push_str(line);
        s.push('\n');
    }
    s.push_str("# Format: OFFSET (8 hex digits) then 32 bytes as 64 hex digits; omitted lines are all zero.\n");
    s.push_str(&format!("# Size: {} bytes.\n", bytes.len()));
    for (k, chunk) in bytes.chunks(32).enumerate() {
        if chunk.iter().all(|&b| b == 0) {
            continue;
        }
        s.push_str(&format!("{:08x} ", k * 32));
        for b in chunk {
            s.push_str(&format!("{b:02x}"));
        }
        s.push('\n');
    }
    s
}

fn from_hex(text: &str) -> Vec<u8> {
    let size: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("# Size: "))
        .and_then(|l| l.trim_end_matches(" bytes.").parse().ok())
        .expect("size line");
    let mut out = vec![0u8; size];
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (off, hex) = line.split_once(' ').expect("OFFSET HEX");
        let off = usize::from_str_radix(off, 16).unwrap();
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            out[off + i] = u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap();
        }
    }
    out
}

fn check(name: &str, bytes: &[u8], comment: &str) {
    let file = path(name);
    if std::env::var_os("LAPCE_AI_UPDATE_GOLDEN").is_some() {
        std::fs::write(&file, to_hex(bytes, comment)).unwrap();
    }
    let golden = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let want = from_hex(&golden);
    assert_eq!(want.len(), bytes.len(), "{name}: size");
    if let Some(i) = (0..want.len()).find(|&i| want[i] != bytes[i]) {
        panic!("{name}: byte {i:#x} is {:#04x}, the golden file says {:#04x}", bytes[i], want[i]);
    }
}

const HEADER_COMMENT: &str = "Ring header of a fresh ring of capacity 4096 (docs/PROTOCOL.md 3.2), 512 bytes:
magic 'LAIR' (0x5249414c LE) at 0, layout version 1 at 4, capacity 4096 at 8; head, tail,
consumer_sleeping, producer_waiting, closed (at 64, 128, 192, 256, 320) all 0.
Written by crates/lapce_ai_transport/tests/golden.rs.";

const RING_COMMENT: &str = "A ring of capacity 4096 (512-byte header + 4096 data bytes) as the Rust Producer leaves it:
messages 1..3 of 1000 bytes each (records at data offsets 0, 1008, 2016), read and released
by the consumer (tail = 3024); then message 4 of 2500 bytes in three fragments:
  data 3024: len 1016, flags MORE (2)            -> record of 1024 bytes
  data 4048: len 40,   flags PAD (1)             -> fills the 48 bytes to the end
  data 0:    len 1016, flags MORE|CONT (6)       -> 1024 bytes (over message 1's old bytes)
  data 1024: len 468,  flags CONT (4)            -> 8 + 472 bytes; head = 5600.
Payload byte j of message i is (i * 37 + j) mod 256. Padding bytes after a payload (to the
next multiple of 8) are not written: they hold what was there before.
Written by crates/lapce_ai_transport/tests/golden.rs.";

#[test]
fn fresh_ring_header_matches_the_golden_file() {
    let (m, _) = fresh_ring();
    let bytes = region(&m);
    check("ring-header.hex", &bytes[..ring::HEADER_SIZE], HEADER_COMMENT);
}

#[test]
fn ring_with_pad_and_fragments_matches_the_golden_file() {
    check("ring-4k-pad-fragmented.hex", &golden_ring(), RING_COMMENT);
}

#[test]
fn the_golden_ring_reads_back_as_message_4() {
    let want = from_hex(&std::fs::read_to_string(path("ring-4k-pad-fragmented.hex")).unwrap());
    let size = ring::region_size(CAPACITY);
    let fd = create_sealed_memfd("golden-read", size).unwrap();
    let m = Arc::new(Mapping::map(fd.as_fd(), size).unwrap());
    m.write_bytes(0, &want);
    // A consumer that had read up to the tail (as a fresh consumer does: it starts there).
    let mut c = Consumer::new(m, CAPACITY, 1 << 20).unwrap();
    match c.next_message().unwrap() {
        Some(Next::Assembled(v)) => assert_eq!(v, payload(4, 2500)),
        other => panic!("expected the reassembled message 4, got {other:?}"),
    }
    assert!(c.next_message().unwrap().is_none());
}
