//! Reads the agent a server announces in its Bolt HELLO reply (`Neo4j/5.26.0`,
//! `Neo4j/5.26.0 compatible (ArcadeDB 26.10.2)`), which is the only place that
//! tells ArcadeDB from Neo4j: the driver does not expose it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Connects, negotiates a Bolt version, says HELLO and returns the `server` field
/// of the reply. Returns `None` for TLS URIs or on any failure: detection is a
/// convenience, and `database.dialect` in `graphmig.toml` overrides it.
pub async fn server_agent(
    uri: &str,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Option<String> {
    let address = uri
        .strip_prefix("bolt://")
        .or_else(|| uri.strip_prefix("neo4j://"))?;
    let address = address.split(['/', '?']).next()?;
    let address = if address.contains(':') {
        address.to_string()
    } else {
        format!("{address}:7687")
    };
    tokio::time::timeout(timeout, probe(&address, user, password))
        .await
        .ok()
        .flatten()
}

async fn probe(address: &str, user: &str, password: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    // Magic, then four proposals: 5.4 down to 5.1, 5.0, 4.4, none.
    let handshake = [
        0x60, 0x60, 0xB0, 0x17, 0, 3, 4, 5, 0, 0, 0, 5, 0, 0, 4, 4, 0, 0, 0, 0,
    ];
    stream.write_all(&handshake).await.ok()?;
    let mut version = [0u8; 4];
    stream.read_exact(&mut version).await.ok()?;
    let (major, minor) = (version[3], version[2]);
    if major == 0 {
        return None;
    }
    let agent = format!("graphmig/{}", env!("CARGO_PKG_VERSION"));
    let mut entries: Vec<(&str, Field)> = vec![("user_agent", Field::Str(agent.clone()))];
    if major == 5 && minor >= 3 {
        entries.push((
            "bolt_agent",
            Field::Map(vec![("product", Field::Str(agent))]),
        ));
    }
    // From 5.1 the server answers HELLO before authentication; older versions
    // need the credentials in HELLO itself.
    if major < 5 || (major == 5 && minor == 0) {
        entries.push(("scheme", Field::Str("basic".into())));
        entries.push(("principal", Field::Str(user.into())));
        entries.push(("credentials", Field::Str(password.into())));
    }
    let mut message = vec![0xB1, 0x01];
    encode_map(&entries, &mut message);
    let mut framed = Vec::new();
    for chunk in message.chunks(u16::MAX as usize) {
        framed.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        framed.extend_from_slice(chunk);
    }
    framed.extend_from_slice(&[0, 0]);
    stream.write_all(&framed).await.ok()?;

    let mut reply = Vec::new();
    loop {
        let mut size = [0u8; 2];
        stream.read_exact(&mut size).await.ok()?;
        let size = u16::from_be_bytes(size) as usize;
        if size == 0 {
            break;
        }
        let mut chunk = vec![0u8; size];
        stream.read_exact(&mut chunk).await.ok()?;
        reply.extend_from_slice(&chunk);
        if reply.len() > 64 * 1024 {
            return None;
        }
    }
    // GOODBYE, best effort.
    let _ = stream.write_all(&[0, 2, 0xB0, 0x02, 0, 0]).await;
    if reply.get(..2) != Some(&[0xB1, 0x70]) {
        return None;
    }
    string_after_key(&reply, "server")
}

enum Field {
    Str(String),
    Map(Vec<(&'static str, Field)>),
}

fn encode_string(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    match bytes.len() {
        n if n < 16 => out.push(0x80 | n as u8),
        n if n < 256 => out.extend_from_slice(&[0xD0, n as u8]),
        n => {
            out.push(0xD1);
            out.extend_from_slice(&(n.min(u16::MAX as usize) as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&bytes[..bytes.len().min(u16::MAX as usize)]);
}

fn encode_map(entries: &[(&str, Field)], out: &mut Vec<u8>) {
    out.push(0xA0 | entries.len() as u8);
    for (key, value) in entries {
        encode_string(key, out);
        match value {
            Field::Str(s) => encode_string(s, out),
            Field::Map(m) => encode_map(m, out),
        }
    }
}

/// Finds the string value that follows the string key `key` in a PackStream map.
fn string_after_key(bytes: &[u8], key: &str) -> Option<String> {
    let mut needle = Vec::new();
    encode_string(key, &mut needle);
    let at = bytes.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let (len, start) = match *bytes.get(at)? {
        m @ 0x80..=0x8F => ((m & 0x0F) as usize, at + 1),
        0xD0 => (*bytes.get(at + 1)? as usize, at + 2),
        0xD1 => (
            u16::from_be_bytes([*bytes.get(at + 1)?, *bytes.get(at + 2)?]) as usize,
            at + 3,
        ),
        _ => return None,
    };
    String::from_utf8(bytes.get(start..start + len)?.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_server_field_of_a_success_message() {
        let mut reply = vec![0xB1, 0x70, 0xA2];
        encode_string("server", &mut reply);
        encode_string("Neo4j/5.26.0 compatible (ArcadeDB 26.10.2)", &mut reply);
        encode_string("connection_id", &mut reply);
        encode_string("bolt-1", &mut reply);
        assert_eq!(
            string_after_key(&reply, "server").as_deref(),
            Some("Neo4j/5.26.0 compatible (ArcadeDB 26.10.2)")
        );
        assert_eq!(string_after_key(&reply, "missing"), None);
    }
}
