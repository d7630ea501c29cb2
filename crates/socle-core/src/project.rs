//! Finding and loading a project folder.
//!
//! A project is a folder with a `socle.yml`, or with only a `dbt_project.yml` (then socle
//! uses defaults and the dbt project's name). It is given by `--project DIR` or found by
//! walking up from the current directory, as git and dbt do.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::Config;
use crate::diag::ConfigError;

pub const CONFIG_FILE: &str = "socle.yml";
pub const DBT_PROJECT_FILE: &str = "dbt_project.yml";

/// A loaded project: where it is and its validated configuration.
#[derive(Debug, Clone)]
pub struct Project {
    /// Absolute path of the project folder.
    pub root: PathBuf,
    /// `socle.yml`, when the project has one.
    pub config_file: Option<PathBuf>,
    /// `dbt_project.yml`, when the project has one.
    pub dbt_project_file: Option<PathBuf>,
    pub config: Config,
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error(
        "no socle project found in {0} or any parent folder\n  hint: run `socle init DIR` to create one, or pass `--project DIR`"
    )]
    NotFound(PathBuf),
    #[error(
        "{0}: not a socle project (no socle.yml or dbt_project.yml in it)\n  hint: run `socle init {0}` to create one"
    )]
    NotAProject(PathBuf),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

#[derive(Deserialize)]
struct DbtProjectHead {
    name: String,
}

impl Project {
    /// Loads the project at `explicit` if given, else the nearest one at or above `cwd`.
    pub fn discover(explicit: Option<&Path>, cwd: &Path) -> Result<Self, ProjectError> {
        match explicit {
            Some(dir) => {
                let dir = absolute(dir, cwd);
                if !is_project_dir(&dir) {
                    return Err(ProjectError::NotAProject(dir));
                }
                Self::load(&dir)
            }
            None => {
                let start = absolute(cwd, cwd);
                let mut dir = start.as_path();
                loop {
                    if is_project_dir(dir) {
                        return Self::load(dir);
                    }
                    dir = match dir.parent() {
                        Some(p) => p,
                        None => return Err(ProjectError::NotFound(start)),
                    };
                }
            }
        }
    }

    /// Loads the project whose root is `root`.
    pub fn load(root: &Path) -> Result<Self, ProjectError> {
        let root =
            std::fs::canonicalize(root).map_err(|e| ProjectError::Io(root.to_path_buf(), e))?;
        let config_path = root.join(CONFIG_FILE);
        let dbt_path = root.join(DBT_PROJECT_FILE);
        let dbt_project_file = dbt_path.is_file().then_some(dbt_path);
        let (config, config_file) = if config_path.is_file() {
            let text = read(&config_path)?;
            (
                Config::from_yaml(&text, &config_path, &root)?,
                Some(config_path),
            )
        } else if let Some(dbt) = &dbt_project_file {
            let text = read(dbt)?;
            let head: DbtProjectHead =
                serde_saphyr::from_str(&text).map_err(|e| ConfigError::from_yaml(dbt, &e))?;
            (Config::defaults(&head.name, &root), None)
        } else {
            return Err(ProjectError::NotAProject(root));
        };
        Ok(Self {
            root,
            config_file,
            dbt_project_file,
            config,
        })
    }

    /// `<project>/.socle`: local state (default lake, metadata database, history).
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(".socle")
    }

    /// A path relative to the project root, for messages.
    pub fn display_path<'a>(&self, path: &'a Path) -> std::borrow::Cow<'a, str> {
        match path.strip_prefix(&self.root) {
            Ok(rel) => rel.to_string_lossy(),
            Err(_) => path.to_string_lossy(),
        }
    }
}

fn read(path: &Path) -> Result<String, ProjectError> {
    std::fs::read_to_string(path).map_err(|e| ProjectError::Io(path.to_path_buf(), e))
}

fn is_project_dir(dir: &Path) -> bool {
    dir.join(CONFIG_FILE).is_file() || dir.join(DBT_PROJECT_FILE).is_file()
}

fn absolute(p: &Path, cwd: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// The `*.yml` and `*.yaml` files directly in `dir`, sorted (none when `dir` is absent): a
/// project's `pipelines/`, `sources/` and `ml/` folders.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_up_to_the_project() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("socle.yml"), "name: walk\n").unwrap();
        let deep = tmp.path().join("models/staging");
        std::fs::create_dir_all(&deep).unwrap();
        let p = Project::discover(None, &deep).unwrap();
        assert_eq!(p.config.name, "walk");
        assert_eq!(p.root, std::fs::canonicalize(tmp.path()).unwrap());
    }

    #[test]
    fn dbt_only_project_uses_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("dbt_project.yml"),
            "name: jaffle\nversion: '1.0'\nprofile: x\n",
        )
        .unwrap();
        let p = Project::discover(Some(tmp.path()), Path::new("/")).unwrap();
        assert_eq!(p.config.name, "jaffle");
        assert!(p.config_file.is_none());
        assert!(p.dbt_project_file.is_some());
        assert_eq!(p.config.warehouse.default_schema, "main");
    }

    #[test]
    fn missing_project_is_explained() {
        let tmp = tempfile::tempdir().unwrap();
        let e = Project::discover(Some(tmp.path()), Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("socle init"), "{e}");
    }

    #[test]
    fn config_errors_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("socle.yml"),
            "name: x\nwarehouse:\n  dialekt: duckdb\n",
        )
        .unwrap();
        let e = Project::discover(Some(tmp.path()), Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("socle.yml:3:3"), "{e}");
        assert!(e.contains("did you mean `dialect`?"), "{e}");
    }
}
