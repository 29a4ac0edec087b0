//! Runs the parsers over every UDP payload of the public captures in
//! `../shared/pcaps` (skipped when absent). Crude link/IP decoding on purpose:
//! this checks the SIP layer, not `wire/`.

use super::{Message, SipFrame, frame_len, looks_like_sip, sdp};

/// UDP payload of an Ethernet (optionally 802.1Q) or raw-IP frame carrying
/// unfragmented IPv4/IPv6 UDP.
fn udp_payload(linktype: i32, frame: &[u8]) -> Option<&[u8]> {
    let (proto, _, l4) = ip_payload(linktype, frame)?;
    if proto != 17 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*l4.get(4)?, *l4.get(5)?]));
    l4.get(8..len.min(l4.len()))
}

/// `(protocol, addresses, L4 bytes)` of an unfragmented IPv4 packet or an IPv6 packet
/// without extension headers.
fn ip_payload(linktype: i32, frame: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let ip = match linktype {
        1 => {
            let mut off = 12;
            let mut ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
            while ethertype == 0x8100 || ethertype == 0x88a8 {
                off += 4;
                ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
            }
            frame.get(off + 2..)?
        }
        12 | 101 => frame,
        113 => frame.get(16..)?,
        _ => return None,
    };
    match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
            if frag & 0x3fff != 0 {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            Some((
                *ip.get(9)?,
                ip.get(12..20)?,
                ip.get(ihl..total.min(ip.len()))?,
            ))
        }
        6 => Some((*ip.get(6)?, ip.get(8..40)?, ip.get(40..)?)),
        _ => None,
    }
}

/// Concatenates in-order TCP payloads per direction (retransmissions and
/// out-of-order segments dropped), then frames and parses every message.
fn scan_tcp(path: &std::path::Path) -> usize {
    use std::collections::HashMap;
    let Ok(mut cap) = pcap::Capture::from_file(path) else {
        return 0;
    };
    let linktype = cap.get_datalink().0;
    // flow key (addresses+ports as bytes) -> (next expected seq, stream bytes)
    let mut flows: HashMap<Vec<u8>, (u32, Vec<u8>)> = HashMap::new();
    while let Ok(pkt) = cap.next_packet() {
        let Some((6, addrs, tcp)) = ip_payload(linktype, pkt.data) else {
            continue;
        };
        let Some(&off_byte) = tcp.get(12) else {
            continue;
        };
        let Some(payload) = tcp.get(usize::from(off_byte >> 4) * 4..) else {
            continue;
        };
        if payload.is_empty() {
            continue;
        }
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        let mut key = addrs.to_vec();
        key.extend_from_slice(&tcp[..4]);
        let flow = flows.entry(key).or_insert((seq, Vec::new()));
        if flow.0 == seq {
            flow.1.extend_from_slice(payload);
            flow.0 = seq.wrapping_add(payload.len() as u32);
        }
    }
    let mut messages = 0;
    for (_, stream) in flows.values() {
        let mut rest = &stream[..];
        if !looks_like_sip(rest) {
            continue;
        }
        loop {
            match frame_len(rest) {
                SipFrame::Complete(n) => {
                    let m = Message::parse(&rest[..n]).unwrap_or_else(|e| {
                        panic!(
                            "{}: {e:?} in {:?}",
                            path.display(),
                            rest[..n].escape_ascii()
                        )
                    });
                    assert_eq!(m.body().len(), m.content_length().unwrap_or(0));
                    assert!(m.call_id().is_some());
                    messages += 1;
                    rest = &rest[n..];
                }
                SipFrame::Invalid(n) | SipFrame::Oversize(n) => rest = &rest[n..],
                SipFrame::Incomplete => break,
            }
        }
        assert!(
            rest.is_empty(),
            "{}: {} bytes left",
            path.display(),
            rest.len()
        );
    }
    messages
}

#[test]
fn tcp_streams_in_public_captures_frame_into_whole_messages() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps");
    // tshark -z sip,stat counts.
    for (file, want) in [
        ("sip_tcp6060_segmented_70calls.pcap", 406),
        ("sip_tcp_call_rtp_rtcp.pcap", 7),
    ] {
        let path = dir.join(file);
        if path.exists() {
            assert_eq!(scan_tcp(&path), want, "{file}");
        }
    }
}

#[derive(Default)]
struct Counts {
    sip: usize,
    with_sdp: usize,
}

fn scan(path: &std::path::Path) -> Counts {
    let mut counts = Counts::default();
    let Ok(mut cap) = pcap::Capture::from_file(path) else {
        return counts;
    };
    let linktype = cap.get_datalink().0;
    while let Ok(pkt) = cap.next_packet() {
        let Some(payload) = udp_payload(linktype, pkt.data) else {
            continue;
        };
        if !looks_like_sip(payload) {
            continue;
        }
        let name = path.display();
        let m = Message::parse(payload)
            .unwrap_or_else(|e| panic!("{name}: {e:?} in {:?}", payload.escape_ascii()));
        assert!(m.call_id().is_some(), "{name}: no Call-ID");
        assert!(m.cseq().is_some(), "{name}: no CSeq");
        assert!(m.from().is_some() && m.to().is_some(), "{name}: From/To");
        assert!(m.via_branch().is_some(), "{name}: no Via branch");
        counts.sip += 1;
        if let Some(body) = m.sdp_body() {
            let s = sdp::parse(body).unwrap_or_else(|e| panic!("{name}: SDP {e:?}"));
            assert!(!s.media.is_empty(), "{name}: SDP without media");
            counts.with_sdp += 1;
        }
    }
    counts
}

#[test]
fn every_udp_sip_message_in_public_captures_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    // tshark -z sip,stat counts for captures whose SIP is plain UDP.
    let expected: [(&str, usize, Option<usize>); 6] = [
        ("sip_call_rtp_g711.pcap", 14, Some(3)),
        ("sip_ipv6_udp_call.pcap", 6, None),
        ("aaa_register_cancel_4xx.pcap", 81, None),
        ("fax_call_t38_reinvite_dtmf.pcap", 92, None),
        ("ndpi_sip_register_401.pcapng", 8, None),
        ("sip_udp_rawip_linktype.pcap", 8, None),
    ];
    let mut total = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_capture = path
            .extension()
            .is_some_and(|e| e == "pcap" || e == "pcapng");
        if !is_capture {
            continue;
        }
        let counts = scan(&path);
        total += counts.sip;
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        if let Some(&(_, sip, sdp)) = expected.iter().find(|(f, _, _)| *f == file) {
            assert_eq!(counts.sip, sip, "{file}");
            if let Some(sdp) = sdp {
                assert_eq!(counts.with_sdp, sdp, "{file}");
            }
        }
    }
    if dir.join("sip_call_rtp_g711.pcap").exists() {
        assert!(total > 100, "only {total} SIP/UDP messages found");
    }
}
