//! Whose fault an error is, for every layer: the caller's request, their rights, a missing
//! object, time, another writer, load, or socle and the systems under it. Each layer's error
//! type says which ([`Fault`]); the server turns that into one HTTP status, the same for
//! every route and for the query process, so that a client can tell "fix your request"
//! from "try again" from "our problem".

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The request is wrong (malformed SQL, a bad value, data that cannot load): 400.
    Input,
    /// The caller may not do this: 403.
    Forbidden,
    /// What was asked for does not exist (or the caller may not see it): 404.
    NotFound,
    /// It took longer than allowed: 408.
    Timeout,
    /// Another writer or an existing object is in the way: 409.
    Conflict,
    /// Too much load right now; try again later: 503.
    Busy,
    /// socle, or a system under it (lake storage, metadata database), failed: 500.
    Internal,
}

impl Fault {
    /// The HTTP status that says this fault.
    pub fn http_status(self) -> u16 {
        match self {
            Fault::Input => 400,
            Fault::Forbidden => 403,
            Fault::NotFound => 404,
            Fault::Timeout => 408,
            Fault::Conflict => 409,
            Fault::Busy => 503,
            Fault::Internal => 500,
        }
    }

    /// Whether the message may go to the caller as it is (an internal one goes to the
    /// log, and the caller gets a generic message).
    pub fn is_callers(self) -> bool {
        self != Fault::Internal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_its_status() {
        let all = [
            (Fault::Input, 400),
            (Fault::Forbidden, 403),
            (Fault::NotFound, 404),
            (Fault::Timeout, 408),
            (Fault::Conflict, 409),
            (Fault::Busy, 503),
            (Fault::Internal, 500),
        ];
        for (f, status) in all {
            assert_eq!(f.http_status(), status, "{f:?}");
        }
        assert!(!Fault::Internal.is_callers() && Fault::Input.is_callers());
    }
}
