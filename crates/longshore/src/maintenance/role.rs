//! A cluster-wide role (maintenance, scheduler): a lease in the database
//! that every node tries to take or renew at each of its passes, so that
//! one node at a time does the role's work and another takes over within
//! a lease when it dies.

use longshore_core::Store;

use crate::metrics::{Metrics, RoleGauge};

/// One node's hold on a role, as it last learned it.
pub(super) struct Role {
    name: &'static str,
    /// What the holder does, for the log: "runs the cluster's maintenance".
    duty: &'static str,
    holder: String,
    leading: bool,
    /// `longshore_leader{role=…}`: follows `leading`.
    gauge: RoleGauge,
}

impl Role {
    pub(super) fn new(
        name: &'static str,
        duty: &'static str,
        holder: &str,
        metrics: Option<&Metrics>,
    ) -> Role {
        Role {
            name,
            duty,
            holder: holder.to_owned(),
            leading: false,
            gauge: RoleGauge::new(metrics, name),
        }
    }

    /// Takes or renews the role for `lease`; true while this node holds
    /// it. A failure counts as not holding it.
    pub(super) async fn renew(&mut self, store: &dyn Store, lease: std::time::Duration) -> bool {
        let now_leading = match store.try_lead(self.name, &self.holder, lease).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take or renew the {} role", self.name);
                false
            }
        };
        if now_leading != self.leading {
            if now_leading {
                tracing::info!(worker = %self.holder, "this worker now {}", self.duty);
            } else {
                tracing::info!(worker = %self.holder, "another worker {} now", self.duty);
            }
            self.leading = now_leading;
            self.gauge.set(now_leading);
        }
        self.leading
    }

    /// Gives the role up, so that another node takes it at its next pass
    /// rather than after a lease. Whether or not this node believes it
    /// holds it (a renewal may have committed after its reply was lost):
    /// the store only acts if it does.
    pub(super) async fn resign(&mut self, store: &dyn Store) {
        self.leading = false;
        self.gauge.set(false);
        if let Err(e) = store.resign(self.name, &self.holder).await {
            tracing::warn!(error = %e, "cannot resign the {} role; it passes on when its lease expires", self.name);
        }
    }
}
