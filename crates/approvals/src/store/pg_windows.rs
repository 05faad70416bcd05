//! Break-glass windows in the PostgreSQL store (`portcullis_approval_windows`), shared by
//! replicas: a window requested through one replica is approved through any, and is in
//! force on all. Approving and ending lock the window's row, so two approvers on two
//! replicas count as two, and an approval racing an end finds it ended. A window whose
//! TTL ran out is ended by one `UPDATE … RETURNING`: exactly one replica gets it back to
//! record its end.
use sqlx::{Row, postgres::PgRow};

use super::postgres::{PgStore, corrupt, failed, to_i64, to_u64};
use crate::{
    break_glass::{Window, WindowState},
    error::ApprovalError,
    registry::Approver,
    unix_now,
};

/// The columns a window is read from, in [`window_from`]'s terms.
macro_rules! window_columns {
    () => {
        "id, reason, ttl_secs, workload, requested_by, requested_at, approvers, state, until_at, ended_at, ended_by"
    };
}

fn window_from(row: &PgRow) -> Result<Window, ApprovalError> {
    const READING: &str = "reading a break-glass window";
    let get = failed(READING);
    let state: String = row.try_get("state").map_err(&get)?;
    let until: Option<i64> = row.try_get("until_at").map_err(&get)?;
    let ended_at: Option<i64> = row.try_get("ended_at").map_err(&get)?;
    let state = match (state.as_str(), until, ended_at) {
        ("requested", _, _) => WindowState::Requested,
        ("active", Some(until), _) => WindowState::Active { until: to_u64(until) },
        ("ended", _, Some(at)) => WindowState::Ended {
            at: to_u64(at),
            by: row
                .try_get::<Option<String>, _>("ended_by")
                .map_err(&get)?
                .unwrap_or_default(),
        },
        (other, ..) => return Err(corrupt(READING, format!("inconsistent state `{other}`"))),
    };
    Ok(Window {
        id: row.try_get("id").map_err(&get)?,
        reason: row.try_get("reason").map_err(&get)?,
        ttl_secs: to_u64(row.try_get("ttl_secs").map_err(&get)?),
        workload: row.try_get("workload").map_err(&get)?,
        requested_by: row.try_get("requested_by").map_err(&get)?,
        requested_at: to_u64(row.try_get("requested_at").map_err(&get)?),
        approvers: row.try_get("approvers").map_err(&get)?,
        state,
    })
}

impl PgStore {
    pub(crate) async fn request_window(
        &self,
        requested_by: &str,
        reason: &str,
        ttl_secs: u64,
        workload: Option<String>,
    ) -> Result<Window, ApprovalError> {
        let window = Window::requested(requested_by, reason, ttl_secs, workload, self.max_ttl_secs)?;
        sqlx::query(
            "INSERT INTO portcullis_approval_windows (id, reason, ttl_secs, workload, requested_by, requested_at, state) \
             VALUES ($1, $2, $3, $4, $5, $6, 'requested')",
        )
        .bind(&window.id)
        .bind(&window.reason)
        .bind(to_i64(window.ttl_secs))
        .bind(&window.workload)
        .bind(&window.requested_by)
        .bind(to_i64(window.requested_at))
        .execute(&self.pool)
        .await
        .map_err(failed("requesting a break-glass window"))?;
        Ok(window)
    }

    /// Applies `change` to window `id` under its row lock and writes it back.
    async fn change_window(
        &self,
        id: &str,
        change: impl FnOnce(&mut Window) -> Result<(), ApprovalError>,
    ) -> Result<Window, ApprovalError> {
        let fail = failed("changing a break-glass window");
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        let row = sqlx::query(concat!(
            "SELECT ",
            window_columns!(),
            " FROM portcullis_approval_windows WHERE id = $1 FOR UPDATE"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(&fail)?;
        let mut window = window_from(&row.ok_or_else(|| ApprovalError::UnknownRequest(id.to_owned()))?)?;
        change(&mut window)?;
        let (until, ended_at, ended_by) = match &window.state {
            WindowState::Requested => (None, None, None),
            WindowState::Active { until } => (Some(to_i64(*until)), None, None),
            WindowState::Ended { at, by } => (None, Some(to_i64(*at)), Some(by.as_str())),
        };
        sqlx::query(
            "UPDATE portcullis_approval_windows SET approvers = $2, state = $3, until_at = COALESCE($4, until_at), \
             ended_at = $5, ended_by = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(&window.approvers)
        .bind(window.state.label())
        .bind(until)
        .bind(ended_at)
        .bind(ended_by)
        .execute(&mut *tx)
        .await
        .map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        Ok(window)
    }

    pub(crate) async fn approve_window(
        &self,
        id: &str,
        approver: &Approver,
        now: u64,
    ) -> Result<Window, ApprovalError> {
        self.change_window(id, |w| w.add_approver(approver, now)).await
    }

    pub(crate) async fn end_window(&self, id: &str, by: &str) -> Result<Window, ApprovalError> {
        self.change_window(id, |w| w.end(by, unix_now())).await
    }

    /// Ends the windows whose TTL ran out; each is returned to exactly one replica.
    pub(crate) async fn expire_windows(&self) -> Result<Vec<Window>, ApprovalError> {
        let rows = sqlx::query(concat!(
            "UPDATE portcullis_approval_windows SET state = 'ended', ended_at = until_at, ended_by = 'ttl' \
             WHERE state = 'active' AND until_at <= $1 RETURNING ",
            window_columns!()
        ))
        .bind(to_i64(unix_now()))
        .fetch_all(&self.pool)
        .await
        .map_err(failed("ending expired break-glass windows"))?;
        rows.iter().map(window_from).collect()
    }

    /// In one statement: the windows whose TTL ran out (ended now), and the active window
    /// a call from `workload` is under, if any.
    pub(crate) async fn expire_and_find_window(
        &self,
        workload: &str,
    ) -> Result<(Vec<Window>, Option<String>), ApprovalError> {
        let rows = sqlx::query(concat!(
            "WITH ended AS (UPDATE portcullis_approval_windows SET state = 'ended', ended_at = until_at, \
             ended_by = 'ttl' WHERE state = 'active' AND until_at <= $1 RETURNING ",
            window_columns!(),
            ") SELECT FALSE AS in_force, ",
            window_columns!(),
            " FROM ended UNION ALL (SELECT TRUE AS in_force, ",
            window_columns!(),
            " FROM portcullis_approval_windows WHERE state = 'active' AND until_at > $1 \
             AND (workload IS NULL OR workload = $2) ORDER BY requested_at, id LIMIT 1)"
        ))
        .bind(to_i64(unix_now()))
        .bind(workload)
        .fetch_all(&self.pool)
        .await
        .map_err(failed("finding the break-glass window in force"))?;
        let mut ended = Vec::new();
        let mut active = None;
        for row in &rows {
            let in_force: bool = row
                .try_get("in_force")
                .map_err(failed("finding the break-glass window in force"))?;
            let window = window_from(row)?;
            if in_force {
                active = Some(window.id);
            } else {
                ended.push(window);
            }
        }
        Ok((ended, active))
    }

    pub(crate) async fn windows(&self) -> Result<Vec<Window>, ApprovalError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            window_columns!(),
            " FROM portcullis_approval_windows ORDER BY requested_at DESC, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(failed("listing break-glass windows"))?;
        rows.iter().map(window_from).collect()
    }
}
