//! Writes the seed corpora, `fuzz/corpus/TARGET/`, from the project's own fixture: short
//! calls of every kind the demo has (answered, busy, cancelled, hold, early media, rejected,
//! over TCP, IPv6, VLAN, fragmented, ERSPAN), each frame under every link type, and the
//! SIP, SDP, RTP, TCP, fragment and WebSocket pieces cut from them.
//!
//!   cargo run --manifest-path fuzz/Cargo.toml --bin seeds [OUT_DIR]

use embassy_time::{Duration, Instant};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use voipsensor::fixture::{Builder, CallSpec, Erspan, Outcome, SipTransport, add_call};
use voipsensor::sip::{self, Message};
use voipsensor::wire::websocket::{Frame, FrameRepr, OPCODE_TEXT};
use voipsensor::wire::{Decoder, LinkType, Transport, ip, link};
use voipsensor_fuzz::{LINKS, link_byte, record, step_for};

const T0: u64 = 1_767_225_600_000_000;

/// One short call of each kind, each in its own capture.
fn calls() -> Vec<(String, Builder)> {
    let kinds: &[(&str, &dyn Fn(&mut CallSpec, &mut Builder))] = &[
        ("answered", &|_, _| {}),
        ("busy", &|c, _| c.outcome = Outcome::Busy),
        ("rejected", &|c, _| {
            c.outcome = Outcome::Rejected(403, "Forbidden");
            c.compact_headers = true;
        }),
        ("cancelled", &|c, _| c.outcome = Outcome::Cancelled),
        ("hold", &|c, _| {
            c.outcome = Outcome::Hold;
            c.talk_ms = 900;
        }),
        ("earlymedia", &|c, _| c.outcome = Outcome::EarlyMedia),
        ("tcp", &|c, _| {
            c.transport = SipTransport::Tcp;
            c.caller_addr.set_port(49152);
            c.tcp_segment = Some(400);
        }),
        ("tcp-cancelled", &|c, _| {
            c.outcome = Outcome::Cancelled;
            c.transport = SipTransport::Tcp;
            c.caller_addr.set_port(49153);
        }),
        ("ipv6", &|c, _| {
            c.caller_addr = "[2001:db8::1:7]:5060".parse().unwrap();
            c.callee_addr = "[2001:db8::2:7]:5060".parse().unwrap();
            c.callee_hangs_up = true;
        }),
        ("ipv6-fragmented", &|c, _| {
            c.caller_addr = "[2001:db8::1:8]:5060".parse().unwrap();
            c.callee_addr = "[2001:db8::2:8]:5060".parse().unwrap();
            c.mtu = Some(576);
        }),
        ("vlan", &|c, b| {
            c.compact_headers = true;
            b.set_vlan(&[100, 200]);
        }),
        ("fragmented", &|c, _| c.mtu = Some(576)),
        ("erspan", &|_, b| {
            b.set_erspan(Some(Erspan {
                src: Ipv4Addr::new(192, 168, 99, 1),
                dst: Ipv4Addr::new(192, 168, 99, 2),
                session: 7,
            }))
        }),
    ];
    kinds
        .iter()
        .enumerate()
        .map(|(n, (name, f))| {
            let n = n as u8 + 1;
            let mut c = CallSpec::new(
                &format!("{name}@fuzz.seed"),
                SocketAddr::from(([10, 0, 1, n], 5060)),
                SocketAddr::from(([10, 0, 2, n], 5060)),
                T0,
            );
            c.ring_ms = 200;
            c.talk_ms = 300;
            let mut b = Builder::new();
            f(&mut c, &mut b);
            add_call(&mut b, &c);
            (name.to_string(), b)
        })
        .collect()
}

/// `eth` re-framed under link type `l`; `None` for tagged frames (only Ethernet has tags).
fn relink(eth: &[u8], l: LinkType) -> Option<Vec<u8>> {
    let et = [*eth.get(12)?, *eth.get(13)?];
    let ip = eth.get(14..)?;
    let v6 = et == [0x86, 0xdd];
    if !v6 && et != [0x08, 0x00] {
        return (l == LinkType::Ethernet).then(|| eth.to_vec());
    }
    let mac = &eth[6..12];
    let mut out = Vec::new();
    match l {
        LinkType::Ethernet => out.extend_from_slice(eth),
        LinkType::LinuxSll => {
            out.extend_from_slice(&[0, 0, 0, 1, 0, 6]);
            out.extend_from_slice(mac);
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&et);
        }
        LinkType::LinuxSll2 => {
            out.extend_from_slice(&et);
            out.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6]);
            out.extend_from_slice(mac);
            out.extend_from_slice(&[0, 0]);
        }
        LinkType::RawIp => {}
        LinkType::Ipv4 if v6 => return None,
        LinkType::Ipv6 if !v6 => return None,
        LinkType::Ipv4 | LinkType::Ipv6 => {}
        LinkType::Null => out.extend_from_slice(&(if v6 { 24u32 } else { 2 }).to_le_bytes()),
    }
    if l != LinkType::Ethernet {
        out.extend_from_slice(ip);
    }
    Some(out)
}

struct Corpus {
    dir: PathBuf,
    seen: BTreeSet<Vec<u8>>,
}

impl Corpus {
    fn new(root: &Path, target: &str) -> Corpus {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        Corpus {
            dir,
            seen: BTreeSet::new(),
        }
    }
    fn add(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() || !self.seen.insert(bytes.clone()) {
            return;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&bytes, &mut h);
        let name = format!("seed-{:016x}", std::hash::Hasher::finish(&h));
        std::fs::write(self.dir.join(name), bytes).expect("write seed");
    }
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let names = [
        "decode",
        "frag",
        "tcp",
        "sip",
        "sdp",
        "rtp",
        "websocket",
        "tracker",
    ];
    let mut c: Vec<Corpus> = names.iter().map(|n| Corpus::new(&root, n)).collect();
    let [decode, frag, tcp, sipc, sdp, rtp, ws, tracker] = &mut c[..] else {
        unreachable!()
    };
    let mut sip_texts = Vec::new();
    for (_, b) in calls() {
        let frames = b.frames();
        // Tracker: the whole call under each link type its frames allow.
        for &l in &LINKS {
            let mut seed = Vec::new();
            let mut last = T0;
            for (ts, f) in &frames {
                let Some(f) = relink(f, l) else { continue };
                let head = link_byte(l) | step_for(ts.saturating_sub(last)) << 3;
                record(&mut seed, head, &f);
                last = *ts;
            }
            tracker.add(seed);
        }
        let mut d = Decoder::new(8, Duration::from_secs(30));
        let mut rtp_seed = Vec::new();
        let mut rtp_port = None;
        let mut rtp_last = T0;
        let mut tcp_seed = Vec::new();
        let mut tcp_first = None;
        let mut frag_seed = Vec::new();
        let mut frag_last = T0;
        for (i, (ts, f)) in frames.iter().enumerate() {
            // Decode: the signalling and the first media frames, under every link type.
            if i < 24 {
                for &l in &LINKS {
                    if let Some(f) = relink(f, l) {
                        let mut s = vec![link_byte(l)];
                        s.extend_from_slice(&f);
                        decode.add(s);
                    }
                }
            }
            // Fragments, cut straight from the IP header.
            if let Ok(lr) = link::strip(LinkType::Ethernet, f) {
                let parsed = match lr.network {
                    link::Network::Ipv4(b) => ip::parse_ipv4(b),
                    link::Network::Ipv6(b) => ip::parse_ipv6(b),
                };
                if let Ok(r) = parsed
                    && let Some(fi) = r.frag
                {
                    let head = (fi.id & 3) as u8
                        | u8::from(fi.more) << 2
                        | step_for(ts.saturating_sub(frag_last)) << 3;
                    let mut body = ((fi.offset / 8) as u16).to_le_bytes().to_vec();
                    body.extend_from_slice(r.payload);
                    record(&mut frag_seed, head, &body);
                    frag_last = *ts;
                }
            }
            let Ok(Some(p)) = d.decode(Instant::from_micros(*ts), LinkType::Ethernet, f) else {
                continue;
            };
            let flow = p.flow();
            match p.transport {
                Transport::Udp {
                    payload, src_port, ..
                } => {
                    if sip::looks_like_sip(payload) {
                        sipc.add(payload.to_vec());
                        sip_texts.push(payload.to_vec());
                        if let Ok(m) = Message::parse(payload)
                            && let Some(body) = m.sdp_body()
                        {
                            sdp.add(body.to_vec());
                        }
                    } else if *rtp_port.get_or_insert(src_port) == src_port {
                        let ms = (ts.saturating_sub(rtp_last) / 1000).min(255) as u8;
                        record(&mut rtp_seed, ms, payload);
                        rtp_last = *ts;
                    }
                }
                Transport::Tcp {
                    seq,
                    flags,
                    payload,
                    ..
                } => {
                    let dir = u8::from(*tcp_first.get_or_insert(flow.src) != flow.src);
                    let head = u8::from(flags.syn)
                        | u8::from(flags.fin) << 1
                        | u8::from(flags.rst) << 2
                        | dir << 3
                        | 1 << 5;
                    let mut body = seq.to_le_bytes().to_vec();
                    body.extend_from_slice(payload);
                    record(&mut tcp_seed, head, &body);
                }
                // The decode target's seeds carry SCTP frames whole; no separate corpus.
                Transport::Sctp { .. } => {}
            }
        }
        rtp.add(rtp_seed);
        tcp.add(tcp_seed);
        frag.add(frag_seed);
    }
    // RTCP (real datagrams from the rtcp.rs tests) and an RFC 4733 event.
    for h in [
        "81c8000c5d931534dd3ac1704d614df800007d00000000c800007d0000000000000000010000000000000000000000000000000081ca000e5d931534010835643933313533340725467265655357495443482e6f7267202d2d20436f6d6520746f20436c7565436f6e2e636f6d000000",
        "81c9000701932db45d931534000000010000bf8b00000006c1704d610004051c81ca000e01932db40107313933326462340725467265655357495443482e6f7267202d2d20436f6d6520746f20436c7565436f6e2e636f6d00000000",
        "80cf000a1122334407000008aabbccdd0d004002007807d0002a0050e2ba7f7f507f28290000003c007800c8",
        "80e5000112345678deadbeef05000140",
    ] {
        let h: String = h.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes: Vec<u8> = (0..h.len() / 2)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let mut s = Vec::new();
        record(&mut s, 20, &bytes);
        rtp.add(s);
    }
    // WebSocket: the Upgrade exchange, then SIP in text frames, masked (client) and not.
    let upgrade = b"GET / HTTP/1.1\r\nHost: sip.fuzz.seed\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n";
    ws.add(upgrade.to_vec());
    ws.add(switching.to_vec());
    let mut ws_tcp = Vec::new();
    let mut seqs = [1000u32, 5000];
    for (dir, bytes) in [(0u8, &upgrade[..]), (1, &switching[..])] {
        let mut body = seqs[usize::from(dir)].to_le_bytes().to_vec();
        body.extend_from_slice(bytes);
        record(&mut ws_tcp, dir << 3 | 1 << 5, &body);
        seqs[usize::from(dir)] += bytes.len() as u32;
    }
    for (i, text) in sip_texts.iter().take(12).enumerate() {
        let dir = (i % 2) as u8;
        let key = (dir == 0).then_some([0x37, 0xfa, 0x21, 0x3d]);
        let repr = FrameRepr {
            fin: true,
            opcode: OPCODE_TEXT,
            mask_key: key,
            payload_len: text.len(),
        };
        let mut f = vec![0u8; repr.header_len() + text.len()];
        repr.emit(&mut Frame::new_unchecked(&mut f[..]));
        for (j, b) in text.iter().enumerate() {
            f[repr.header_len() + j] = b ^ key.map_or(0, |k| k[j % 4]);
        }
        ws.add(f.clone());
        let mut body = seqs[usize::from(dir)].to_le_bytes().to_vec();
        body.extend_from_slice(&f);
        record(&mut ws_tcp, dir << 3 | 1 << 5, &body);
        seqs[usize::from(dir)] += f.len() as u32;
    }
    // A ping.
    ws.add(vec![0x89, 0x80, 1, 2, 3, 4]);
    tcp.add(ws_tcp);
    for (n, corpus) in names.iter().zip(&c) {
        println!(
            "{n}: {} seeds in {}",
            corpus.seen.len(),
            corpus.dir.display()
        );
    }
}
