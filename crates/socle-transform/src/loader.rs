//! Loading a project: files of the root project and its installed packages become nodes;
//! a parse-time render of each SQL file records its refs, sources and `config()`; configs
//! are merged (project tree, then schema YAML, then the file); refs are resolved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::config::{NodeConfig, merge};
use crate::error::{Result, TransformError};
use crate::jinja::{Jinja, MacroFile, QueryTable, Relation, Resolver, Scope};
use crate::nodes::{Kind, Node, Nodes, SourceNode, TestMeta};
use crate::project::{ConfigTree, DbtProject};
use crate::schema::{SchemaFiles, TestDef};

/// What the loader needs to know besides the files.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The target schema (socle.yml `warehouse.default_schema`, dbt-duckdb's `main`).
    pub target_schema: String,
    pub target_name: String,
    pub threads: usize,
    /// `--vars` (YAML or JSON mapping).
    pub cli_vars: Map<String, Value>,
}

/// A loaded project: ready to select, compile and run.
pub struct Loaded {
    pub root: DbtProject,
    pub packages: Vec<DbtProject>,
    pub nodes: Nodes,
    pub jinja: Jinja,
    pub options: LoadOptions,
}

impl Loaded {
    pub fn target(&self) -> Value {
        json!({
            "name": self.options.target_name,
            "target_name": self.options.target_name,
            "schema": self.options.target_schema,
            "database": "socle",
            "type": "duckdb",
            "threads": self.options.threads,
            "profile_name": self.root.profile.clone().unwrap_or_else(|| self.root.name.clone()),
        })
    }

    pub fn vars(&self) -> (Map<String, Value>, Map<String, Value>) {
        (self.options.cli_vars.clone(), self.root.vars.clone())
    }
}

/// Files of one package, found on disk.
struct Files {
    macros: Vec<PathBuf>,
    yml: Vec<PathBuf>,
    docs: Vec<PathBuf>,
    resources: Vec<(Kind, PathBuf, PathBuf)>,
}

fn walk(root: &Path, dirs: &[String], kind: Kind, files: &mut Files) {
    for dir in dirs {
        let base = root.join(dir);
        let mut entries: Vec<PathBuf> = walkdir::WalkDir::new(&base)
            .follow_links(true)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.into_path())
            .collect();
        entries.sort();
        for path in entries {
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default()
                .to_ascii_lowercase();
            match (ext.as_str(), kind) {
                ("yml" | "yaml", _) => files.yml.push(path),
                ("md", _) => files.docs.push(path),
                ("sql", Kind::Analysis) if dir.is_empty() => files.macros.push(path),
                ("sql", _) => files.resources.push((kind, base.clone(), path)),
                ("csv", Kind::Seed) => files.resources.push((kind, base.clone(), path)),
                _ => {}
            }
        }
    }
}

fn package_files(p: &DbtProject) -> Files {
    let mut files = Files {
        macros: Vec::new(),
        yml: Vec::new(),
        docs: Vec::new(),
        resources: Vec::new(),
    };
    walk(&p.root, &p.model_paths, Kind::Model, &mut files);
    walk(&p.root, &p.seed_paths, Kind::Seed, &mut files);
    walk(&p.root, &p.snapshot_paths, Kind::Snapshot, &mut files);
    walk(&p.root, &p.test_paths, Kind::Test, &mut files);
    walk(&p.root, &p.analysis_paths, Kind::Analysis, &mut files);
    // Generic test definitions (`{% test %}` blocks) in the test paths are macros.
    let generic = regex::Regex::new(r"\{%-?\s*test\s+[A-Za-z_]").expect("test block regex");
    files.resources.retain(|(kind, _, path)| {
        let is_definition = *kind == Kind::Test
            && std::fs::read_to_string(path).is_ok_and(|text| generic.is_match(&text));
        if is_definition {
            files.macros.push(path.clone());
        }
        !is_definition
    });
    for dir in &p.macro_paths {
        let mut found: Vec<PathBuf> = walkdir::WalkDir::new(p.root.join(dir))
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.into_path())
            .collect();
        found.sort();
        for path in found {
            match path.extension().and_then(|e| e.to_str()) {
                Some("sql") => files.macros.push(path),
                Some("yml" | "yaml") => files.yml.push(path),
                Some("md") => files.docs.push(path),
                _ => {}
            }
        }
    }
    files
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| TransformError::io(path, e))
}

/// `{% docs name %}...{% enddocs %}` blocks of a file.
fn docs_blocks(text: &str, out: &mut BTreeMap<String, String>) {
    let re = regex::Regex::new(
        r"(?s)\{%-?\s*docs\s+([A-Za-z_][A-Za-z0-9_]*)\s*-?%\}(.*?)\{%-?\s*enddocs\s*-?%\}",
    )
    .expect("docs regex");
    for cap in re.captures_iter(text) {
        out.insert(cap[1].to_string(), cap[2].trim().to_string());
    }
}

/// A resolver for parse time: refs and sources become placeholders, nothing is queried.
struct ParseResolver;

impl Resolver for ParseResolver {
    fn resolve_ref(
        &self,
        _: &str,
        _: Option<&str>,
        name: &str,
    ) -> std::result::Result<Relation, String> {
        Ok(Relation {
            database: "socle".into(),
            schema: "__parse__".into(),
            identifier: name.into(),
            kind: "table".into(),
        })
    }
    fn resolve_source(&self, source: &str, table: &str) -> std::result::Result<Relation, String> {
        Ok(Relation {
            database: "socle".into(),
            schema: source.into(),
            identifier: table.into(),
            kind: "source".into(),
        })
    }
    fn run_query(&self, _: &str) -> std::result::Result<QueryTable, String> {
        Ok(QueryTable {
            column_names: Vec::new(),
            rows: Vec::new(),
        })
    }
    fn get_relation(&self, _: &str, _: &str) -> Option<Relation> {
        None
    }
    fn columns(&self, _: &Relation) -> std::result::Result<Vec<(String, String)>, String> {
        Ok(Vec::new())
    }
    fn doc(&self, _: &str) -> Option<String> {
        None
    }
}

/// The path of `file` relative to `base`, with `/` separators.
fn rel(base: &Path, file: &Path) -> String {
    file.strip_prefix(base)
        .unwrap_or(file)
        .to_string_lossy()
        .replace('\\', "/")
}

pub fn load(project_root: &Path, fallback_name: &str, options: LoadOptions) -> Result<Loaded> {
    let root = DbtProject::load(project_root, fallback_name)?;
    let mut packages = Vec::new();
    let pkg_dir = project_root.join(&root.packages_install_path);
    if let Ok(entries) = std::fs::read_dir(&pkg_dir) {
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("package")
                .to_string();
            packages.push(DbtProject::load(&dir, &name)?);
        }
    }
    let mut macro_files = Vec::new();
    let mut docs = BTreeMap::new();
    let mut all_files = Vec::new();
    for p in std::iter::once(&root).chain(&packages) {
        let files = package_files(p);
        for path in &files.macros {
            let source = read(path)?;
            docs_blocks(&source, &mut docs);
            macro_files.push(MacroFile {
                package: p.name.clone(),
                name: rel(project_root, path),
                source,
            });
        }
        for path in &files.docs {
            docs_blocks(&read(path)?, &mut docs);
        }
        all_files.push((p.clone(), files));
    }
    let mut vars = root.vars.clone();
    for (k, v) in &options.cli_vars {
        vars.insert(k.clone(), v.clone());
    }
    let mut jinja =
        Jinja::new(&root.name, macro_files, vars).map_err(|e| jinja_error(project_root, e))?;
    let mut nodes = Nodes {
        docs,
        ..Nodes::default()
    };
    let mut schema = SchemaFiles::default();
    let mut yml_package: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut file_configs: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (p, files) in &all_files {
        for yml in &files.yml {
            let before = (schema.resources.len(), schema.sources.len());
            schema.add_file(yml)?;
            let _ = before;
            yml_package.insert(yml.clone(), p.name.clone());
        }
        for (kind, base, path) in &files.resources {
            for node in new_nodes(project_root, &root, p, *kind, base, path)? {
                nodes.nodes.insert(node.unique_id.clone(), node);
            }
        }
    }
    add_sources(&mut nodes, &schema, &yml_package, &root.name);
    add_generic_tests(&mut nodes, &schema, &yml_package, &root, &packages)?;
    apply_properties(&mut nodes, &schema, &yml_package);
    // Parse-time render: what each file refs, sources and configures.
    let resolver: Arc<dyn Resolver> = Arc::new(ParseResolver);
    let target = json!({"name": options.target_name, "schema": options.target_schema, "database": "socle",
                        "type": "duckdb", "threads": options.threads});
    for node in nodes.nodes.values_mut() {
        if node.kind == Kind::Seed {
            continue;
        }
        let node_error = |e: crate::jinja::RenderError| {
            if e.template == node.unique_id {
                TransformError::Jinja {
                    file: node.file.clone(),
                    line: e.line,
                    message: e.message,
                }
            } else {
                jinja_error(project_root, e)
            }
        };
        jinja
            .add_node(&node.unique_id, &node.raw_sql)
            .map_err(node_error)?;
        let scope = Scope::new(
            &node.package,
            false,
            None,
            false,
            node.config.0.clone(),
            json!({"name": node.name, "unique_id": node.unique_id, "resource_type": node.kind.as_str()}),
            target.clone(),
            (options.cli_vars.clone(), root.vars.clone()),
            false,
            resolver.clone(),
        );
        jinja.render(&node.unique_id, &scope).map_err(node_error)?;
        let captured = scope.captured();
        node.refs = captured.refs;
        node.sources = captured.sources;
        file_configs.insert(node.unique_id.clone(), captured.config);
    }
    for (id, config) in file_configs {
        if let Some(node) = nodes.nodes.get_mut(&id) {
            merge(&mut node.config.0, &config);
        }
    }
    nodes.nodes.retain(|_, n| n.config.enabled());
    let loaded_target = options.target_schema.clone();
    name_relations(&mut nodes, &jinja, &root.name, &loaded_target, project_root)?;
    resolve_dependencies(&mut nodes, project_root)?;
    Ok(Loaded {
        root,
        packages,
        nodes,
        jinja,
        options,
    })
}

fn jinja_error(root: &Path, e: crate::jinja::RenderError) -> TransformError {
    let file = if e.template.contains('.')
        && !e.template.starts_with("model.")
        && !e.template.starts_with("test.")
    {
        root.join(&e.template)
    } else {
        PathBuf::from(&e.template)
    };
    TransformError::Jinja {
        file,
        line: e.line,
        message: e.message,
    }
}

/// The configs of `dbt_project.yml` that apply to a file (package tree, then the root
/// project's entry for that package).
fn tree_config(
    root: &DbtProject,
    p: &DbtProject,
    kind: Kind,
    folders: &[&str],
) -> Map<String, Value> {
    let tree = |d: &DbtProject| -> ConfigTree {
        match kind {
            Kind::Model | Kind::Analysis => d.models.clone(),
            Kind::Seed => d.seeds.clone(),
            Kind::Snapshot => d.snapshots.clone(),
            Kind::Test => d.data_tests.clone(),
        }
    };
    let mut out = Map::new();
    if kind == Kind::Model {
        out.insert("materialized".into(), json!("view"));
    }
    merge(&mut out, &tree(p).for_path(&p.name, folders));
    if p.name != root.name {
        merge(&mut out, &tree(root).for_path(&p.name, folders));
    }
    out
}

fn new_nodes(
    project_root: &Path,
    root: &DbtProject,
    p: &DbtProject,
    kind: Kind,
    base: &Path,
    path: &Path,
) -> Result<Vec<Node>> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    let rel_dir = path.parent().map(|d| rel(base, d)).unwrap_or_default();
    let folders: Vec<&str> = rel_dir.split('/').filter(|s| !s.is_empty()).collect();
    let text = if kind == Kind::Seed {
        String::new()
    } else {
        read(path)?
    };
    let mut blocks = Vec::new();
    if kind == Kind::Snapshot {
        let re = regex::Regex::new(r"(?s)\{%-?\s*snapshot\s+([A-Za-z_][A-Za-z0-9_]*)\s*-?%\}(.*?)\{%-?\s*endsnapshot\s*-?%\}")
            .expect("snapshot regex");
        for cap in re.captures_iter(&text) {
            let body = cap.get(2).expect("body");
            let line = text[..body.start()].matches('\n').count();
            // Keep line numbers: pad the body with the newlines before it.
            blocks.push((
                cap[1].to_string(),
                format!("{}{}", "\n".repeat(line), body.as_str()),
                line + 1,
            ));
        }
    } else {
        blocks.push((stem.clone(), text, 1));
    }
    let mut out = Vec::new();
    for (name, sql, first_line) in blocks {
        let mut path_parts = folders.clone();
        path_parts.push(name.as_str());
        let config = tree_config(root, p, kind, &path_parts);
        let mut fqn: Vec<String> = folders.iter().map(|s| s.to_string()).collect();
        fqn.push(name.clone());
        out.push(Node {
            unique_id: format!("{}.{}.{}", kind.as_str(), p.name, name),
            kind,
            package: p.name.clone(),
            path: rel(&p.root, path),
            file: path.to_path_buf(),
            raw_sql: sql,
            config: NodeConfig(config),
            description: String::new(),
            columns: Vec::new(),
            fqn,
            refs: Vec::new(),
            sources: Vec::new(),
            depends_on: Vec::new(),
            schema: String::new(),
            alias: name.clone(),
            name,
            test: None,
            first_line,
        });
    }
    let _ = project_root;
    Ok(out)
}

fn add_sources(
    nodes: &mut Nodes,
    schema: &SchemaFiles,
    yml_package: &BTreeMap<PathBuf, String>,
    root: &str,
) {
    for s in &schema.sources {
        let package = yml_package
            .get(&s.file)
            .cloned()
            .unwrap_or_else(|| root.to_string());
        for t in &s.tables {
            let id = format!("source.{package}.{}.{}", s.name, t.name);
            nodes.sources.insert(
                id.clone(),
                SourceNode {
                    unique_id: id,
                    package: package.clone(),
                    source_name: s.name.clone(),
                    name: t.name.clone(),
                    schema: s.schema.clone(),
                    identifier: t.identifier.clone(),
                    description: t.description.clone(),
                    columns: t.columns.clone(),
                    file: s.file.clone(),
                },
            );
        }
    }
}

fn apply_properties(
    nodes: &mut Nodes,
    schema: &SchemaFiles,
    yml_package: &BTreeMap<PathBuf, String>,
) {
    for props in &schema.resources {
        let package = yml_package.get(&props.file).cloned().unwrap_or_default();
        let id = format!("{}.{package}.{}", props.kind, props.name);
        if let Some(node) = nodes.nodes.get_mut(&id) {
            node.description = props.description.clone();
            node.columns = props.columns.clone();
            merge(&mut node.config.0, &props.config);
        }
    }
}

/// A value of a test argument as Jinja source: `ref(..)` / `source(..)` strings stay
/// expressions, everything else becomes a literal.
fn jinja_literal(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let t = s.trim();
            if (t.starts_with("ref(") || t.starts_with("source(")) && t.ends_with(')') {
                t.to_string()
            } else {
                Value::String(s.clone()).to_string()
            }
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(jinja_literal)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), jinja_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// dbt's test names: `not_null_orders_id`, `accepted_values_orders_status__a__b`.
fn test_name(
    test: &str,
    target: &str,
    column: Option<&str>,
    kwargs: &Map<String, Value>,
) -> String {
    let short = test.rsplit('.').next().unwrap_or(test);
    let prefix = match test.split_once('.') {
        Some((pkg, _)) => format!("{pkg}_"),
        None => String::new(),
    };
    let mut name = format!("{prefix}{short}_{target}");
    if let Some(c) = column {
        name.push('_');
        name.push_str(c);
    }
    for v in kwargs.values() {
        let flat = match v {
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string).unwrap_or(i.to_string()))
                .collect::<Vec<_>>()
                .join("__"),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        name.push_str("__");
        name.push_str(&flat);
    }
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.len() > 63 {
        // Long names keep their start and get a short digest, as dbt does.
        let digest = clean.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        format!("{}_{:x}", &clean[..46], digest & 0xffff_ffff_ffff)
    } else {
        clean
    }
}

fn add_generic_tests(
    nodes: &mut Nodes,
    schema: &SchemaFiles,
    yml_package: &BTreeMap<PathBuf, String>,
    root: &DbtProject,
    packages: &[DbtProject],
) -> Result<()> {
    let mut new = Vec::new();
    let mut push = |package: &str,
                    file: &Path,
                    target_expr: String,
                    target_name: &str,
                    attached: String,
                    column: Option<&str>,
                    def: &TestDef| {
        let name = def
            .name
            .clone()
            .unwrap_or_else(|| test_name(&def.test, target_name, column, &def.kwargs));
        let (macro_pkg, short) = match def.test.split_once('.') {
            Some((pkg, t)) => (Some(pkg), t),
            None => (None, def.test.as_str()),
        };
        let callee = match macro_pkg {
            Some(pkg) => format!("{pkg}.test_{short}"),
            None => format!("test_{short}"),
        };
        let mut args = vec![format!("model=get_where_subquery({target_expr})")];
        if let Some(c) = column {
            args.push(format!("column_name={}", Value::String(c.to_string())));
        }
        for (k, v) in &def.kwargs {
            args.push(format!("{k}={}", jinja_literal(v)));
        }
        let raw_sql = format!("{{{{ {callee}({}) }}}}", args.join(", "));
        let p = std::iter::once(root)
            .chain(packages)
            .find(|p| p.name == package)
            .unwrap_or(root);
        let mut config = tree_config(root, p, Kind::Test, &[]);
        merge(&mut config, &def.config);
        new.push(Node {
            unique_id: format!("test.{package}.{name}"),
            kind: Kind::Test,
            package: package.to_string(),
            path: rel(&p.root, file),
            file: file.to_path_buf(),
            raw_sql,
            config: NodeConfig(config),
            description: String::new(),
            columns: Vec::new(),
            fqn: vec![name.clone()],
            refs: Vec::new(),
            sources: Vec::new(),
            depends_on: Vec::new(),
            schema: String::new(),
            alias: name.clone(),
            name,
            test: Some(TestMeta {
                test: def.test.clone(),
                kwargs: def.kwargs.clone(),
                attached,
                column_name: column.map(str::to_string),
            }),
            first_line: 1,
        });
    };
    for props in &schema.resources {
        let package = yml_package
            .get(&props.file)
            .cloned()
            .unwrap_or_else(|| root.name.clone());
        let attached = format!("{}.{package}.{}", props.kind, props.name);
        let expr = format!("ref({})", Value::String(props.name.clone()));
        for def in &props.tests {
            push(
                &package,
                &props.file,
                expr.clone(),
                &props.name,
                attached.clone(),
                None,
                def,
            );
        }
        for col in &props.columns {
            for def in &col.tests {
                push(
                    &package,
                    &props.file,
                    expr.clone(),
                    &props.name,
                    attached.clone(),
                    Some(&col.name),
                    def,
                );
            }
        }
    }
    for s in &schema.sources {
        let package = yml_package
            .get(&s.file)
            .cloned()
            .unwrap_or_else(|| root.name.clone());
        for t in &s.tables {
            let attached = format!("source.{package}.{}.{}", s.name, t.name);
            let expr = format!(
                "source({}, {})",
                Value::String(s.name.clone()),
                Value::String(t.name.clone())
            );
            let target = format!("{}_{}", s.name, t.name);
            let tname = format!("source_{target}");
            for def in &t.tests {
                push(
                    &package,
                    &s.file,
                    expr.clone(),
                    &tname,
                    attached.clone(),
                    None,
                    def,
                );
            }
            for col in &t.columns {
                for def in &col.tests {
                    push(
                        &package,
                        &s.file,
                        expr.clone(),
                        &tname,
                        attached.clone(),
                        Some(&col.name),
                        def,
                    );
                }
            }
        }
    }
    for node in new {
        nodes.nodes.insert(node.unique_id.clone(), node);
    }
    Ok(())
}

/// Schema and identifier of every node, by dbt's naming rules (or the project's
/// `generate_schema_name` / `generate_alias_name` overrides).
fn name_relations(
    nodes: &mut Nodes,
    jinja: &Jinja,
    root: &str,
    target_schema: &str,
    project_root: &Path,
) -> Result<()> {
    let custom_schema = jinja.has_macro(root, "generate_schema_name");
    let custom_alias = jinja.has_macro(root, "generate_alias_name");
    for node in nodes.nodes.values_mut() {
        let custom = node.config.str("schema").map(str::to_string);
        let snapshot_schema = (node.kind == Kind::Snapshot)
            .then(|| node.config.str("target_schema").map(str::to_string))
            .flatten();
        node.schema = if let Some(s) = snapshot_schema {
            s
        } else if custom_schema {
            render_name(
                jinja,
                root,
                "generate_schema_name",
                custom.as_deref(),
                node,
                target_schema,
                project_root,
            )?
        } else {
            match custom {
                Some(c) if !c.trim().is_empty() => format!("{target_schema}_{}", c.trim()),
                _ => target_schema.to_string(),
            }
        };
        node.alias = if custom_alias {
            render_name(
                jinja,
                root,
                "generate_alias_name",
                node.config.str("alias"),
                node,
                target_schema,
                project_root,
            )?
        } else {
            node.config.str("alias").unwrap_or(&node.name).to_string()
        };
    }
    Ok(())
}

fn render_name(
    jinja: &Jinja,
    root: &str,
    macro_name: &str,
    custom: Option<&str>,
    node: &Node,
    target_schema: &str,
    project_root: &Path,
) -> Result<String> {
    let arg = custom.map_or("none".to_string(), |c| {
        Value::String(c.to_string()).to_string()
    });
    let text = format!("{{{{ {macro_name}({arg}, node) }}}}");
    let scope = Scope::new(
        root,
        false,
        None,
        false,
        node.config.0.clone(),
        json!({"name": node.name, "unique_id": node.unique_id, "resource_type": node.kind.as_str(),
               "package_name": node.package, "fqn": node.fqn, "path": node.path, "config": node.config.0}),
        json!({"schema": target_schema, "database": "socle", "type": "duckdb", "name": "dev"}),
        (Map::new(), Map::new()),
        false,
        Arc::new(ParseResolver),
    );
    let name = format!("__name__{}", node.unique_id);
    let out = jinja
        .render_str(&name, &text, &scope)
        .map_err(|e| jinja_error(project_root, e))?;
    Ok(out.trim().to_string())
}

/// Turns each node's refs and sources into `depends_on` ids; unknown names are errors.
fn resolve_dependencies(nodes: &mut Nodes, project_root: &Path) -> Result<()> {
    let mut by_name: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for n in nodes.nodes.values() {
        if matches!(n.kind, Kind::Model | Kind::Seed | Kind::Snapshot) {
            by_name
                .entry(n.name.clone())
                .or_default()
                .push((n.package.clone(), n.unique_id.clone()));
        }
    }
    let source_ids: Vec<(String, String, String)> = nodes
        .sources
        .values()
        .map(|s| (s.source_name.clone(), s.name.clone(), s.unique_id.clone()))
        .collect();
    for node in nodes.nodes.values_mut() {
        let mut deps = Vec::new();
        for (package, name) in &node.refs {
            let candidates = by_name.get(name).cloned().unwrap_or_default();
            let found = match package {
                Some(p) => candidates.iter().find(|(cp, _)| cp == p),
                None => candidates
                    .iter()
                    .find(|(cp, _)| *cp == node.package)
                    .or(candidates.first()),
            };
            match found {
                Some((_, id)) => deps.push(id.clone()),
                None => {
                    let hint =
                        socle_core::diag::did_you_mean(name, by_name.keys().map(String::as_str))
                            .map(|s| format!(" (did you mean `{s}`?)"))
                            .unwrap_or_default();
                    return Err(TransformError::project(
                        &project_root.join(&node.file),
                        line_of(&node.raw_sql, name),
                        format!(
                            "{} `{}` refers to `{name}`, which is not a model, seed or snapshot{hint}",
                            node.kind.as_str(),
                            node.name
                        ),
                    ));
                }
            }
        }
        for (source, table) in &node.sources {
            match source_ids
                .iter()
                .find(|(s, t, _)| s == source && t == table)
            {
                Some((_, _, id)) => deps.push(id.clone()),
                None => {
                    return Err(TransformError::project(
                        &project_root.join(&node.file),
                        line_of(&node.raw_sql, table),
                        format!(
                            "{} `{}` uses source `{source}.{table}`, which no schema file declares",
                            node.kind.as_str(),
                            node.name
                        ),
                    ));
                }
            }
        }
        deps.sort();
        deps.dedup();
        node.depends_on = deps;
    }
    Ok(())
}

/// The first line of `sql` mentioning `needle` (1 when none does).
fn line_of(sql: &str, needle: &str) -> usize {
    sql.lines()
        .position(|l| l.contains(needle))
        .map_or(1, |i| i + 1)
}
