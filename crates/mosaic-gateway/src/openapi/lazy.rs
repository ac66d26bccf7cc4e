//! Routes registered together with their OpenAPI descriptions, the descriptions kept as
//! functions. Serving needs only the router: a gateway that starts does not build the
//! document (about 3 MiB of allocations and code touched once, which would otherwise stay
//! resident for the life of the process); `mosaic openapi`, the contract tests and the
//! parity check build it when they ask for it, from the very same list of routes.
//!
//! [`routes!`] takes the handlers of one path, like `utoipa_axum::routes!`, and
//! [`ApiRouter`] collects them, like `utoipa_axum::router::OpenApiRouter`; the
//! document comes out byte for byte the same.

use axum::routing::MethodRouter;
use axum::Router;
use utoipa::openapi::path::Paths;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{OpenApi, RefOr};

/// The schemas an operation refers to, by name.
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// Adds the operations of one path (and the schemas they use) to a document.
pub type Describe = fn(&mut Paths, &mut Schemas);

/// The handlers of one path: how to serve them, and how to describe them.
pub struct RouteSet<S> {
    pub paths: Vec<String>,
    pub router: MethodRouter<S>,
    pub describe: Describe,
}

/// The API's routes, and the descriptions to build their document from on demand.
pub struct ApiRouter<S> {
    router: Router<S>,
    described: Described,
}

/// The descriptions of every route of an [`ApiRouter`], in the order they were added.
#[derive(Clone, Default)]
pub struct Described(Vec<Describe>);

impl<S: Clone + Send + Sync + 'static> Default for ApiRouter<S> {
    fn default() -> Self {
        ApiRouter {
            router: Router::new(),
            described: Described::default(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> ApiRouter<S> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve one path's handlers, and remember how to describe them.
    pub fn routes(mut self, set: RouteSet<S>) -> Self {
        for path in &set.paths {
            let path = if path.is_empty() { "/" } else { path.as_str() };
            self.router = self.router.route(path, set.router.clone());
        }
        self.described.0.push(set.describe);
        self
    }

    /// Both routers' routes (and descriptions).
    pub fn merge(mut self, other: ApiRouter<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.described.0.extend(other.described.0);
        self
    }

    /// The router, and what its document is built from.
    pub fn split_for_parts(self) -> (Router<S>, Described) {
        (self.router, self.described)
    }
}

impl Described {
    /// The document: `base` (title, tags, security) with every route's operations and
    /// the schemas they use, merged as `OpenApiRouter::routes` merges them.
    pub fn document(&self, mut base: OpenApi) -> OpenApi {
        for describe in &self.0 {
            let mut paths = Paths::new();
            let mut schemas = Schemas::new();
            describe(&mut paths, &mut schemas);
            for (path, item) in paths.paths {
                match base.paths.paths.get_mut(&path) {
                    Some(existing) => existing.merge_operations(item),
                    None => {
                        base.paths.paths.insert(path, item);
                    }
                }
            }
            base.components
                .get_or_insert_with(utoipa::openapi::Components::new)
                .schemas
                .extend(schemas);
        }
        base
    }
}

/// The handlers of one path (each with its `#[utoipa::path]`), as a [`RouteSet`].
///
/// Resolving a handler's generated `__path_…` type reuses `utoipa_axum::routes!`'s own
/// arms, so a handler is written here exactly as there (`module::handler`).
macro_rules! routes {
    ( $( $($part:ident)::+ ),+ $(,)? ) => {{
        #[allow(unused_imports)]
        use utoipa_axum::PathItemExt as _;
        let mut router = axum::routing::MethodRouter::new();
        let mut paths: Vec<String> = Vec::new();
        $(
            let path: String = utoipa_axum::routes!(@path [path()] of $($part)::+);
            if !paths.contains(&path) {
                paths.push(path);
            }
            for method in utoipa_axum::routes!(@path [methods()] of $($part)::+) {
                router = router.on(method.to_method_filter(), $($part)::+);
            }
        )+
        let describe: $crate::openapi::lazy::Describe = |paths, mut schemas| {
            $(
                let (path, item, types) = utoipa_axum::routes!(@resolve_types $($part)::+ : schemas);
                paths.add_path_operation(&path, types, item);
            )+
        };
        $crate::openapi::lazy::RouteSet { paths, router, describe }
    }};
}
pub(crate) use routes;
