//! Times the socket-table read alone, netlink against /proc/net.
use leakwatch_proc::sockets::{SocketReader, SocketTable};
fn main() {
    let mut reader = SocketReader::new();
    let mut table = SocketTable::default();
    let start = std::time::Instant::now();
    for _ in 0..50 {
        reader.read(&mut table).unwrap();
    }
    println!(
        "netlink {:.2} ms/read, {} sockets",
        start.elapsed().as_secs_f64() * 1000.0 / 50.0,
        table.by_inode.len()
    );
    let mut reader = SocketReader::proc_net_only();
    let start = std::time::Instant::now();
    for _ in 0..10 {
        reader.read(&mut table).unwrap();
    }
    println!(
        "proc_net {:.2} ms/read, {} sockets",
        start.elapsed().as_secs_f64() * 1000.0 / 10.0,
        table.by_inode.len()
    );
}
