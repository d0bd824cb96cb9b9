//! The crate's encoders and decoders against the golden frames of `__test__/ipc/golden/frames.json`
//! (generated from the layouts alone by `__test__/ipc/golden/generate.ts`, not by this crate).

use lapce_ai_client::wire::control::{ControlFrame, ControlReader, GoAway, Hello, Reject, Welcome};
use lapce_ai_client::wire::frame::{self, Kind};
use lapce_ai_client::RejectReason;
use serde_json::Value;

fn golden() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../__test__/ipc/golden/frames.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn u(v: &Value, k: &str) -> u32 {
    v[k].as_u64().unwrap_or_else(|| panic!("field {k} in {v}")) as u32
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap().to_owned()
}

/// The frame a golden entry's fields describe, built without looking at its bytes.
fn expected_control(e: &Value) -> ControlFrame {
    let f = &e["fields"];
    match e["typeName"].as_str().unwrap() {
        "HELLO" => ControlFrame::Hello(Hello {
            magic: u(f, "magic"),
            min_version: u(f, "minVersion") as u16,
            max_version: u(f, "maxVersion") as u16,
            pid: u(f, "pid"),
            features: u(f, "features"),
            name: s(f, "name"),
        }),
        "WELCOME" => ControlFrame::Welcome(Welcome {
            version: u(f, "version") as u16,
            slot: u(f, "slot"),
            generation: u(f, "generation"),
            ring_capacity: u(f, "capacity"),
            max_message: u(f, "maxMessage"),
            max_streams: u(f, "maxStreams"),
            features: u(f, "features"),
            idle_timeout_ms: u(f, "idleTimeoutMs"),
            server_pid: u(f, "serverPid"),
        }),
        "READY" => ControlFrame::Ready {
            slot: u(f, "slot"),
            generation: u(f, "generation"),
        },
        "REJECT" => ControlFrame::Reject(Reject {
            reason: RejectReason::from_wire(u(f, "reason") as u16),
            message: s(f, "message"),
        }),
        "GOAWAY" => ControlFrame::GoAway(GoAway {
            deadline_ms: u(f, "deadlineMs"),
            message: s(f, "message"),
        }),
        other => panic!("unknown control golden {other}"),
    }
}

#[test]
fn control_frames_match_the_goldens_both_ways() {
    let g = golden();
    let entries = g["control"].as_array().unwrap();
    assert!(entries.len() >= 5);
    for e in entries {
        let bytes = unhex(e["hex"].as_str().unwrap());
        let want = expected_control(e);
        assert_eq!(want.encode(), bytes, "encoding {}", e["name"]);
        let mut r = ControlReader::default();
        r.push(&bytes);
        assert_eq!(r.next_frame().unwrap(), Some(want), "decoding {}", e["name"]);
        assert_eq!(r.next_frame().unwrap(), None);
    }
}

#[test]
fn data_frames_match_the_goldens_both_ways() {
    let g = golden();
    let entries = g["data"].as_array().unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for e in entries {
        let f = &e["fields"];
        let bytes = unhex(e["hex"].as_str().unwrap());
        let d = frame::decode(&bytes).unwrap_or_else(|err| panic!("{}: {err}", e["name"]));
        assert_eq!(d.kind as u32, u(f, "kind"), "{}", e["name"]);
        assert_eq!(d.json as u32, u(f, "flags"), "{}", e["name"]);
        assert_eq!(d.id, u(f, "id"), "{}", e["name"]);
        assert_eq!(d.method, f["method"].as_str().unwrap(), "{}", e["name"]);
        let payload = &f["payload"];
        if payload.is_null() {
            assert!(d.payload.is_empty());
        } else if let Some(hex) = payload.get("bytes") {
            assert_eq!(d.payload, &unhex(hex.as_str().unwrap())[..], "{}", e["name"]);
        } else {
            let parsed: Value = serde_json::from_slice(d.payload).unwrap();
            assert_eq!(parsed, payload["json"], "{}", e["name"]);
        }
        let again = frame::encode(d.kind, d.id, d.method, d.json, d.payload);
        assert_eq!(again, bytes, "re-encoding {}", e["name"]);
        kinds.insert(d.kind as u8);
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        (1..=8).collect::<Vec<u8>>(),
        "every kind has a golden"
    );
}

#[test]
fn what_this_client_sends_is_golden() {
    let g = golden();
    let find = |name: &str| {
        unhex(
            g["data"].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap()["hex"]
                .as_str()
                .unwrap(),
        )
    };
    // The default stream window (256 chunks, 4 MiB) as STREAM_CREDIT, and a CANCEL.
    assert_eq!(frame::credit(4, 256, 4 << 20), find("stream_credit"));
    assert_eq!(frame::encode(Kind::Cancel, 4, "", false, &[]), find("cancel"));
    assert_eq!(
        frame::encode(Kind::Request, 1, "echo", true, br#"{"hello":"world"}"#),
        find("request_json")
    );
    let conn_err_bytes = find("connection_error");
    let conn_err = frame::decode(&conn_err_bytes).unwrap();
    assert_eq!((conn_err.kind, conn_err.id), (Kind::Error, 0));
}
