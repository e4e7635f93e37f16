//! Deadlines by jurisdiction.
//!
//! | jurisdiction                     | due                   | latest after extensions | acknowledgement      |
//! |----------------------------------|-----------------------|-------------------------|----------------------|
//! | EU GDPR, UK GDPR (Art. 12(3))    | one calendar month    | three calendar months   | -                    |
//! | US-CA CCPA (§7021, §1798.130)    | 45 days               | 90 days                 | 10 business days     |
//! | BR LGPD (Art. 19 II)             | 15 days               | 15 days (no extension)  | -                    |
//! | CA PIPEDA (s. 8(3))              | 30 days               | 60 days                 | -                    |
//! | CH FADP, other, unspecified      | GDPR rules (the stricter default) | | |
//!
//! A calendar month lands on the same day of the next month, or on that month's last
//! day when it is shorter (received 31 January -> due 28 or 29 February), at the same
//! time of day. Business days skip Saturdays and Sundays; public holidays differ by
//! state and are not modelled, which only makes the acknowledgement deadline earlier.

use time::{Date, Duration, Month, OffsetDateTime, Weekday};
use veil_proto::common::v1::Jurisdiction;

/// The deadlines of a request received at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// When the answer is due.
    pub due_at: OffsetDateTime,
    /// The latest `due_at` may become through extensions.
    pub max_due_at: OffsetDateTime,
    /// When receipt must be acknowledged (CCPA), if the regime asks for it.
    pub ack_due_at: Option<OffsetDateTime>,
}

/// The deadlines of a request under `jurisdiction` received at `received_at`.
pub fn deadlines(jurisdiction: Jurisdiction, received_at: OffsetDateTime) -> Deadlines {
    match jurisdiction {
        Jurisdiction::UsCaCcpa => Deadlines {
            due_at: received_at + Duration::days(45),
            max_due_at: received_at + Duration::days(90),
            ack_due_at: Some(add_business_days(received_at, 10)),
        },
        Jurisdiction::BrLgpd => {
            let due = received_at + Duration::days(15);
            Deadlines {
                due_at: due,
                max_due_at: due,
                ack_due_at: None,
            }
        }
        Jurisdiction::CaPipeda => Deadlines {
            due_at: received_at + Duration::days(30),
            max_due_at: received_at + Duration::days(60),
            ack_due_at: None,
        },
        Jurisdiction::EuGdpr
        | Jurisdiction::UkGdpr
        | Jurisdiction::ChFadp
        | Jurisdiction::Other
        | Jurisdiction::Unspecified => Deadlines {
            due_at: add_months(received_at, 1),
            max_due_at: add_months(received_at, 3),
            ack_due_at: None,
        },
    }
}

/// `at` plus `months` calendar months, clamped to the last day of a shorter month.
pub fn add_months(at: OffsetDateTime, months: u32) -> OffsetDateTime {
    let date = at.date();
    let index = date.year() * 12 + i32::from(u8::from(date.month())) - 1 + months as i32;
    let year = index.div_euclid(12);
    let month = month_of(index.rem_euclid(12));
    let last = time::util::days_in_month(month, year);
    let day = date.day().min(last);
    match Date::from_calendar_date(year, month, day) {
        Ok(target) => at.replace_date(target),
        // Only reachable beyond year 9999; fall back to a lower bound of a month each.
        Err(_) => at + Duration::days(28 * i64::from(months)),
    }
}

fn month_of(zero_based: i32) -> Month {
    const MONTHS: [Month; 12] = [
        Month::January,
        Month::February,
        Month::March,
        Month::April,
        Month::May,
        Month::June,
        Month::July,
        Month::August,
        Month::September,
        Month::October,
        Month::November,
        Month::December,
    ];
    MONTHS[usize::try_from(zero_based).unwrap_or(0) % 12]
}

/// `at` plus `days` days that are neither Saturday nor Sunday.
pub fn add_business_days(at: OffsetDateTime, days: u32) -> OffsetDateTime {
    let mut current = at;
    let mut left = days;
    while left > 0 {
        current += Duration::days(1);
        if !matches!(current.weekday(), Weekday::Saturday | Weekday::Sunday) {
            left -= 1;
        }
    }
    current
}

/// Why an extension is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtendError {
    /// Zero or negative.
    NotPositive,
    /// The new due date would pass the legal maximum.
    BeyondMaximum,
}

/// The due date after extending `due_at` by `by`, if it stays within `max_due_at`.
pub fn extend(
    due_at: OffsetDateTime,
    max_due_at: OffsetDateTime,
    by: Duration,
) -> Result<OffsetDateTime, ExtendError> {
    if by <= Duration::ZERO {
        return Err(ExtendError::NotPositive);
    }
    let extended = due_at.checked_add(by).ok_or(ExtendError::BeyondMaximum)?;
    if extended > max_due_at {
        return Err(ExtendError::BeyondMaximum);
    }
    Ok(extended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn gdpr_due(at: OffsetDateTime) -> OffsetDateTime {
        deadlines(Jurisdiction::EuGdpr, at).due_at
    }

    #[test]
    fn gdpr_month_end_in_a_leap_year_lands_on_29_february() {
        assert_eq!(
            gdpr_due(datetime!(2028-01-31 10:15 UTC)),
            datetime!(2028-02-29 10:15 UTC)
        );
    }

    #[test]
    fn gdpr_month_end_in_a_common_year_lands_on_28_february() {
        assert_eq!(
            gdpr_due(datetime!(2027-01-31 00:00 UTC)),
            datetime!(2027-02-28 00:00 UTC)
        );
    }

    #[test]
    fn gdpr_31st_into_a_30_day_month_lands_on_the_30th() {
        assert_eq!(
            gdpr_due(datetime!(2026-03-31 23:59:59 UTC)),
            datetime!(2026-04-30 23:59:59 UTC)
        );
    }

    #[test]
    fn gdpr_ordinary_days_and_year_ends() {
        assert_eq!(
            gdpr_due(datetime!(2026-05-15 12:00 UTC)),
            datetime!(2026-06-15 12:00 UTC)
        );
        assert_eq!(
            gdpr_due(datetime!(2026-12-31 08:00 UTC)),
            datetime!(2027-01-31 08:00 UTC)
        );
        assert_eq!(
            gdpr_due(datetime!(2028-02-29 08:00 UTC)),
            datetime!(2028-03-29 08:00 UTC)
        );
    }

    #[test]
    fn gdpr_maximum_is_three_calendar_months() {
        let d = deadlines(Jurisdiction::EuGdpr, datetime!(2027-11-30 09:00 UTC));
        assert_eq!(d.max_due_at, datetime!(2028-02-29 09:00 UTC));
        let d = deadlines(Jurisdiction::UkGdpr, datetime!(2026-11-30 09:00 UTC));
        assert_eq!(d.due_at, datetime!(2026-12-30 09:00 UTC));
        assert_eq!(d.max_due_at, datetime!(2027-02-28 09:00 UTC));
        assert_eq!(d.ack_due_at, None);
    }

    #[test]
    fn ccpa_is_45_days_up_to_90_with_an_acknowledgement_in_10_business_days() {
        // Friday 2026-01-30: ten business days later is Friday 2026-02-13.
        let at = datetime!(2026-01-30 14:00 UTC);
        let d = deadlines(Jurisdiction::UsCaCcpa, at);
        assert_eq!(d.due_at, datetime!(2026-03-16 14:00 UTC));
        assert_eq!(d.max_due_at, datetime!(2026-04-30 14:00 UTC));
        assert_eq!(d.ack_due_at, Some(datetime!(2026-02-13 14:00 UTC)));
    }

    #[test]
    fn business_days_skip_weekends_from_a_saturday() {
        // Saturday 2026-02-28 + 1 business day = Monday 2026-03-02.
        assert_eq!(
            add_business_days(datetime!(2026-02-28 09:00 UTC), 1),
            datetime!(2026-03-02 09:00 UTC)
        );
    }

    #[test]
    fn other_regimes_follow_their_table_rows() {
        let at = datetime!(2026-01-31 00:00 UTC);
        assert_eq!(
            deadlines(Jurisdiction::Other, at).due_at,
            datetime!(2026-02-28 00:00 UTC)
        );
        let lgpd = deadlines(Jurisdiction::BrLgpd, at);
        assert_eq!(lgpd.due_at, datetime!(2026-02-15 00:00 UTC));
        assert_eq!(lgpd.max_due_at, lgpd.due_at);
        let pipeda = deadlines(Jurisdiction::CaPipeda, at);
        assert_eq!(pipeda.max_due_at, at + Duration::days(60));
    }

    #[test]
    fn extensions_stop_at_the_maximum() {
        let at = datetime!(2028-01-31 00:00 UTC);
        let d = deadlines(Jurisdiction::EuGdpr, at);
        // 29 Feb + 61 days = 30 April: exactly three months from 31 January.
        let max = extend(d.due_at, d.max_due_at, Duration::days(61));
        assert_eq!(max, Ok(datetime!(2028-04-30 00:00 UTC)));
        assert_eq!(
            extend(d.due_at, d.max_due_at, Duration::days(62)),
            Err(ExtendError::BeyondMaximum)
        );
        assert_eq!(
            extend(d.due_at, d.max_due_at, Duration::ZERO),
            Err(ExtendError::NotPositive)
        );
        let ccpa = deadlines(Jurisdiction::UsCaCcpa, at);
        assert!(extend(ccpa.due_at, ccpa.max_due_at, Duration::days(45)).is_ok());
        assert_eq!(
            extend(ccpa.due_at, ccpa.max_due_at, Duration::days(46)),
            Err(ExtendError::BeyondMaximum)
        );
    }
}
