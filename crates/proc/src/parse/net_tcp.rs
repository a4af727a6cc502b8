//! `/proc/net/tcp` and `/proc/net/tcp6`: the fallback when netlink sock_diag is unavailable
//! (and the only view into another network namespace, via `/proc/PID/net/tcp`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One socket row: what the sock_diag dump would have told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRow {
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    pub state: u8,
    pub tx_queue: u32,
    pub rx_queue: u32,
    pub inode: u64,
}

/// Parses every well-formed row, skipping the header and any malformed line (the file is
/// generated while sockets come and go; a short read must not fail the whole table).
pub fn parse(bytes: &[u8], mut each: impl FnMut(TcpRow)) {
    for line in bytes.split(|&b| b == b'\n').skip(1) {
        if let Some(row) = parse_row(line) {
            each(row);
        }
    }
}

fn parse_row(line: &[u8]) -> Option<TcpRow> {
    let mut fields = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let _slot = fields.next()?;
    let local = endpoint(fields.next()?)?;
    let remote = endpoint(fields.next()?)?;
    let state = u8::from_str_radix(std::str::from_utf8(fields.next()?).ok()?, 16).ok()?;
    let queues = fields.next()?;
    let colon = queues.iter().position(|&b| b == b':')?;
    let tx_queue = hex_u32(&queues[..colon])?;
    let rx_queue = hex_u32(&queues[colon + 1..])?;
    let _timer = fields.next()?;
    let _retransmits = fields.next()?;
    let _uid = fields.next()?;
    let _timeout = fields.next()?;
    let inode = super::parse_u64(fields.next()?)?;
    Some(TcpRow {
        local,
        remote,
        state,
        tx_queue,
        rx_queue,
        inode,
    })
}

fn hex_u32(bytes: &[u8]) -> Option<u32> {
    u32::from_str_radix(std::str::from_utf8(bytes).ok()?, 16).ok()
}

/// `0100007F:1F90` is 127.0.0.1:8080: each 32-bit word of the address is printed in host
/// byte order (little-endian on the machines we run on).
fn endpoint(field: &[u8]) -> Option<(IpAddr, u16)> {
    let colon = field.iter().position(|&b| b == b':')?;
    let (address, port) = (&field[..colon], &field[colon + 1..]);
    let port = u16::from_str_radix(std::str::from_utf8(port).ok()?, 16).ok()?;
    // The kernel prints the in-memory (network-order) word as a native integer, so the
    // native-endian bytes of the parsed value are the address bytes.
    let word = |chunk: &[u8]| hex_u32(chunk).map(u32::to_ne_bytes);
    let address = match address.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(address)?)),
        32 => {
            let mut octets = [0u8; 16];
            for (i, chunk) in address.chunks(8).enumerate() {
                octets[i * 4..i * 4 + 4].copy_from_slice(&word(chunk)?);
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some((address, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_v4() {
        let mut rows = Vec::new();
        parse(include_bytes!("../../tests/fixtures/net-tcp.txt"), |row| {
            rows.push(row)
        });
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].local, ("127.0.0.1".parse().unwrap(), 8443));
        assert_eq!(rows[0].state, 10);
        assert_eq!(rows[1].remote, ("127.0.0.1".parse().unwrap(), 8443));
        assert_eq!(rows[1].state, 8);
        assert_eq!(rows[1].rx_queue, 0x2a);
        assert_eq!(rows[1].inode, 4242);
    }

    #[test]
    fn fixture_v6() {
        let mut rows = Vec::new();
        parse(include_bytes!("../../tests/fixtures/net-tcp6.txt"), |row| {
            rows.push(row)
        });
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].local.0, "::".parse::<IpAddr>().unwrap());
        assert_eq!(rows[1].remote, ("::1".parse().unwrap(), 5432));
        assert_eq!(
            rows[1].local.0,
            "::ffff:127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn garbage_is_skipped() {
        let mut n = 0;
        parse(b"header\nnot a row\n  0: zz:zz\n", |_| n += 1);
        assert_eq!(n, 0);
    }
}

/// Inodes of `/proc/net/unix` rows (`Num RefCount Protocol Flags Type St Inode Path`).
pub fn parse_unix_inodes(bytes: &[u8], mut each: impl FnMut(u64)) {
    for line in bytes.split(|&b| b == b'\n').skip(1) {
        let inode = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty())
            .nth(6)
            .and_then(super::parse_u64);
        if let Some(inode) = inode {
            each(inode);
        }
    }
}

#[cfg(test)]
mod unix_tests {
    #[test]
    fn unix_inodes() {
        let mut inodes = Vec::new();
        super::parse_unix_inodes(
            b"Num       RefCount Protocol Flags    Type St Inode Path\n\
              0000000000000000: 00000002 00000000 00010000 0001 01 12345 /run/systemd/notify\n\
              0000000000000000: 00000003 00000000 00000000 0001 03 12346\n",
            |inode| inodes.push(inode),
        );
        assert_eq!(inodes, vec![12345, 12346]);
    }
}
