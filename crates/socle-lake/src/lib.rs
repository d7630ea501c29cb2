//! socle's lake: one handle over `object_store` for `file://`, `s3://`, `gs://` and `az://`.
//!
//! The lake is where raw files land (`raw/...`) and where the warehouse keeps its Delta
//! tables (`warehouse/<schema>/<table>`). Everything above this crate addresses the lake
//! by relative paths and never needs to know which store is behind it.
//!
//! Store options come from `socle.yml` (`lake.options`, credentials by reference only) and
//! the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`), as the object_store builders read them.

use std::str::FromStr;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use socle_core::secrets::Resolver;
use socle_core::{ConfigError, LakeConfig};
use url::Url;

pub use object_store;

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the lake at {url}: {source}")]
    Open {
        url: String,
        source: object_store::Error,
    },
    #[error("lake I/O on {path}: {source}")]
    Io {
        path: String,
        source: object_store::Error,
    },
    #[error("invalid lake path `{0}`")]
    BadPath(String),
}

/// An object listed in the lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Path relative to the lake root.
    pub path: String,
    pub size: u64,
    /// Last modification (RFC 3339).
    pub modified: String,
    pub etag: Option<String>,
}

/// An open lake. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Lake {
    url: Url,
    /// The store for the whole bucket (or filesystem root).
    store: Arc<dyn ObjectStore>,
    /// The lake's prefix inside `store`.
    prefix: StorePath,
}

impl Lake {
    /// Opens the lake described by `config`, resolving option references with `resolver`.
    /// A local lake's folder is created if missing.
    pub fn open(config: &LakeConfig, resolver: &dyn Resolver) -> Result<Self, LakeError> {
        let mut options = Vec::new();
        for (key, value) in &config.options {
            options.push((key.clone(), value.resolve(resolver)?));
        }
        Self::open_url(&config.url, &options)
    }

    /// Opens a lake from a URL and already-resolved options.
    pub fn open_url(url: &Url, options: &[(String, String)]) -> Result<Self, LakeError> {
        let open_err = |source| LakeError::Open {
            url: url.to_string(),
            source,
        };
        let (store, prefix): (Arc<dyn ObjectStore>, StorePath) = match url.scheme() {
            "file" => {
                let dir = url
                    .to_file_path()
                    .map_err(|_| LakeError::BadPath(url.to_string()))?;
                std::fs::create_dir_all(&dir).map_err(|e| LakeError::Io {
                    path: dir.display().to_string(),
                    source: object_store::Error::Generic {
                        store: "LocalFileSystem",
                        source: Box::new(e),
                    },
                })?;
                let fs = object_store::local::LocalFileSystem::new().with_automatic_cleanup(true);
                (
                    Arc::new(fs),
                    StorePath::from_url_path(url.path()).map_err(|e| open_err(e.into()))?,
                )
            }
            "s3" | "s3a" => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                let mut b = AmazonS3Builder::from_env().with_url(url.as_str());
                for (k, v) in options {
                    b = b.with_config(AmazonS3ConfigKey::from_str(k).map_err(open_err)?, v);
                }
                (Arc::new(b.build().map_err(open_err)?), bucket_prefix(url)?)
            }
            "gs" => {
                use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
                let mut b = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
                for (k, v) in options {
                    let k = if k == "endpoint" {
                        "base_url"
                    } else {
                        k.as_str()
                    };
                    b = b.with_config(GoogleConfigKey::from_str(k).map_err(open_err)?, v);
                }
                (Arc::new(b.build().map_err(open_err)?), bucket_prefix(url)?)
            }
            "az" | "abfs" | "abfss" => {
                use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
                let mut b = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
                for (k, v) in options {
                    b = b.with_config(AzureConfigKey::from_str(k).map_err(open_err)?, v);
                }
                (Arc::new(b.build().map_err(open_err)?), bucket_prefix(url)?)
            }
            other => return Err(LakeError::BadPath(format!("unsupported scheme {other}://"))),
        };
        let mut url = url.clone();
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        Ok(Self { url, store, prefix })
    }

    /// The lake's root URL (always ends with `/`).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The store for the bucket (or filesystem); pair it with [`Lake::url_of`] for libraries
    /// such as delta-rs that take a store and a location.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The URL of `rel` inside the lake, e.g. `warehouse/main/orders/`.
    pub fn url_of(&self, rel: &str) -> Result<Url, LakeError> {
        check_rel(rel)?;
        self.url
            .join(rel)
            .map_err(|_| LakeError::BadPath(rel.to_string()))
    }

    /// The store path of `rel` inside the lake.
    pub fn path_of(&self, rel: &str) -> Result<StorePath, LakeError> {
        check_rel(rel)?;
        let mut parts: Vec<String> = self
            .prefix
            .parts()
            .map(|p| p.as_ref().to_string())
            .collect();
        parts.extend(rel.split('/').filter(|s| !s.is_empty()).map(str::to_string));
        Ok(StorePath::from_iter(parts))
    }

    /// Names of the immediate sub-folders of `rel`.
    pub async fn list_dirs(&self, rel: &str) -> Result<Vec<String>, LakeError> {
        let path = self.path_of(rel)?;
        let listing = self
            .store
            .list_with_delimiter(Some(&path))
            .await
            .map_err(|source| LakeError::Io {
                path: rel.to_string(),
                source,
            })?;
        let mut dirs: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        dirs.sort();
        Ok(dirs)
    }

    /// Every object under `rel` (recursively), as paths relative to the lake.
    pub async fn list_files(&self, rel: &str) -> Result<Vec<(String, u64)>, LakeError> {
        Ok(self
            .list_objects(rel)
            .await?
            .into_iter()
            .map(|o| (o.path, o.size))
            .collect())
    }

    /// Every object under `rel` (recursively) with its size and modification time.
    pub async fn list_objects(&self, rel: &str) -> Result<Vec<ObjectInfo>, LakeError> {
        let path = self.path_of(rel)?;
        let base = self.prefix.as_ref().len();
        let items: Vec<_> = self
            .store
            .list(Some(&path))
            .try_collect()
            .await
            .map_err(|source| LakeError::Io {
                path: rel.to_string(),
                source,
            })?;
        let mut out: Vec<ObjectInfo> = items
            .into_iter()
            .map(|m| ObjectInfo {
                path: m.location.as_ref()[base..]
                    .trim_start_matches('/')
                    .to_string(),
                size: m.size,
                modified: m.last_modified.to_rfc3339(),
                etag: m.e_tag,
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Writes `bytes` at `rel` in one put (atomic on every store).
    pub async fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), LakeError> {
        let path = self.path_of(rel)?;
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|source| LakeError::Io {
                path: rel.to_string(),
                source,
            })
    }

    /// Reads the object at `rel`.
    pub async fn get(&self, rel: &str) -> Result<Vec<u8>, LakeError> {
        let path = self.path_of(rel)?;
        let io = |source| LakeError::Io {
            path: rel.to_string(),
            source,
        };
        let bytes = self
            .store
            .get(&path)
            .await
            .map_err(io)?
            .bytes()
            .await
            .map_err(io)?;
        Ok(bytes.to_vec())
    }

    /// Deletes every object under `rel`.
    pub async fn delete_prefix(&self, rel: &str) -> Result<usize, LakeError> {
        let files = self.list_files(rel).await?;
        for (file, _) in &files {
            let path = self.path_of(file)?;
            self.store
                .delete(&path)
                .await
                .map_err(|source| LakeError::Io {
                    path: file.clone(),
                    source,
                })?;
        }
        if self.url.scheme() == "file" {
            // Local stores leave empty folders behind; remove them so listings stay clean.
            if let Ok(url) = self.url_of(rel)
                && let Ok(dir) = url.to_file_path()
            {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        Ok(files.len())
    }

    /// Lists the lake's root to prove it is reachable with the configured credentials.
    pub async fn check(&self) -> Result<(), LakeError> {
        self.store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map(|_| ())
            .map_err(|source| LakeError::Open {
                url: self.url.to_string(),
                source,
            })
    }
}

fn bucket_prefix(url: &Url) -> Result<StorePath, LakeError> {
    StorePath::from_url_path(url.path()).map_err(|_| LakeError::BadPath(url.to_string()))
}

fn check_rel(rel: &str) -> Result<(), LakeError> {
    if rel.starts_with('/') || rel.split('/').any(|s| s == ".." || s == ".") || rel.contains('\\') {
        return Err(LakeError::BadPath(rel.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_lake_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let url = Url::from_directory_path(tmp.path().join("lake")).unwrap();
        let lake = Lake::open_url(&url, &[]).unwrap();
        lake.put("raw/src/a.txt", b"hello".to_vec()).await.unwrap();
        lake.put("warehouse/main/t/x", b"1".to_vec()).await.unwrap();
        lake.put("warehouse/staging/u/x", b"1".to_vec())
            .await
            .unwrap();
        assert_eq!(lake.get("raw/src/a.txt").await.unwrap(), b"hello");
        assert_eq!(
            lake.list_dirs("warehouse").await.unwrap(),
            vec!["main", "staging"]
        );
        assert_eq!(
            lake.list_files("raw").await.unwrap(),
            vec![("raw/src/a.txt".to_string(), 5)]
        );
        assert_eq!(lake.delete_prefix("warehouse/main").await.unwrap(), 1);
        assert_eq!(lake.list_dirs("warehouse").await.unwrap(), vec!["staging"]);
        assert!(lake.url_of("../escape").is_err());
        assert!(
            lake.url_of("warehouse/main/t/")
                .unwrap()
                .as_str()
                .ends_with("/lake/warehouse/main/t/")
        );
    }

    #[test]
    fn object_store_options_are_validated() {
        let url = Url::parse("s3://bucket/lake/").unwrap();
        let ok = Lake::open_url(
            &url,
            &[
                ("endpoint".into(), "http://127.0.0.1:1".into()),
                ("allow_http".into(), "true".into()),
                ("region".into(), "us-east-1".into()),
            ],
        );
        assert!(ok.is_ok(), "{ok:?}");
        let bad = Lake::open_url(&url, &[("nonsense".into(), "1".into())]);
        assert!(bad.is_err());
        let az = Lake::open_url(
            &Url::parse("az://container/lake").unwrap(),
            &[
                ("account_name".into(), "acct".into()),
                ("use_emulator".into(), "true".into()),
            ],
        );
        assert!(az.is_ok(), "{az:?}");
    }
}
