//! The target of a `/proc/PID/fd/N` link, classified.

use crate::model::FdKind;

/// What one fd points at. Socket inodes are kept so sockets can be joined with the
/// sock_diag dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdTarget {
    Socket(u64),
    Other(FdKind),
}

impl FdTarget {
    pub fn kind(self) -> FdKind {
        match self {
            FdTarget::Socket(_) => FdKind::Socket,
            FdTarget::Other(kind) => kind,
        }
    }
}

/// Classifies a link target such as `socket:[12345]`, `pipe:[678]`,
/// `anon_inode:[eventpoll]`, `anon_inode:inotify` or `/var/log/app.log`.
pub fn classify(link: &[u8]) -> FdTarget {
    if let Some(inode) = link
        .strip_prefix(b"socket:[")
        .and_then(|rest| rest.strip_suffix(b"]"))
    {
        return match super::parse_u64(inode) {
            Some(inode) => FdTarget::Socket(inode),
            None => FdTarget::Other(FdKind::Other),
        };
    }
    if link.starts_with(b"pipe:[") {
        return FdTarget::Other(FdKind::Pipe);
    }
    if let Some(rest) = link.strip_prefix(b"anon_inode:") {
        // Both spellings exist: `anon_inode:[eventfd]` and `anon_inode:inotify`.
        let name = rest
            .strip_prefix(b"[")
            .and_then(|r| r.strip_suffix(b"]"))
            .unwrap_or(rest);
        let kind = match name {
            b"eventfd" => FdKind::Eventfd,
            b"eventpoll" => FdKind::Eventpoll,
            b"timerfd" => FdKind::Timerfd,
            b"signalfd" => FdKind::Signalfd,
            b"inotify" => FdKind::Inotify,
            _ => FdKind::AnonInode,
        };
        return FdTarget::Other(kind);
    }
    if link.starts_with(b"/dev/") {
        return FdTarget::Other(FdKind::Device);
    }
    if link.starts_with(b"/") {
        return FdTarget::Other(FdKind::File);
    }
    FdTarget::Other(FdKind::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(classify(b"socket:[123456]"), FdTarget::Socket(123456));
        assert_eq!(classify(b"pipe:[42]").kind(), FdKind::Pipe);
        assert_eq!(classify(b"anon_inode:[eventfd]").kind(), FdKind::Eventfd);
        assert_eq!(
            classify(b"anon_inode:[eventpoll]").kind(),
            FdKind::Eventpoll
        );
        assert_eq!(classify(b"anon_inode:[timerfd]").kind(), FdKind::Timerfd);
        assert_eq!(classify(b"anon_inode:[signalfd]").kind(), FdKind::Signalfd);
        assert_eq!(classify(b"anon_inode:inotify").kind(), FdKind::Inotify);
        assert_eq!(classify(b"anon_inode:[pidfd]").kind(), FdKind::AnonInode);
        assert_eq!(classify(b"anon_inode:[io_uring]").kind(), FdKind::AnonInode);
        assert_eq!(classify(b"/dev/null").kind(), FdKind::Device);
        assert_eq!(classify(b"/var/log/app.log (deleted)").kind(), FdKind::File);
        assert_eq!(classify(b"net:[4026531840]").kind(), FdKind::Other);
        assert_eq!(classify(b"socket:[oops]").kind(), FdKind::Other);
    }
}
