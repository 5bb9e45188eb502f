//! The schedule of `twslake run`: which job runs when, on the NYSE calendar. A pure function of
//! the dates and the settings ([`schedule`]), so `--dry-run` prints exactly what the runner does.
//!
//! Per trading day (New York time; holidays and weekends have none):
//! - `contracts`: the weekly refresh of contract descriptions, on the first session of the week
//!   (Monday, or Tuesday after a Monday holiday), [`ScheduleSettings::contracts_before_open`]
//!   before the open. Descriptions older than the policy's `contracts_max_age` on any other day
//!   are refreshed by that day's `update` (its contract step refreshes what is stale).
//! - `chain`: an option-chain snapshot at the open and every
//!   [`ScheduleSettings::chain_every`] (the policy's `chain_max_age`, 4 h) while the session is
//!   open: 09:30 and 13:30, only 09:30 on an early close (13:00).
//! - `capture`: live capture from the open to the close (13:00 on an early close).
//! - `update`: the end-of-day update, [`ScheduleSettings::update_after_close`] after the close.
//!
//! Each slot has a stable id, the job and its New York date and time (`chain@2026-11-24T13:30`):
//! the journal keys "exactly once" on it.

use crate::calendar::{self, EXCHANGE_TZ};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

/// A job of the schedule, in the order jobs of one instant run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Job {
    /// Weekly refresh of the contract descriptions.
    Contracts,
    /// An option-chain snapshot.
    Chain,
    /// Live capture from the open to the close.
    Capture,
    /// The end-of-day update (bars of the finished session, and whatever is due).
    Update,
}

impl Job {
    /// Every job.
    pub const ALL: [Job; 4] = [Job::Contracts, Job::Chain, Job::Capture, Job::Update];

    /// Its name in slot ids, the journal and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Job::Contracts => "contracts",
            Job::Chain => "chain",
            Job::Capture => "capture",
            Job::Update => "update",
        }
    }

    /// The job of a name.
    pub fn of_name(s: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.name() == s)
    }
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One run of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    /// When it starts.
    pub at: DateTime<Utc>,
    /// The job.
    pub job: Job,
    /// When it ends (capture: the close); `None` for a job that runs until done.
    pub until: Option<DateTime<Utc>>,
}

impl Slot {
    /// The stable id: job and New York date-time, `chain@2026-11-24T13:30`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.job, self.at.with_timezone(&EXCHANGE_TZ).format("%Y-%m-%dT%H:%M"))
    }

    /// The instant after which the slot cannot start any more: the close for a capture, its
    /// start for the others.
    pub fn end(&self) -> DateTime<Utc> {
        self.until.unwrap_or(self.at)
    }

    /// One line of `--dry-run`: `2026-11-24 Tue 09:30-16:00 NY  capture  capture@2026-11-24T09:30`.
    pub fn line(&self) -> String {
        let at = self.at.with_timezone(&EXCHANGE_TZ);
        let span = match self.until {
            Some(u) => format!("{}-{}", at.format("%H:%M"), u.with_timezone(&EXCHANGE_TZ).format("%H:%M")),
            None => format!("{}      ", at.format("%H:%M")),
        };
        format!("{} {span} NY  {:<9} {}", at.format("%Y-%m-%d %a"), self.job.name(), self.id())
    }
}

/// When the jobs run, relative to the session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduleSettings {
    /// How long before the open the weekly contract refresh runs (default 30 minutes).
    pub contracts_before_open: Duration,
    /// Chain snapshots at the open and this often during the session (default the policy's
    /// `chain_max_age`, 4 hours).
    pub chain_every: Duration,
    /// How long after the close the end-of-day update runs (default 15 minutes: the session's
    /// bars are final at the close).
    pub update_after_close: Duration,
    /// Live capture during the session (default on).
    pub capture: bool,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        ScheduleSettings {
            contracts_before_open: Duration::minutes(30),
            chain_every: crate::jobs::config::UpdatePolicy::default().chain_max_age,
            update_after_close: Duration::minutes(15),
            capture: true,
        }
    }
}

/// True when `d` is the first trading day of its ISO week.
fn first_session_of_week(d: NaiveDate) -> bool {
    calendar::prev_trading_day(d).iso_week() != d.iso_week()
}

/// The slots of the trading days in `[from, to]`, sorted by start, then job.
pub fn schedule(from: NaiveDate, to: NaiveDate, s: &ScheduleSettings) -> Vec<Slot> {
    let mut out = Vec::new();
    // A chain step of less than a minute would flood the gateway: at least a minute apart.
    let chain_every = s.chain_every.max(Duration::minutes(1));
    for d in calendar::trading_days(from, to) {
        let Some(session) = calendar::session(d) else { continue };
        if first_session_of_week(d) {
            out.push(Slot { at: session.open - s.contracts_before_open, job: Job::Contracts, until: None });
        }
        let mut at = session.open;
        while at < session.close {
            out.push(Slot { at, job: Job::Chain, until: None });
            at += chain_every;
        }
        if s.capture {
            out.push(Slot { at: session.open, job: Job::Capture, until: Some(session.close) });
        }
        out.push(Slot { at: session.close + s.update_after_close, job: Job::Update, until: None });
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn thanksgiving_week() {
        // Mon 23 – Wed 25 full sessions, Thu 26 Thanksgiving, Fri 27 closes at 13:00, then the
        // weekend; Mon 30 opens the next week with its contract refresh.
        let slots = schedule(d("2026-11-22"), d("2026-11-30"), &ScheduleSettings::default());
        let ids: Vec<String> = slots.iter().map(Slot::id).collect();
        let mut want = vec!["contracts@2026-11-23T09:00".to_string()];
        for day in ["2026-11-23", "2026-11-24", "2026-11-25"] {
            for s in ["capture@D09:30", "chain@D09:30", "chain@D13:30", "update@D16:15"] {
                want.push(s.replace('D', &format!("{day}T")));
            }
        }
        want.extend(
            ["capture@2026-11-27T09:30", "chain@2026-11-27T09:30", "update@2026-11-27T13:15"].map(String::from),
        );
        want.extend(
            ["contracts@2026-11-30T09:00", "capture@2026-11-30T09:30", "chain@2026-11-30T09:30"].map(String::from),
        );
        want.extend(["chain@2026-11-30T13:30", "update@2026-11-30T16:15"].map(String::from));
        // Sorted by instant then job: at 09:30 the chain snapshot comes before the capture.
        let mut sorted_want = want.clone();
        sorted_want.sort_by_key(|id| {
            let (job, at) = id.split_once('@').unwrap();
            (at.to_string(), Job::of_name(job).unwrap())
        });
        assert_eq!(ids, sorted_want);
        let capture = slots.iter().find(|s| s.id() == "capture@2026-11-27T09:30").unwrap();
        assert_eq!(capture.until, Some(calendar::session(d("2026-11-27")).unwrap().close), "the early close");
        assert_eq!(capture.until.unwrap().to_rfc3339(), "2026-11-27T18:00:00+00:00");
        assert!(slots.iter().all(|s| calendar::trading_date(s.at) != d("2026-11-26")), "nothing on the holiday");
        let chain_at_open = slots.iter().position(|s| s.id() == "chain@2026-11-24T09:30").unwrap();
        assert_eq!(slots[chain_at_open + 1].id(), "capture@2026-11-24T09:30", "chain first, then capture");
    }

    #[test]
    fn a_monday_holiday_moves_the_weekly_refresh_and_settings_apply() {
        // Mon 2026-01-19 is Martin Luther King Jr. Day: the week's refresh is on Tuesday.
        let s = ScheduleSettings {
            chain_every: Duration::hours(2),
            update_after_close: Duration::minutes(30),
            capture: false,
            ..Default::default()
        };
        let slots = schedule(d("2026-01-17"), d("2026-01-20"), &s);
        let ids: Vec<String> = slots.iter().map(Slot::id).collect();
        assert_eq!(
            ids,
            [
                "contracts@2026-01-20T09:00",
                "chain@2026-01-20T09:30",
                "chain@2026-01-20T11:30",
                "chain@2026-01-20T13:30",
                "chain@2026-01-20T15:30",
                "update@2026-01-20T16:30"
            ]
        );
        assert!(schedule(d("2026-01-17"), d("2026-01-19"), &s).is_empty(), "a weekend and a holiday: nothing");
        assert_eq!(
            slots[0].line(),
            "2026-01-20 Tue 09:00       NY  contracts contracts@2026-01-20T09:00",
            "one dry-run line"
        );
    }

    #[test]
    fn ids_are_new_york_time_across_daylight_saving() {
        // 2026-03-09, the Monday after the switch to daylight time: the open is 13:30 UTC.
        let slots = schedule(d("2026-03-06"), d("2026-03-09"), &ScheduleSettings::default());
        let open =
            slots.iter().filter(|s| s.job == Job::Capture).map(|s| (s.id(), s.at.to_rfc3339())).collect::<Vec<_>>();
        assert_eq!(
            open,
            [
                ("capture@2026-03-06T09:30".to_string(), "2026-03-06T14:30:00+00:00".to_string()),
                ("capture@2026-03-09T09:30".to_string(), "2026-03-09T13:30:00+00:00".to_string())
            ]
        );
    }
}
