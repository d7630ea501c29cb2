//! The connector kinds. Adding one: a module with a `parse` function building its
//! [`Source`], and one line in [`KINDS`].

use socle_core::ConfigError;

use crate::Source;
use crate::config::{SourceFile, kind_of, loc};

/// Parses a source file of one kind into its [`Source`] (all problems at once).
pub type ParseFn = fn(&SourceFile) -> Result<Box<dyn Source>, Vec<ConfigError>>;

/// A connector kind: its `type:` name and the parser of its source files.
pub struct Kind {
    pub name: &'static str,
    pub parse: ParseFn,
}

/// Every connector kind.
pub const KINDS: &[Kind] = &[
    Kind {
        name: "files",
        parse: crate::files::parse,
    },
    Kind {
        name: "rest",
        parse: crate::rest::parse,
    },
    Kind {
        name: "scrape",
        parse: crate::scrape::parse,
    },
    Kind {
        name: "postgres",
        parse: crate::sql::parse_postgres,
    },
    Kind {
        name: "mysql",
        parse: crate::sql::parse_mysql,
    },
    Kind {
        name: "sqlite",
        parse: crate::sql::parse_sqlite,
    },
];

/// The kinds' names, for messages.
pub fn names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name).collect()
}

/// Parses a source file with the parser of its `type:`.
pub fn parse(file: &SourceFile) -> Result<Box<dyn Source>, Vec<ConfigError>> {
    let kind = kind_of(file).map_err(|e| vec![e])?;
    match KINDS.iter().find(|k| k.name == kind.value) {
        Some(k) => (k.parse)(file),
        None => {
            let mut e = file.error(loc(&kind), format!("unknown source type `{}`", kind.value));
            e.hint = Some(match socle_core::diag::did_you_mean(&kind.value, names()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("use one of: {}", names().join(", ")),
            });
            Err(vec![e])
        }
    }
}
