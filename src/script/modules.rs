//! Resolving `import "name"`: the embedded stdlib first, then the script's folder, then RETORT_PATH.

use super::state::State;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

/// The stdlib recipes, embedded so an installed retort finds them.
pub const STDLIB: &[(&str, &str)] = &[
    ("schedules", include_str!("../../stdlib/schedules.rhai")),
    ("kd", include_str!("../../stdlib/kd.rhai")),
    ("wsl", include_str!("../../stdlib/wsl.rhai")),
    ("filtering", include_str!("../../stdlib/filtering.rhai")),
    ("dkd", include_str!("../../stdlib/dkd.rhai")),
    ("dist", include_str!("../../stdlib/dist.rhai")),
    ("stats", include_str!("../../stdlib/stats.rhai")),
];

pub struct Resolver {
    dirs: Vec<PathBuf>,
    cache: RefCell<HashMap<String, Shared<Module>>>,
    /// Where the local files loaded and the modules' source texts are noted (the run record
    /// copies the files; a stage's schedules are quoted from the texts).
    state: Rc<State>,
}

impl Resolver {
    /// `dirs`: the script's folder, then the folders of `RETORT_PATH`; what it loads is noted in `state`.
    pub fn new(dirs: Vec<PathBuf>, state: &Rc<State>) -> Self {
        Resolver { dirs, cache: RefCell::new(HashMap::new()), state: state.clone() }
    }

    fn compile(&self, engine: &Engine, name: &str, source: &str, pos: Position) -> Result<Shared<Module>, Box<EvalAltResult>> {
        self.state.sources.borrow_mut().insert(name.to_string(), source.to_string());
        let mut ast = engine.compile(source).map_err(|e| Box::new(EvalAltResult::ErrorInModule(name.into(), e.into(), pos)))?;
        ast.set_source(name);
        let module =
            Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(|e| Box::new(EvalAltResult::ErrorInModule(name.into(), e, pos)))?;
        Ok(Shared::new(module))
    }
}

impl ModuleResolver for Resolver {
    fn resolve(&self, engine: &Engine, _source: Option<&str>, path: &str, pos: Position) -> Result<Shared<Module>, Box<EvalAltResult>> {
        if let Some(m) = self.cache.borrow().get(path) {
            return Ok(m.clone());
        }
        let module = if let Some((_, src)) = STDLIB.iter().find(|(n, _)| *n == path) {
            self.compile(engine, path, src, pos)?
        } else {
            let file = if path.ends_with(".rhai") { path.to_string() } else { format!("{path}.rhai") };
            let Some(found) = self.dirs.iter().map(|d| d.join(&file)).find(|p| p.is_file()) else {
                return Err(EvalAltResult::ErrorModuleNotFound(path.into(), pos).into());
            };
            let src = std::fs::read_to_string(&found).map_err(|e| format!("import '{path}': cannot read {}: {e}", found.display()))?;
            self.state.imported.borrow_mut().push((file.clone(), found.clone()));
            self.compile(engine, path, &src, pos)?
        };
        self.cache.borrow_mut().insert(path.to_string(), module.clone());
        Ok(module)
    }
}
