//! One exit status for every command, so that a script can tell "looked at
//! everything" from "could not look at something" from "could not run":
//!
//! | status | meaning |
//! |---|---|
//! | 0 | every input was handled (matched or not: matches are in the output) |
//! | 1 | some inputs could not be handled; each has an error line, the others were handled |
//! | 2 | the command could not run (usage, unreadable index, unknown list) |
//!
//! A match is a result, not a failure: it is reported in the output lines,
//! so that a status never hides one input's error behind another's match.

use std::process::ExitCode;

/// What became of one input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handled (whatever it matched).
    Done,
    /// Could not be handled (an error line says why).
    Failed,
}

/// The tally of a command's outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub failed: u64,
}

impl Tally {
    pub fn add(&mut self, outcome: Outcome) {
        if outcome == Outcome::Failed {
            self.failed += 1;
        }
    }

    /// The exit status for this tally.
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.status())
    }

    /// The status as a number.
    pub fn status(self) -> u8 {
        if self.failed > 0 {
            SOME_FAILED
        } else {
            0
        }
    }
}

/// The status when some inputs could not be handled.
pub const SOME_FAILED: u8 = 1;
/// The status when the command could not run.
pub const CANNOT_RUN: u8 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failed_inputs_change_the_status() {
        let mut tally = Tally::default();
        tally.add(Outcome::Done);
        assert_eq!(tally.status(), 0);
        tally.add(Outcome::Failed);
        tally.add(Outcome::Done);
        assert_eq!(tally.status(), SOME_FAILED);
    }
}
