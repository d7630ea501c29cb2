//! The budget of one template render, shared by dbt models and macros and by pipeline task
//! templates.
//!
//! minijinja's fuel (3.1+) is a single budget for the work of a render: one unit per
//! instruction, and one unit per 64 bytes of data a template creates (the output, captured
//! `{% set %}` blocks and macro bodies, strings made by `~`, `+`, `*`, filters and
//! functions). Allocations whose size is known ahead (a concatenation) are checked before
//! they are made, so a string doubled in a loop stops before it is built. With
//! [`TEMPLATE_FUEL`] a render may run about 4 million instructions or create about
//! [`TEMPLATE_MAX_BYTES`] of text in all, whichever comes first: the output of a render is
//! therefore at most 256 MiB, and its peak memory a few hundred MB. Real models render in
//! thousands of instructions and kilobytes of SQL, three orders of magnitude below.

use minijinja::{Environment, Error, ErrorKind};

/// The fuel of one render (see the module doc).
pub const TEMPLATE_FUEL: u64 = 1 << 22;

/// The text a render may create in all (output and intermediate strings), in bytes.
pub const TEMPLATE_MAX_BYTES: u64 = TEMPLATE_FUEL * 64;

/// Gives every render of `env` the budget of [`TEMPLATE_FUEL`].
pub fn bound(env: &mut Environment<'_>) {
    env.set_fuel(Some(TEMPLATE_FUEL));
}

/// Whether `err` (or an error it wraps) is the render running out of its budget.
pub fn is_out_of_budget(err: &Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<Error>()
            .is_some_and(|e| e.kind() == ErrorKind::OutOfFuel)
        {
            return true;
        }
        cur = e.source();
    }
    false
}

/// What to tell the user when a render ran out of its budget.
pub fn out_of_budget_message() -> String {
    format!(
        "the template used up its budget of work ({} million steps or {} MiB of text in all); \
         a template that needs this much is looping without end or growing a string in a loop: \
         render less text, or move the work into SQL",
        TEMPLATE_FUEL / 1_000_000,
        TEMPLATE_MAX_BYTES >> 20
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_doubling_string_stops_before_it_is_built() {
        let mut env = Environment::new();
        bound(&mut env);
        let err = env
            .render_str(
                "{% set ns = namespace(s='x') %}{% for i in range(100) %}\
                 {% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
                (),
            )
            .unwrap_err();
        assert!(is_out_of_budget(&err), "{err}");
        // An ordinary render is far below the budget.
        let ok = env
            .render_str(
                "{% for i in range(1000) %}select {{ i }} as c union all {% endfor %}select 0",
                (),
            )
            .unwrap();
        assert!(ok.len() > 20_000);
    }
}
