//! `socle init`: scaffolds a working project folder.

use std::path::{Path, PathBuf};

use crate::project::CONFIG_FILE;

const SOCLE_YML: &str = include_str!("../templates/socle.yml");

const GITIGNORE: &str =
    "# socle's local state: lake, metadata database, query history\n.socle/\ntarget/\n";

const README: &str = "# __NAME__\n\nA socle project.\n\n```sh\nsocle check            # validate the project\nsocle sql \"select 1\"   # query the warehouse\nsocle sql              # interactive shell (\\\\d lists tables)\n```\n";

/// Folders every project has, each with a `.gitkeep` so git keeps them.
const FOLDERS: &[&str] = &[
    "sources",
    "models",
    "seeds",
    "macros",
    "tests",
    "pipelines",
    "ml",
    "dashboards",
];

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("{0} already contains a socle project (socle.yml); not overwriting it")]
    Exists(PathBuf),
    #[error("invalid project name `{0}`: use letters, digits, `_` and `-` (pass --name)")]
    BadName(String),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Creates a project in `dir` (created if missing). The name defaults to the folder's name.
/// Returns the files written, relative to `dir`.
pub fn init(dir: &Path, name: Option<&str>) -> Result<Vec<String>, ScaffoldError> {
    if dir.join(CONFIG_FILE).exists() {
        return Err(ScaffoldError::Exists(dir.to_path_buf()));
    }
    let folder_name = dir
        .canonicalize()
        .unwrap_or_else(|_| dir.to_path_buf())
        .file_name()
        .map(|n| n.to_string_lossy().replace([' ', '.'], "_"))
        .unwrap_or_else(|| "project".into());
    let name = name.map(str::to_string).unwrap_or(folder_name);
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ScaffoldError::BadName(name));
    }
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| ScaffoldError::Io(p, e)
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    let mut write = |rel: &str, text: String| -> Result<(), ScaffoldError> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if !path.exists() {
            std::fs::write(&path, text).map_err(io(&path))?;
            written.push(rel.to_string());
        }
        Ok(())
    };
    write(CONFIG_FILE, SOCLE_YML.replace("__NAME__", &name))?;
    write(".gitignore", GITIGNORE.to_string())?;
    write("README.md", README.replace("__NAME__", &name))?;
    for folder in FOLDERS {
        write(&format!("{folder}/.gitkeep"), String::new())?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Project;

    #[test]
    fn scaffolded_project_loads() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        let files = init(&dir, None).unwrap();
        assert!(files.contains(&"socle.yml".to_string()));
        let p = Project::discover(Some(&dir), Path::new("/")).unwrap();
        assert_eq!(p.config.name, "demo");
        assert!(p.config.lake.url.as_str().ends_with("/demo/.socle/lake/"));
        assert!(matches!(init(&dir, None), Err(ScaffoldError::Exists(_))));
    }
}
