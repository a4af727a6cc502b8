//! The durable outbox: one SQLite file (WAL, `synchronous=FULL`) holding every notification
//! from before its first send attempt until it is delivered, rejected or expired, plus
//! per-channel counters and health, and the engine's saved state.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::lifecycle::{EngineState, Notification};

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("alert outbox: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("alert outbox: stored notification is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

type Result<T> = std::result::Result<T, OutboxError>;

/// Where one notification stands: the API's type (the wire and the outbox agree).
pub use leakwatch_api::DeliveryStatus;

/// The `status` column as stored (`pending` for anything unknown).
fn parse_status(s: &str) -> DeliveryStatus {
    match s {
        "delivered" => DeliveryStatus::Delivered,
        "failed" => DeliveryStatus::Failed,
        "expired" => DeliveryStatus::Expired,
        _ => DeliveryStatus::Pending,
    }
}

/// One row of the outbox, for display (the agent's `/api/v1/alerts` serves it as
/// leakwatch-api's `Delivery`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    pub id: String,
    pub fingerprint: String,
    pub channel: String,
    pub reason: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub created_ms: u64,
    pub next_attempt_ms: u64,
    pub expires_ms: u64,
    pub delivered_ms: Option<u64>,
    /// The last error, or on success the receiver's reply (e.g. `HTTP 200`).
    pub detail: Option<String>,
}

/// A notification due for an attempt.
#[derive(Debug, Clone)]
pub struct Queued {
    pub row: i64,
    pub attempts: u32,
    pub expires_ms: u64,
    pub notification: Notification,
}

/// Per-channel totals since the outbox file was created, and current health (served as
/// leakwatch-api's `ChannelCounters`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelCounters {
    pub channel: String,
    /// Notifications delivered.
    pub sent: u64,
    /// Notifications rejected for good.
    pub failed: u64,
    /// Attempts that failed and were scheduled again.
    pub retried: u64,
    pub expired: u64,
    pub consecutive_failures: u64,
    pub failing_since_ms: Option<u64>,
    /// A "channel failing" alert is out for this channel.
    pub failing_alerted: bool,
}

/// See the module documentation. One `Outbox` per process and file; readers may open more.
pub struct Outbox {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    reason TEXT NOT NULL,
    notification TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    delivered_ms INTEGER,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(status, next_attempt_ms);
CREATE INDEX IF NOT EXISTS outbox_alert ON outbox(fingerprint, channel);
CREATE TABLE IF NOT EXISTS channel_stats (
    channel TEXT PRIMARY KEY,
    sent INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,
    expired INTEGER NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failing_since_ms INTEGER,
    failing_alerted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS engine_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL
);
";

fn row_to_delivery(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.get(0)?,
        fingerprint: r.get(1)?,
        channel: r.get(2)?,
        reason: r.get(3)?,
        status: parse_status(&r.get::<_, String>(4)?),
        attempts: r.get(5)?,
        created_ms: r.get::<_, i64>(6)? as u64,
        next_attempt_ms: r.get::<_, i64>(7)? as u64,
        expires_ms: r.get::<_, i64>(8)? as u64,
        delivered_ms: r.get::<_, Option<i64>>(9)?.map(|v| v as u64),
        detail: r.get(10)?,
    })
}

const DELIVERY_COLUMNS: &str = "id, fingerprint, channel, reason, status, attempts, created_ms, \
     next_attempt_ms, expires_ms, delivered_ms, detail";

/// `PRAGMA auto_vacuum` value of incremental mode.
const AUTO_VACUUM_INCREMENTAL: i64 = 2;

/// Bytes of WAL kept after a checkpoint.
const WAL_SIZE_LIMIT: i64 = 1 << 20;

/// Free pages beyond which [`Outbox::compact`] gives them back (256 KiB of 4 KiB pages).
const COMPACT_FREE_PAGES: i64 = 64;

impl Outbox {
    /// Opens (creating if needed) the outbox file, e.g. `<data dir>/alerts.db`.
    pub fn open(path: &Path) -> Result<Outbox> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Freed pages go back to the file system ([`Outbox::compact`]), so the file shrinks
        // when big silences expire. Set before the first table; an outbox made before this
        // was kept is converted once, by a VACUUM.
        let auto_vacuum: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
        if auto_vacuum != AUTO_VACUUM_INCREMENTAL {
            conn.pragma_update(None, "auto_vacuum", AUTO_VACUUM_INCREMENTAL)?;
            let tables: i64 =
                conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
            if tables > 0 {
                conn.execute_batch("VACUUM")?;
            }
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // The WAL is cut back to this after a checkpoint instead of keeping its largest size.
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        // A notification must be on disk before we try to send it, even across power loss.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Outbox { conn })
    }

    /// Writes notifications (one transaction) to be sent no earlier than `now_ms` and no
    /// later than `now_ms + expire_after_ms`. An id already stored is left alone. Returns
    /// how many were new.
    pub fn enqueue(
        &mut self,
        notifications: &[Notification],
        now_ms: u64,
        expire_after_ms: u64,
    ) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut added = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO outbox (id, channel, fingerprint, reason, notification, \
                 status, created_ms, next_attempt_ms, expires_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6, ?7)",
            )?;
            for n in notifications {
                added += insert.execute(params![
                    n.id,
                    n.channel,
                    n.alert.fingerprint,
                    n.reason.as_str(),
                    serde_json::to_string(n)?,
                    now_ms as i64,
                    (now_ms + expire_after_ms) as i64,
                ])?;
            }
        }
        tx.commit()?;
        Ok(added)
    }

    /// Pending notifications whose next attempt is due, oldest first.
    pub fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<Queued>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT row, attempts, expires_ms, notification FROM outbox \
             WHERE status = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, row LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms as i64, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (row, attempts, expires_ms, json) = row?;
            out.push(Queued {
                row,
                attempts,
                expires_ms: expires_ms as u64,
                notification: serde_json::from_str(&json)?,
            });
        }
        Ok(out)
    }

    /// When the next pending notification is due, if any.
    pub fn next_due_ms(&self) -> Result<Option<u64>> {
        let next: Option<i64> = self.conn.query_row(
            "SELECT MIN(next_attempt_ms) FROM outbox WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )?;
        Ok(next.map(|v| v as u64))
    }

    fn bump(&self, channel: &str, column: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO channel_stats (channel) VALUES (?1) ON CONFLICT(channel) DO NOTHING",
            params![channel],
        )?;
        self.conn.execute(
            &format!("UPDATE channel_stats SET {column} = {column} + 1 WHERE channel = ?1"),
            params![channel],
        )?;
        Ok(())
    }

    /// The receiver acknowledged it. Resets the channel's consecutive failures; returns
    /// whether a "channel failing" alert was out (so the caller can announce recovery).
    pub fn record_delivered(&mut self, q: &Queued, now_ms: u64, detail: &str) -> Result<bool> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_ms = ?2, \
             detail = ?3 WHERE row = ?1",
            params![q.row, now_ms as i64, detail],
        )?;
        let was_alerted: bool = tx
            .query_row(
                "SELECT failing_alerted FROM channel_stats WHERE channel = ?1",
                params![q.notification.channel],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false);
        tx.execute(
            "INSERT INTO channel_stats (channel) VALUES (?1) ON CONFLICT(channel) DO NOTHING",
            params![q.notification.channel],
        )?;
        tx.execute(
            "UPDATE channel_stats SET sent = sent + 1, consecutive_failures = 0, \
             failing_since_ms = NULL, failing_alerted = 0 WHERE channel = ?1",
            params![q.notification.channel],
        )?;
        tx.commit()?;
        Ok(was_alerted)
    }

    /// A failed attempt. With `retry_at`, the notification stays pending until then;
    /// without, it is failed for good. Returns the channel's health afterwards.
    pub fn record_failure(
        &mut self,
        q: &Queued,
        now_ms: u64,
        error: &str,
        retry_at: Option<u64>,
    ) -> Result<ChannelCounters> {
        let channel = q.notification.channel.clone();
        match retry_at {
            Some(at) => {
                self.conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?2, detail = ?3 \
                     WHERE row = ?1",
                    params![q.row, at as i64, error],
                )?;
                self.bump(&channel, "retried")?;
            }
            None => {
                self.conn.execute(
                    "UPDATE outbox SET status = 'failed', attempts = attempts + 1, detail = ?2 \
                     WHERE row = ?1",
                    params![q.row, error],
                )?;
                self.bump(&channel, "failed")?;
            }
        }
        self.conn.execute(
            "UPDATE channel_stats SET consecutive_failures = consecutive_failures + 1, \
             failing_since_ms = COALESCE(failing_since_ms, ?2) WHERE channel = ?1",
            params![channel, now_ms as i64],
        )?;
        Ok(self.counters_for(&channel)?.unwrap_or_default())
    }

    /// Marks a channel as having a "channel failing" alert out.
    pub fn set_failing_alerted(&self, channel: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE channel_stats SET failing_alerted = 1 WHERE channel = ?1",
            params![channel],
        )?;
        Ok(())
    }

    /// Marks pending notifications past their expiry as expired and returns them.
    pub fn expire(&mut self, now_ms: u64) -> Result<Vec<DeliveryRow>> {
        let tx = self.conn.transaction()?;
        let expired = {
            let mut stmt = tx.prepare(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM outbox WHERE status = 'pending' AND expires_ms <= ?1"
            ))?;
            let rows = stmt
                .query_map(params![now_ms as i64], row_to_delivery)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows
        };
        for row in &expired {
            tx.execute(
                "UPDATE outbox SET status = 'expired' WHERE id = ?1",
                params![row.id],
            )?;
            tx.execute(
                "INSERT INTO channel_stats (channel) VALUES (?1) ON CONFLICT(channel) DO NOTHING",
                params![row.channel],
            )?;
            tx.execute(
                "UPDATE channel_stats SET expired = expired + 1 WHERE channel = ?1",
                params![row.channel],
            )?;
        }
        tx.commit()?;
        Ok(expired)
    }

    /// Every stored notification, newest first, optionally of one alert.
    pub fn deliveries(&self, fingerprint: Option<&str>) -> Result<Vec<DeliveryRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM outbox WHERE (?1 IS NULL OR fingerprint = ?1) \
             ORDER BY created_ms DESC, row DESC"
        ))?;
        let rows = stmt
            .query_map(params![fingerprint], row_to_delivery)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The latest notification per (alert, channel): the delivery state of each alert on
    /// each channel.
    pub fn delivery_state(&self) -> Result<Vec<DeliveryRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM outbox o WHERE row = \
             (SELECT MAX(row) FROM outbox i WHERE i.fingerprint = o.fingerprint AND i.channel = o.channel) \
             ORDER BY fingerprint, channel"
        ))?;
        let rows = stmt
            .query_map([], row_to_delivery)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn counters_for(&self, channel: &str) -> Result<Option<ChannelCounters>> {
        Ok(self
            .conn
            .query_row(
                "SELECT channel, sent, failed, retried, expired, consecutive_failures, \
                 failing_since_ms, failing_alerted FROM channel_stats WHERE channel = ?1",
                params![channel],
                row_to_counters,
            )
            .optional()?)
    }

    /// Per-channel counters, by channel name.
    pub fn counters(&self) -> Result<Vec<ChannelCounters>> {
        let mut stmt = self.conn.prepare(
            "SELECT channel, sent, failed, retried, expired, consecutive_failures, \
             failing_since_ms, failing_alerted FROM channel_stats ORDER BY channel",
        )?;
        let rows = stmt
            .query_map([], row_to_counters)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Deletes finished (delivered, failed, expired) rows created before `before_ms`.
    pub fn prune(&self, before_ms: u64) -> Result<usize> {
        Ok(self.conn.execute(
            "DELETE FROM outbox WHERE status != 'pending' AND created_ms < ?1",
            params![before_ms as i64],
        )?)
    }

    /// Saves the engine's state (not rewritten when unchanged), then gives freed space
    /// back ([`Outbox::compact`]).
    pub fn save_engine_state(&self, state: &EngineState) -> Result<()> {
        self.conn.execute(
            "INSERT INTO engine_state (id, state) VALUES (1, ?1) \
             ON CONFLICT(id) DO UPDATE SET state = excluded.state \
             WHERE state IS NOT excluded.state",
            params![serde_json::to_string(state)?],
        )?;
        self.compact()?;
        Ok(())
    }

    /// When more than 64 pages (256 KiB) of the file are free (a large state replaced by a
    /// small one, e.g. big silences expired; old deliveries pruned), returns them to the
    /// file system (`PRAGMA incremental_vacuum`) and checkpoints the WAL, truncating it:
    /// the files shrink. Returns the pages freed.
    pub fn compact(&self) -> Result<i64> {
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        if free <= COMPACT_FREE_PAGES {
            return Ok(0);
        }
        // Each step of this pragma frees one page: step it to the end.
        let mut vacuum = self.conn.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = vacuum.query([])?;
        while rows.next()?.is_some() {}
        drop(rows);
        drop(vacuum);
        // Busy readers may hold the WAL: then it is truncated at a later call.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(free)
    }

    pub fn load_engine_state(&self) -> Result<Option<EngineState>> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT state FROM engine_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(match json {
            Some(json) => Some(serde_json::from_str(&json)?),
            None => None,
        })
    }
}

fn row_to_counters(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChannelCounters> {
    Ok(ChannelCounters {
        channel: r.get(0)?,
        sent: r.get::<_, i64>(1)? as u64,
        failed: r.get::<_, i64>(2)? as u64,
        retried: r.get::<_, i64>(3)? as u64,
        expired: r.get::<_, i64>(4)? as u64,
        consecutive_failures: r.get::<_, i64>(5)? as u64,
        failing_since_ms: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
        failing_alerted: r.get(7)?,
    })
}
