//! The request state machine:
//!
//! ```text
//! RECEIVED -> VERIFIED -> IN_PROGRESS -> COMPLETED | PARTIALLY_COMPLETED
//!     |           |  ^         |
//!     |           v  |         v
//!     |        ON_HOLD    AWAITING_INPUT
//!     v
//! REJECTED | CANCELLED (from every open state; CANCELLED not once work is under way)
//! ```
//!
//! ON_HOLD resumes to IN_PROGRESS when its hold is released; AWAITING_INPUT goes back
//! to VERIFIED or IN_PROGRESS once the subject answers.

use veil_proto::common::v1::RequestState;

/// Whether `state` is open (the request still needs work or a decision).
pub fn is_open(state: RequestState) -> bool {
    matches!(
        state,
        RequestState::Received
            | RequestState::Verified
            | RequestState::InProgress
            | RequestState::OnHold
            | RequestState::AwaitingInput
    )
}

/// Whether a request may move from `from` to `to`.
pub fn allowed(from: RequestState, to: RequestState) -> bool {
    use RequestState::*;
    match (from, to) {
        (Received, Verified | Rejected | Cancelled) => true,
        (Verified, InProgress | OnHold | AwaitingInput | Rejected | Cancelled) => true,
        // A saga step may finish straight from VERIFIED for requests without one.
        (Verified, Completed | PartiallyCompleted) => true,
        // Once services are erasing or exporting, the subject can no longer withdraw;
        // only a privacy officer's rejection (e.g. a late-found exemption) ends it.
        (InProgress, Completed | PartiallyCompleted | OnHold | AwaitingInput | Rejected) => true,
        (OnHold, InProgress | Verified | Rejected | Cancelled) => true,
        (AwaitingInput, Verified | InProgress | Rejected | Cancelled) => true,
        _ => false,
    }
}

/// A short lowercase label for messages and the CLI.
pub fn label(state: RequestState) -> &'static str {
    match state {
        RequestState::Unspecified => "unspecified",
        RequestState::Received => "received",
        RequestState::Verified => "verified",
        RequestState::InProgress => "in_progress",
        RequestState::Completed => "completed",
        RequestState::Rejected => "rejected",
        RequestState::Cancelled => "cancelled",
        RequestState::OnHold => "on_hold",
        RequestState::AwaitingInput => "awaiting_input",
        RequestState::PartiallyCompleted => "partially_completed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestState::*;

    const ALL: [RequestState; 9] = [
        Received,
        Verified,
        InProgress,
        Completed,
        Rejected,
        Cancelled,
        OnHold,
        AwaitingInput,
        PartiallyCompleted,
    ];

    #[test]
    fn terminal_states_never_move() {
        for from in [Completed, Rejected, Cancelled, PartiallyCompleted] {
            assert!(!is_open(from));
            for to in ALL {
                assert!(!allowed(from, to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn the_happy_path_and_holds_are_allowed() {
        assert!(allowed(Received, Verified));
        assert!(allowed(Verified, InProgress));
        assert!(allowed(InProgress, Completed));
        assert!(allowed(InProgress, PartiallyCompleted));
        assert!(allowed(Verified, OnHold));
        assert!(allowed(OnHold, InProgress));
        assert!(allowed(InProgress, AwaitingInput));
        assert!(allowed(AwaitingInput, InProgress));
    }

    #[test]
    fn unverified_requests_cannot_run_and_running_ones_cannot_be_withdrawn() {
        assert!(!allowed(Received, InProgress));
        assert!(!allowed(Received, OnHold));
        assert!(!allowed(Received, Completed));
        assert!(!allowed(InProgress, Cancelled));
        assert!(!allowed(InProgress, Verified));
        for state in ALL {
            assert!(!allowed(state, state), "{state:?} -> itself");
            assert!(!allowed(state, Received), "{state:?} -> received");
        }
    }

    #[test]
    fn every_open_state_can_be_rejected() {
        for state in ALL.into_iter().filter(|s| is_open(*s)) {
            assert!(allowed(state, Rejected), "{state:?}");
        }
    }
}
