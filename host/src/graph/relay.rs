//! A relay between the driver and the server that weighs every message the server sends before the driver reads it.
//!
//! neo4rs reads a whole Bolt message before it decodes it, then decodes it
//! twice (Bolt values, then `BoltType`) and a row is cloned once more: one
//! record of six million integers cost 1.6 GiB before the host could look at
//! it, and nothing in the driver bounds a message. So the driver never talks to
//! the server: it talks to this relay on the loopback interface, which passes
//! what the driver sends on unchanged and reads what the server sends one
//! packstream marker at a time, in one linear pass that builds nothing. Each
//! marker is weighed for what the driver will spend on it ([`VALUE_COST`] per
//! value, [`BYTE_COST`] per byte of text); the records of one batch (what the
//! driver buffers for one PULL) may weigh no more than the cap the host set for
//! the statement. Past it, or at anything that is not packstream, the relay
//! stops forwarding and closes both sides: the driver sees a broken connection
//! and the host asks [`RelayState::take_cut`] why.
//!
//! The relay also speaks TLS to the server for `+s` and `+ssc` URIs (the
//! driver speaks plain Bolt to the relay, on 127.0.0.1 only), and for
//! `neo4j://` URIs it rewrites the routing table the server returns so that
//! the driver's connections to other cluster members come through relays too.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the driver spends on one value whatever its wire size: measured with
/// `RETURN range(1, N)` through neo4rs 0.9, about 285 bytes of peak memory per
/// integer (the Bolt value, the `BoltType`, the row's clone and their vectors).
pub const VALUE_COST: u64 = 320;
/// What the driver spends on one byte of a string or byte array: the wire
/// buffer, the decoded string, the `BoltType` and the clone.
pub const BYTE_COST: u64 = 4;
/// The cap of statements no migration bounds (the host's own bookkeeping).
pub const UNBOUNDED_CAP: u64 = 1 << 30;
/// The least cap a statement gets, so that the host's own small queries on
/// other connections (the lock's heartbeat) pass while a migration's budget is
/// nearly spent.
pub const MIN_CAP: u64 = 1 << 20;
/// The largest routing-table answer the relay decodes to rewrite.
const ROUTE_ANSWER_MAX: usize = 1 << 20;
/// Bolt message signatures the relay tells apart.
const RECORD: u8 = 0x71;
const SUCCESS: u8 = 0x70;

/// How the relay reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain TCP (`bolt://`, `neo4j://`).
    Off,
    /// TLS with the platform's certificate verification (`+s`).
    Verified,
    /// TLS accepting any certificate (`+ssc`, self-signed).
    SelfSigned,
}

/// Why the relay stopped a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cut {
    /// The records of one batch would have cost the driver more than the cap.
    Weight {
        /// What they weighed when the relay stopped (at least this much).
        weight: u64,
        /// The cap.
        cap: u64,
    },
    /// The server sent something that is not packstream.
    Malformed(String),
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cut::Weight { weight, cap } => write!(
                f,
                "the server was sending records that would take more than {weight} bytes to \
                 decode, past the {cap} bytes the result limit leaves; graphmig stopped them \
                 before reading them"
            ),
            Cut::Malformed(what) => write!(f, "the server sent a malformed message: {what}"),
        }
    }
}

/// What the relay and the host share: the cap of the statement running now,
/// why a connection was cut, and why the server could not be reached.
#[derive(Debug)]
pub struct RelayState {
    cap: AtomicU64,
    cut: Mutex<Option<Cut>>,
    upstream_error: Mutex<Option<String>>,
    tls: Tls,
    connect_timeout: Duration,
    routing: bool,
    /// A relay per cluster member the routing table named, by its address.
    members: Mutex<HashMap<String, Relay>>,
}

impl RelayState {
    /// Bounds what the records of one batch may cost the driver from now on;
    /// never below [`MIN_CAP`].
    pub fn set_cap(&self, bytes: u64) {
        self.cap.store(bytes.max(MIN_CAP), Ordering::Relaxed);
    }

    /// Back to the cap of the host's own statements.
    pub fn reset_cap(&self) {
        self.cap.store(UNBOUNDED_CAP, Ordering::Relaxed);
    }

    /// Why the relay last cut a connection, once.
    pub fn take_cut(&self) -> Option<Cut> {
        self.cut.lock().map(|mut c| c.take()).unwrap_or(None)
    }

    /// Why the relay last failed to reach the server, once.
    pub fn take_upstream_error(&self) -> Option<String> {
        self.upstream_error
            .lock()
            .map(|mut e| e.take())
            .unwrap_or(None)
    }

    fn record_cut(&self, cut: Cut) {
        if let Ok(mut slot) = self.cut.lock() {
            *slot = Some(cut);
        }
    }

    fn record_upstream_error(&self, error: String) {
        if let Ok(mut slot) = self.upstream_error.lock() {
            *slot = Some(error);
        }
    }
}

/// A listener on 127.0.0.1 that relays each connection to one server.
#[derive(Debug)]
pub struct Relay {
    local: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Relay {
    /// Starts a relay to `host:port`; returns it and the state it shares.
    pub fn start(
        host: &str,
        port: u16,
        tls: Tls,
        routing: bool,
        connect_timeout: Duration,
    ) -> std::io::Result<(Relay, Arc<RelayState>)> {
        let state = Arc::new(RelayState {
            cap: AtomicU64::new(UNBOUNDED_CAP),
            cut: Mutex::new(None),
            upstream_error: Mutex::new(None),
            tls,
            connect_timeout,
            routing,
            members: Mutex::new(HashMap::new()),
        });
        let relay = Relay::listen(host.to_string(), port, Arc::clone(&state))?;
        Ok((relay, state))
    }

    /// Binds and starts accepting. Not async: the accept loop's connections may
    /// start member relays, and a future that awaits itself cannot be sent.
    fn listen(host: String, port: u16, state: Arc<RelayState>) -> std::io::Result<Relay> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let local = listener.local_addr()?;
        // The state is held weakly: the member relays live in the state, and
        // a strong reference from their accept loops would keep it forever.
        let weak = Arc::downgrade(&state);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Some(state) = weak.upgrade() else { break };
                let host = host.clone();
                tokio::spawn(async move {
                    let _ = client.set_nodelay(true);
                    relay_connection(client, &host, port, state).await;
                });
            }
        });
        Ok(Relay { local, accept })
    }

    /// The address the driver connects to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

/// Connects to the server (with TLS when asked), then relays until either side
/// closes or the relay cuts the connection.
async fn relay_connection(client: TcpStream, host: &str, port: u16, state: Arc<RelayState>) {
    let connect = tokio::time::timeout(state.connect_timeout, TcpStream::connect((host, port)));
    let server = match connect.await {
        Ok(Ok(server)) => server,
        Ok(Err(e)) => {
            state.record_upstream_error(format!("cannot reach {host}:{port}: {e}"));
            return;
        }
        Err(_) => {
            state.record_upstream_error(format!("no answer from {host}:{port}"));
            return;
        }
    };
    let _ = server.set_nodelay(true);
    match state.tls {
        Tls::Off => pump(client, server, state).await,
        tls => match tls_connect(server, host, tls).await {
            Ok(server) => pump(client, server, state).await,
            Err(e) => state.record_upstream_error(format!("TLS with {host}:{port} failed: {e}")),
        },
    }
}

async fn pump<S>(client: TcpStream, server: S, state: Arc<RelayState>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = tokio::io::split(server);
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let downstream = async {
        if let Err(cut) = guard_downstream(&mut server_read, &mut client_write, &state).await {
            state.record_cut(cut);
        }
        let _ = client_write.shutdown().await;
    };
    // Whichever side ends first ends the connection: after a cut, nothing the
    // driver sends should reach the server on this connection either.
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}

/// Reads what the server sends, weighs it, and forwards it re-chunked; returns
/// at the end of the stream, or with the reason for a cut.
async fn guard_downstream<R, W>(
    server: &mut R,
    client: &mut W,
    state: &Arc<RelayState>,
) -> Result<(), Cut>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // The server's first four bytes are the protocol version it chose.
    let mut version = [0u8; 4];
    if server.read_exact(&mut version).await.is_err() || client.write_all(&version).await.is_err() {
        return Ok(());
    }
    let mut dechunker = Dechunker::new(state.routing);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(buffer.len() + 64);
    loop {
        let n = match server.read(&mut buffer).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(n) => n,
        };
        out.clear();
        let cap = state.cap.load(Ordering::Relaxed);
        let routed = dechunker.feed(&buffer[..n], cap, &mut out)?;
        for answer in routed {
            let rewritten = rewrite_routing_answer(&answer, state).await?;
            write_chunked(&rewritten, &mut out);
        }
        if client.write_all(&out).await.is_err() {
            return Ok(());
        }
    }
}

/// Where the dechunker is in the chunk framing.
#[derive(Debug, Clone, Copy)]
enum Frame {
    /// Reading a chunk's two-byte length; `Some(hi)` once the first is in.
    Header(Option<u8>),
    /// Inside a chunk, with this many bytes left.
    Body(usize),
}

/// Undoes the server's chunking, scans each message and chunks it anew.
struct Dechunker {
    frame: Frame,
    scan: Scanner,
    /// The records of the batch so far weigh this much.
    batch_weight: u64,
    routing: bool,
    /// The start of a message, held until its signature is known.
    head: Vec<u8>,
    /// A SUCCESS held whole, when routing, to rewrite its routing table.
    held: Option<Vec<u8>>,
    in_message: bool,
}

impl Dechunker {
    fn new(routing: bool) -> Dechunker {
        Dechunker {
            frame: Frame::Header(None),
            scan: Scanner::default(),
            batch_weight: 0,
            routing,
            head: Vec::new(),
            held: None,
            in_message: false,
        }
    }

    /// Takes bytes from the server, appends what to forward to `out`, and
    /// returns the SUCCESS messages held for rewriting that ended here.
    fn feed(&mut self, mut data: &[u8], cap: u64, out: &mut Vec<u8>) -> Result<Vec<Vec<u8>>, Cut> {
        let mut finished = Vec::new();
        while !data.is_empty() {
            match self.frame {
                Frame::Header(None) => {
                    self.frame = Frame::Header(Some(data[0]));
                    data = &data[1..];
                }
                Frame::Header(Some(hi)) => {
                    let len = usize::from(u16::from_be_bytes([hi, data[0]]));
                    data = &data[1..];
                    if len == 0 {
                        if let Some(held) = self.end_message(out)? {
                            finished.push(held);
                        }
                        self.frame = Frame::Header(None);
                    } else {
                        self.in_message = true;
                        self.frame = Frame::Body(len);
                    }
                }
                Frame::Body(left) => {
                    let take = left.min(data.len());
                    self.content(&data[..take], cap, out)?;
                    data = &data[take..];
                    self.frame = if take == left {
                        Frame::Header(None)
                    } else {
                        Frame::Body(left - take)
                    };
                }
            }
        }
        Ok(finished)
    }

    /// A piece of a message's content.
    fn content(&mut self, bytes: &[u8], cap: u64, out: &mut Vec<u8>) -> Result<(), Cut> {
        self.scan.scan(bytes)?;
        let weight = self.batch_weight.saturating_add(self.scan.weight);
        if weight > cap {
            return Err(Cut::Weight { weight, cap });
        }
        if let Some(held) = &mut self.held {
            if held.len() + bytes.len() > ROUTE_ANSWER_MAX {
                return Err(Cut::Malformed(format!(
                    "a SUCCESS message of more than {ROUTE_ANSWER_MAX} bytes"
                )));
            }
            held.extend_from_slice(bytes);
            return Ok(());
        }
        if self.scan.signature.is_none() {
            // Until the signature is known, the content waits (two bytes at most).
            self.head.extend_from_slice(bytes);
            return Ok(());
        }
        let mut piece = std::mem::take(&mut self.head);
        piece.extend_from_slice(bytes);
        if self.routing && self.scan.signature == Some(SUCCESS) {
            self.held = Some(piece);
        } else {
            write_chunk(&piece, out);
        }
        Ok(())
    }

    /// The end of a message (or a NOOP between messages).
    fn end_message(&mut self, out: &mut Vec<u8>) -> Result<Option<Vec<u8>>, Cut> {
        if !self.in_message {
            out.extend_from_slice(&[0, 0]);
            return Ok(None);
        }
        self.in_message = false;
        if !self.scan.at_value_boundary() {
            return Err(Cut::Malformed("a message ends inside a value".into()));
        }
        if self.scan.signature == Some(RECORD) {
            self.batch_weight = self.batch_weight.saturating_add(self.scan.weight);
        } else {
            // A summary ends the batch the driver buffers.
            self.batch_weight = 0;
        }
        self.scan = Scanner::default();
        if !self.head.is_empty() {
            write_chunk(&std::mem::take(&mut self.head), out);
        }
        if let Some(held) = self.held.take() {
            return Ok(Some(held));
        }
        out.extend_from_slice(&[0, 0]);
        Ok(None)
    }
}

fn write_chunk(bytes: &[u8], out: &mut Vec<u8>) {
    for piece in bytes.chunks(usize::from(u16::MAX)) {
        out.extend_from_slice(&(piece.len() as u16).to_be_bytes());
        out.extend_from_slice(piece);
    }
}

fn write_chunked(message: &[u8], out: &mut Vec<u8>) {
    write_chunk(message, out);
    out.extend_from_slice(&[0, 0]);
}

/// Weighs one message's packstream one marker at a time, holding at most a
/// marker's header.
#[derive(Debug, Default)]
struct Scanner {
    header: [u8; 9],
    header_len: usize,
    /// Payload bytes (of a string or byte array) still to pass.
    skip: u64,
    /// What the message weighs so far.
    weight: u64,
    /// The message's signature, once its first struct header is in.
    signature: Option<u8>,
}

impl Scanner {
    fn at_value_boundary(&self) -> bool {
        self.header_len == 0 && self.skip == 0
    }

    fn scan(&mut self, mut bytes: &[u8]) -> Result<(), Cut> {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let take = (bytes.len() as u64).min(self.skip);
                self.skip -= take;
                bytes = &bytes[take as usize..];
                continue;
            }
            self.header[self.header_len] = bytes[0];
            self.header_len += 1;
            bytes = &bytes[1..];
            let need = header_len(self.header[0])
                .ok_or_else(|| Cut::Malformed(format!("the marker 0x{:02X}", self.header[0])))?;
            if self.header_len < need {
                continue;
            }
            let header = &self.header[..need];
            if self.signature.is_none() {
                if !(0xB0..=0xBF).contains(&header[0]) {
                    return Err(Cut::Malformed("a message that is not a struct".into()));
                }
                self.signature = Some(header[1]);
            }
            let payload = payload_len(header);
            self.weight = self
                .weight
                .saturating_add(VALUE_COST)
                .saturating_add(payload.saturating_mul(BYTE_COST));
            self.skip = payload;
            self.header_len = 0;
        }
        Ok(())
    }
}

/// How many bytes a marker's header takes, the marker included; `None` for a
/// byte that is no packstream marker.
fn header_len(marker: u8) -> Option<usize> {
    Some(match marker {
        0x00..=0x7F | 0xF0..=0xFF | 0x80..=0xAF | 0xC0 | 0xC2 | 0xC3 => 1,
        0xB0..=0xBF => 2,
        0xC1 | 0xCB => 9,
        0xC8 | 0xCC | 0xD0 | 0xD4 | 0xD8 => 2,
        0xC9 | 0xCD | 0xD1 | 0xD5 | 0xD9 => 3,
        0xCA | 0xCE | 0xD2 | 0xD6 | 0xDA => 5,
        _ => return None,
    })
}

/// The bytes of text or binary that follow a complete header.
fn payload_len(header: &[u8]) -> u64 {
    let size = |bytes: &[u8]| bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
    match header[0] {
        0x80..=0x8F => u64::from(header[0] & 0x0F),
        0xCC..=0xCE | 0xD0..=0xD2 => size(&header[1..]),
        _ => 0,
    }
}

/// A decoded packstream value, for the one message the relay rewrites.
#[derive(Debug, Clone, PartialEq)]
enum Pack {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    List(Vec<Pack>),
    Map(Vec<(String, Pack)>),
    Struct(u8, Vec<Pack>),
}

fn malformed(what: &str) -> Cut {
    Cut::Malformed(what.to_string())
}

/// Decodes one value of a message already bounded in size, at most 32 deep.
fn decode(bytes: &mut &[u8], depth: usize) -> Result<Pack, Cut> {
    if depth > 32 {
        return Err(malformed("a routing answer nested too deep"));
    }
    let take = |bytes: &mut &[u8], n: usize| -> Result<Vec<u8>, Cut> {
        if bytes.len() < n {
            return Err(malformed("a truncated value"));
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head.to_vec())
    };
    let size = |b: Vec<u8>| b.iter().fold(0usize, |n, x| (n << 8) | usize::from(*x));
    let marker = take(bytes, 1)?[0];
    let count = |bytes: &mut &[u8], tiny: u8, base: u8| -> Result<usize, Cut> {
        Ok(match marker {
            m if m & 0xF0 == tiny => usize::from(m & 0x0F),
            m if m == base => size(take(bytes, 1)?),
            m if m == base + 1 => size(take(bytes, 2)?),
            _ => size(take(bytes, 4)?),
        })
    };
    Ok(match marker {
        0x00..=0x7F => Pack::Int(i64::from(marker)),
        0xF0..=0xFF => Pack::Int(i64::from(marker as i8)),
        0xC0 => Pack::Null,
        0xC2 => Pack::Bool(false),
        0xC3 => Pack::Bool(true),
        0xC1 => Pack::Float(f64::from_be_bytes(
            take(bytes, 8)?
                .try_into()
                .map_err(|_| malformed("a float"))?,
        )),
        0xC8 => Pack::Int(i64::from(take(bytes, 1)?[0] as i8)),
        0xC9 => Pack::Int(i64::from(i16::from_be_bytes(
            take(bytes, 2)?
                .try_into()
                .map_err(|_| malformed("an integer"))?,
        ))),
        0xCA => Pack::Int(i64::from(i32::from_be_bytes(
            take(bytes, 4)?
                .try_into()
                .map_err(|_| malformed("an integer"))?,
        ))),
        0xCB => Pack::Int(i64::from_be_bytes(
            take(bytes, 8)?
                .try_into()
                .map_err(|_| malformed("an integer"))?,
        )),
        0xCC..=0xCE => {
            let n = count(bytes, 0xFF, 0xCC)?;
            Pack::Bytes(take(bytes, n)?)
        }
        0x80..=0x8F | 0xD0..=0xD2 => {
            let n = count(bytes, 0x80, 0xD0)?;
            Pack::Text(String::from_utf8(take(bytes, n)?).map_err(|_| malformed("a string"))?)
        }
        0x90..=0x9F | 0xD4..=0xD6 => {
            let n = count(bytes, 0x90, 0xD4)?;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(decode(bytes, depth + 1)?);
            }
            Pack::List(items)
        }
        0xA0..=0xAF | 0xD8..=0xDA => {
            let n = count(bytes, 0xA0, 0xD8)?;
            let mut entries = Vec::new();
            for _ in 0..n {
                let Pack::Text(key) = decode(bytes, depth + 1)? else {
                    return Err(malformed("a map key that is not a string"));
                };
                entries.push((key, decode(bytes, depth + 1)?));
            }
            Pack::Map(entries)
        }
        0xB0..=0xBF => {
            let signature = take(bytes, 1)?[0];
            let mut fields = Vec::new();
            for _ in 0..(marker & 0x0F) {
                fields.push(decode(bytes, depth + 1)?);
            }
            Pack::Struct(signature, fields)
        }
        other => return Err(Cut::Malformed(format!("the marker 0x{other:02X}"))),
    })
}

fn encode(value: &Pack, out: &mut Vec<u8>) {
    let sized = |out: &mut Vec<u8>, n: usize, tiny: u8, base: u8| {
        if n < 16 && tiny != 0 {
            out.push(tiny | n as u8);
        } else if n <= 0xFF {
            out.extend_from_slice(&[base, n as u8]);
        } else if n <= 0xFFFF {
            out.push(base + 1);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            out.push(base + 2);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    };
    match value {
        Pack::Null => out.push(0xC0),
        Pack::Bool(b) => out.push(if *b { 0xC3 } else { 0xC2 }),
        Pack::Int(i) => {
            if (-16..=127).contains(i) {
                out.push(*i as i8 as u8);
            } else {
                out.push(0xCB);
                out.extend_from_slice(&i.to_be_bytes());
            }
        }
        Pack::Float(f) => {
            out.push(0xC1);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Pack::Bytes(b) => {
            sized(out, b.len(), 0, 0xCC);
            out.extend_from_slice(b);
        }
        Pack::Text(s) => {
            sized(out, s.len(), 0x80, 0xD0);
            out.extend_from_slice(s.as_bytes());
        }
        Pack::List(items) => {
            sized(out, items.len(), 0x90, 0xD4);
            for item in items {
                encode(item, out);
            }
        }
        Pack::Map(entries) => {
            sized(out, entries.len(), 0xA0, 0xD8);
            for (key, item) in entries {
                encode(&Pack::Text(key.clone()), out);
                encode(item, out);
            }
        }
        Pack::Struct(signature, fields) => {
            out.push(0xB0 | fields.len() as u8);
            out.push(*signature);
            for field in fields {
                encode(field, out);
            }
        }
    }
}

/// A SUCCESS held when routing: if it carries a routing table (`rt`), each
/// member's address is replaced by a relay's, started on first sight.
async fn rewrite_routing_answer(message: &[u8], state: &Arc<RelayState>) -> Result<Vec<u8>, Cut> {
    let mut rest = message;
    let mut value = decode(&mut rest, 0)?;
    if !rest.is_empty() {
        return Err(malformed("bytes after a SUCCESS message"));
    }
    let mut addresses = Vec::new();
    visit_addresses(&mut value, &mut |a| addresses.push(a.clone()));
    if addresses.is_empty() {
        return Ok(message.to_vec());
    }
    let mut local = HashMap::new();
    for address in addresses {
        if local.contains_key(&address) {
            continue;
        }
        let relayed = member_relay(&address, state).await?;
        local.insert(address, relayed);
    }
    visit_addresses(&mut value, &mut |a| {
        if let Some(l) = local.get(a.as_str()) {
            *a = l.clone();
        }
    });
    let mut out = Vec::with_capacity(message.len());
    encode(&value, &mut out);
    Ok(out)
}

/// Calls `f` on each address in a SUCCESS's `rt.servers[].addresses[]`.
fn visit_addresses(message: &mut Pack, f: &mut impl FnMut(&mut String)) {
    let Pack::Struct(SUCCESS, fields) = message else {
        return;
    };
    let Some(Pack::Map(metadata)) = fields.first_mut() else {
        return;
    };
    let Some((_, Pack::Map(rt))) = metadata.iter_mut().find(|(k, _)| k == "rt") else {
        return;
    };
    let Some((_, Pack::List(servers))) = rt.iter_mut().find(|(k, _)| k == "servers") else {
        return;
    };
    for server in servers {
        let Pack::Map(server) = server else { continue };
        for (key, list) in server.iter_mut() {
            if key != "addresses" {
                continue;
            }
            let Pack::List(list) = list else { continue };
            for address in list {
                if let Pack::Text(address) = address {
                    f(address);
                }
            }
        }
    }
}

/// The local address of the relay to one cluster member, started on first use.
async fn member_relay(address: &str, state: &Arc<RelayState>) -> Result<String, Cut> {
    if let Some(relay) = state
        .members
        .lock()
        .ok()
        .and_then(|m| m.get(address).map(|r| r.local_addr().to_string()))
    {
        return Ok(relay);
    }
    let (host, port) = split_address(address)
        .ok_or_else(|| Cut::Malformed(format!("a routing table address `{address}`")))?;
    // Member relays share this state: one cap, one record of cuts.
    let relay = Relay::listen(host, port, Arc::clone(state))
        .map_err(|e| Cut::Malformed(format!("no relay for {address}: {e}")))?;
    let local = relay.local_addr().to_string();
    tracing::debug!(member = %address, relay = %local, "relaying a cluster member");
    if let Ok(mut members) = state.members.lock() {
        members.entry(address.to_string()).or_insert(relay);
    }
    Ok(local)
}

/// `host:port`, with a bracketed IPv6 host.
fn split_address(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

async fn tls_connect(
    server: TcpStream,
    host: &str,
    tls: Tls,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let builder = rustls::ClientConfig::builder();
    let config = match tls {
        Tls::SelfSigned => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate::new()))
            .with_no_client_auth(),
        _ => builder
            .with_platform_verifier()
            .map_err(std::io::Error::other)?
            .with_no_client_auth(),
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| std::io::Error::other(format!("`{host}` is no server name: {e}")))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, server)
        .await
}

/// `+ssc`: any certificate is accepted (its signatures are still checked).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl AnyCertificate {
    fn new() -> AnyCertificate {
        AnyCertificate(Arc::new(rustls::crypto::ring::default_provider()))
    }
}

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One Bolt message: a struct of `fields` with `signature`, chunked in
    /// pieces of `chunk` bytes.
    fn message(signature: u8, fields: Vec<Pack>, chunk: usize) -> Vec<u8> {
        let mut content = Vec::new();
        encode(&Pack::Struct(signature, fields), &mut content);
        let mut out = Vec::new();
        for piece in content.chunks(chunk) {
            out.extend_from_slice(&(piece.len() as u16).to_be_bytes());
            out.extend_from_slice(piece);
        }
        out.extend_from_slice(&[0, 0]);
        out
    }

    fn record(values: Vec<Pack>, chunk: usize) -> Vec<u8> {
        message(RECORD, vec![Pack::List(values)], chunk)
    }

    fn success() -> Vec<u8> {
        message(
            SUCCESS,
            vec![Pack::Map(vec![("has_more".into(), Pack::Bool(true))])],
            64,
        )
    }

    /// Feeds `stream` a byte at a time (the worst split) and whole; both must
    /// agree, and what comes out must dechunk to the same messages.
    fn feed_all(stream: &[u8], cap: u64) -> Result<Vec<u8>, Cut> {
        let mut whole = Dechunker::new(false);
        let mut out_whole = Vec::new();
        let whole_result = whole.feed(stream, cap, &mut out_whole).map(|_| ());
        let mut bytewise = Dechunker::new(false);
        let mut out_bytes = Vec::new();
        let mut bytes_result = Ok(());
        for b in stream {
            if let Err(e) = bytewise.feed(std::slice::from_ref(b), cap, &mut out_bytes) {
                bytes_result = Err(e);
                break;
            }
        }
        assert_eq!(whole_result.is_ok(), bytes_result.is_ok());
        whole_result?;
        assert_eq!(messages(&out_whole), messages(&out_bytes));
        assert_eq!(messages(&out_whole), messages(stream));
        Ok(out_whole)
    }

    /// The messages of a chunked stream, joined.
    fn messages(mut stream: &[u8]) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        let mut current = Vec::new();
        while stream.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([stream[0], stream[1]]));
            stream = &stream[2..];
            if len == 0 {
                if !current.is_empty() {
                    all.push(std::mem::take(&mut current));
                }
                continue;
            }
            current.extend_from_slice(&stream[..len]);
            stream = &stream[len..];
        }
        all
    }

    #[test]
    fn passes_records_under_the_cap_unchanged_however_the_bytes_are_split() {
        let mut stream = Vec::new();
        for i in 0..5 {
            stream.extend(record(
                vec![Pack::Int(i), Pack::Text("x".repeat(300)), Pack::Float(1.5)],
                7,
            ));
        }
        stream.extend(success());
        feed_all(&stream, 1 << 20).expect("under the cap");
    }

    #[test]
    fn cuts_a_record_that_would_cost_more_than_the_cap_before_it_ends() {
        // 10,000 small integers: 10 KB on the wire, 3.2 MB to decode.
        let stream = record((0..10_000).map(|i| Pack::Int(i % 100)).collect(), 4096);
        let mut dechunker = Dechunker::new(false);
        let mut out = Vec::new();
        let cut = dechunker
            .feed(&stream, 1 << 20, &mut out)
            .expect_err("over the cap");
        assert!(matches!(cut, Cut::Weight { weight, cap } if weight > cap && cap == 1 << 20));
        // What was forwarded is less than the whole record.
        assert!(out.len() < stream.len());
    }

    #[test]
    fn weighs_a_declared_string_length_before_its_bytes_arrive() {
        // A header that declares 2 GB of text is refused on its five bytes.
        let mut stream = vec![0x00, 0x08, 0xB1, RECORD, 0x91, 0xD2];
        stream.extend_from_slice(&(2_000_000_000u32).to_be_bytes());
        let mut dechunker = Dechunker::new(false);
        let cut = dechunker
            .feed(&stream, UNBOUNDED_CAP, &mut Vec::new())
            .expect_err("over the cap");
        assert!(matches!(cut, Cut::Weight { .. }), "{cut:?}");
    }

    #[test]
    fn a_batch_is_bounded_as_a_whole_and_a_summary_ends_it() {
        let row = || record((0..1_000).map(Pack::Int).collect(), 512);
        let cap = 3 * 1_000 * VALUE_COST + 10_000;
        // Three rows fit; a fourth in the same batch does not.
        let mut stream = Vec::new();
        for _ in 0..4 {
            stream.extend(row());
        }
        assert!(feed_all(&stream, cap).is_err());
        // Three, a summary, three more: each batch fits.
        let mut stream = Vec::new();
        for _ in 0..3 {
            stream.extend(row());
        }
        stream.extend(success());
        for _ in 0..3 {
            stream.extend(row());
        }
        feed_all(&stream, cap).expect("two batches under the cap");
    }

    #[test]
    fn refuses_what_is_not_packstream() {
        for content in [
            vec![0xB1, RECORD, 0xE0],    // a reserved marker
            vec![0x91, 0x01],            // a message that is no struct
            vec![0xB1, RECORD, 0xD0, 5], // ends inside a string
        ] {
            let mut stream = (content.len() as u16).to_be_bytes().to_vec();
            stream.extend_from_slice(&content);
            stream.extend_from_slice(&[0, 0]);
            let cut = Dechunker::new(false)
                .feed(&stream, UNBOUNDED_CAP, &mut Vec::new())
                .expect_err("malformed");
            assert!(matches!(cut, Cut::Malformed(_)), "{content:?}: {cut:?}");
        }
    }

    #[test]
    fn holds_a_success_when_routing_and_passes_noops() {
        let mut stream = vec![0, 0];
        stream.extend(success());
        let mut dechunker = Dechunker::new(true);
        let mut out = Vec::new();
        let held = dechunker
            .feed(&stream, UNBOUNDED_CAP, &mut out)
            .expect("fine");
        assert_eq!(out, vec![0, 0], "only the NOOP passes at once");
        assert_eq!(held.len(), 1);
        assert_eq!(vec![held[0].clone()], messages(&success()));
    }

    #[test]
    fn rewrites_every_address_of_a_routing_table() {
        let server = |role: &str, addresses: &[&str]| {
            Pack::Map(vec![
                (
                    "addresses".into(),
                    Pack::List(addresses.iter().map(|a| Pack::Text((*a).into())).collect()),
                ),
                ("role".into(), Pack::Text(role.into())),
            ])
        };
        let mut table = Pack::Struct(
            SUCCESS,
            vec![Pack::Map(vec![(
                "rt".into(),
                Pack::Map(vec![
                    ("ttl".into(), Pack::Int(300)),
                    ("db".into(), Pack::Text("neo4j".into())),
                    (
                        "servers".into(),
                        Pack::List(vec![
                            server("WRITE", &["a:7687"]),
                            server("READ", &["b:7687", "[::1]:7688"]),
                            server("ROUTE", &["a:7687"]),
                        ]),
                    ),
                ]),
            )])],
        );
        let mut bytes = Vec::new();
        encode(&table, &mut bytes);
        let decoded = decode(&mut bytes.as_slice(), 0).expect("decodes");
        assert_eq!(decoded, table);
        let mut seen = Vec::new();
        visit_addresses(&mut table, &mut |a| {
            seen.push(a.clone());
            *a = format!("relay-for-{a}");
        });
        assert_eq!(seen, ["a:7687", "b:7687", "[::1]:7688", "a:7687"]);
        let mut again = Vec::new();
        visit_addresses(&mut table, &mut |a| again.push(a.clone()));
        assert!(again.iter().all(|a| a.starts_with("relay-for-")));
        assert_eq!(split_address("[::1]:7688"), Some(("::1".into(), 7688)));
        assert_eq!(
            split_address("db.example:7687"),
            Some(("db.example".into(), 7687))
        );
    }

    #[test]
    fn encodes_what_it_decodes_for_every_size_class() {
        let values = vec![
            Pack::Null,
            Pack::Bool(true),
            Pack::Int(-16),
            Pack::Int(-17),
            Pack::Int(i64::MIN),
            Pack::Float(-0.25),
            Pack::Text("x".repeat(15)),
            Pack::Text("y".repeat(300)),
            Pack::Text("z".repeat(70_000)),
            Pack::Bytes(vec![1, 2, 3]),
            Pack::List((0..20).map(Pack::Int).collect()),
            Pack::Map((0..17).map(|i| (format!("k{i}"), Pack::Int(i))).collect()),
        ];
        let value = Pack::Struct(0x4E, values);
        let mut bytes = Vec::new();
        encode(&value, &mut bytes);
        assert_eq!(decode(&mut bytes.as_slice(), 0).expect("decodes"), value);
    }
}
