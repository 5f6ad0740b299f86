//! The public catalog: `/api/v1/products`. Reads are public, writes need the
//! admin token. `stock` is always the available quantity (holds subtracted).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use loja_runtime::json::Path;
use loja_runtime::openapi::{
    self as doc, Conflict, Invalid, Malformed, NotFound, PayloadTooLarge, Unauthorized,
    Unavailable, UnsupportedMediaType,
};
use loja_runtime::page::{self, Page};
use loja_runtime::{Admin, Json, Query, db, rules};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::Object;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{AppState, Error};

/// Largest price accepted, in cents (R$ 10 million): anything above is a typo.
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000;
/// Largest quantity a single create or restock may add.
pub const MAX_STOCK_DELTA: i64 = 1_000_000_000;

/// Longest product name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// A cursor this API hands out: the hex of a sku, two digits per byte.
pub const CURSOR_PATTERN: &str =
    "^(?:2[DEde]|3[0-9]|4[1-9A-Fa-f]|5[0-9AFaf]|6[1-9A-Fa-f]|7[0-9Aa]){1,64}$";

/// The product routes, each documented by the handler it routes to.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(fetch, update))
        .routes(routes!(restock))
}

fn sku_schema() -> Object {
    doc::string(1, rules::MAX_SKU_LEN, Some(rules::SKU_PATTERN))
}

fn name_schema() -> Object {
    doc::string(1, MAX_NAME_CHARS, Some(&rules::visible_text_pattern()))
}

fn price_schema() -> Object {
    doc::integer(0, MAX_PRICE_CENTS)
}

fn stock_schema() -> Object {
    doc::integer(0, MAX_STOCK_DELTA)
}

fn quantity_schema() -> Object {
    doc::integer(1, MAX_STOCK_DELTA)
}

fn cursor_schema() -> Object {
    doc::string(2, 128, Some(CURSOR_PATTERN))
}

/// A product as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[schema(example = json!({
    "sku": "CAM-001", "name": "Camiseta", "price_cents": 4990, "stock": 10,
    "created_at": "2026-11-29T12:00:00Z", "updated_at": "2026-11-29T12:00:00Z"
}))]
pub struct Product {
    #[schema(example = "CAM-001")]
    pub sku: String,
    pub name: String,
    /// Price in integer cents (BRL).
    pub price_cents: i64,
    /// Units that can still be sold: held reservations already subtracted.
    #[sqlx(rename = "available")]
    pub stock: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns of [`Product`], spliced into queries with `concat!` so every
/// SQL string stays a literal.
macro_rules! columns {
    () => {
        "sku, name, price_cents, available, created_at, updated_at"
    };
}

/// Body of `POST /api/v1/products`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sku": "CAM-001", "name": "Camiseta", "price_cents": 4990, "stock": 10}))]
pub struct NewProduct {
    /// Unique; `[A-Za-z0-9._-]{1,64}`.
    #[schema(schema_with = sku_schema)]
    pub sku: String,
    /// 1 to 200 characters, not blank, no control characters.
    #[schema(schema_with = name_schema)]
    pub name: String,
    /// Price in integer cents (BRL).
    #[serde(deserialize_with = "loja_runtime::json::integer")]
    #[schema(schema_with = price_schema)]
    pub price_cents: i64,
    /// Units received; 0 when absent.
    #[serde(default, deserialize_with = "loja_runtime::json::integer")]
    #[schema(schema_with = stock_schema)]
    pub stock: i64,
}

impl NewProduct {
    fn validate(&self) -> Result<(), Error> {
        check_sku("sku", &self.sku)?;
        check_name(&self.name)?;
        check_price(self.price_cents)?;
        check_range("stock", self.stock, 0, MAX_STOCK_DELTA)
    }
}

/// Body of `PATCH /api/v1/products/{sku}`: at least one member.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1, example = json!({"price_cents": 3990}))]
pub struct ProductPatch {
    /// 1 to 200 characters, not blank, no control characters.
    #[serde(default, deserialize_with = "loja_runtime::json::not_null")]
    #[schema(schema_with = name_schema)]
    pub name: Option<String>,
    /// Price in integer cents (BRL).
    #[serde(default, deserialize_with = "loja_runtime::json::integer_not_null")]
    #[schema(schema_with = price_schema)]
    pub price_cents: Option<i64>,
}

impl ProductPatch {
    fn validate(&self) -> Result<(), Error> {
        if self.name.is_none() && self.price_cents.is_none() {
            return Err(Error::validation(
                "body",
                "the patch changes nothing: send `name` and/or `price_cents`",
            ));
        }
        if let Some(name) = &self.name {
            check_name(name)?;
        }
        if let Some(price) = self.price_cents {
            check_price(price)?;
        }
        Ok(())
    }
}

/// Body of `POST /api/v1/products/{sku}/restock`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"quantity": 5}))]
pub struct Restock {
    /// Units received, added to the stock.
    #[serde(deserialize_with = "loja_runtime::json::integer")]
    #[schema(schema_with = quantity_schema)]
    pub quantity: i64,
}

impl Restock {
    fn validate(&self) -> Result<(), Error> {
        check_range("quantity", self.quantity, 1, MAX_STOCK_DELTA)
    }
}

/// Query of `GET /api/v1/products`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 200 (50 when absent).
    #[param(schema_with = page::limit_schema)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = cursor_schema)]
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The page size and the sku to continue after.
    fn validate(&self) -> Result<(i64, Option<String>), Error> {
        let limit = page::limit(self.limit)?;
        let after = self.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok((limit, after))
    }
}

/// `sku` matches `[A-Za-z0-9._-]{1,64}` ([`rules::is_sku`]).
pub fn check_sku(field: &str, sku: &str) -> Result<(), Error> {
    if rules::is_sku(sku) {
        Ok(())
    } else {
        Err(Error::validation(field, "must match [A-Za-z0-9._-]{1,64}"))
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    // A name that shows nothing cannot be shown to a customer.
    if rules::is_visible_text(name, 1..=MAX_NAME_CHARS) {
        Ok(())
    } else {
        Err(Error::validation(
            "name",
            "must be 1 to 200 characters, some of them visible, none a control character",
        ))
    }
}

fn check_price(price: i64) -> Result<(), Error> {
    check_range("price_cents", price, 0, MAX_PRICE_CENTS)
}

fn check_range(field: &str, value: i64, min: i64, max: i64) -> Result<(), Error> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::validation(
            field,
            format!("must be an integer from {min} to {max}"),
        ))
    }
}

/// Cursors are opaque to clients: the hex of the last sku of the page.
fn encode_cursor(sku: &str) -> String {
    hex::encode(sku)
}

fn decode_cursor(cursor: &str) -> Result<String, Error> {
    hex::decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|sku| check_sku("cursor", sku).is_ok())
        .ok_or_else(page::bad_cursor)
}

/// Adds a product to the catalog.
#[utoipa::path(post, path = "/api/v1/products", tag = "products", operation_id = "createProduct",
    security(("adminToken" = [])),
    request_body = NewProduct,
    responses(
        (status = 201, description = "The new product.", body = Product),
        (status = 400, response = Malformed),
        (status = 401, response = Unauthorized),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
async fn create(
    _: Admin,
    State(state): State<AppState>,
    Json(body): Json<NewProduct>,
) -> Result<impl IntoResponse, Error> {
    body.validate()?;
    const INSERT_PRODUCT: &str = concat!(
        "INSERT INTO products (sku, name, price_cents, available, received)
         VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (sku) DO NOTHING
         RETURNING ",
        columns!()
    );
    let product: Option<Product> = db::instrument(
        INSERT_PRODUCT,
        sqlx::query_as(INSERT_PRODUCT)
            .bind(&body.sku)
            .bind(&body.name)
            .bind(body.price_cents)
            .bind(body.stock)
            .fetch_optional(&state.db),
    )
    .await?;
    let product = product.ok_or_else(|| {
        Error::Conflict(format!("a product with sku {} already exists", body.sku))
    })?;
    Ok((StatusCode::CREATED, Json(product)))
}

/// Lists the catalog in byte order of sku, one page at a time.
#[utoipa::path(get, path = "/api/v1/products", tag = "products", operation_id = "listProducts",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of products.", body = Page<Product>),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<Product>>, Error> {
    let (limit, after) = query.validate()?;
    const LIST_PRODUCTS: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM products
         WHERE $1::text IS NULL OR sku > $1
         ORDER BY sku LIMIT $2"
    );
    // Products come in byte order of sku; one extra row tells whether
    // another page follows.
    let rows = db::instrument(
        LIST_PRODUCTS,
        sqlx::query_as(LIST_PRODUCTS)
            .bind(after)
            .bind(limit + 1)
            .fetch_all(&state.db),
    )
    .await?;
    let page = Page::new(rows, limit, |p: &Product| encode_cursor(&p.sku));
    Ok(Json(page))
}

/// One product; `stock` is what can still be sold.
#[utoipa::path(get, path = "/api/v1/products/{sku}", tag = "products", operation_id = "getProduct",
    params(("sku" = String, Path, description = "The product's sku.")),
    responses(
        (status = 200, description = "The product.", body = Product),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
async fn fetch(
    State(state): State<AppState>,
    Path(SkuPath(sku)): Path<SkuPath>,
) -> Result<Json<Product>, Error> {
    const FIND_PRODUCT: &str = concat!("SELECT ", columns!(), " FROM products WHERE sku = $1");
    let product: Option<Product> = db::instrument(
        FIND_PRODUCT,
        sqlx::query_as(FIND_PRODUCT)
            .bind(&sku)
            .fetch_optional(&state.db),
    )
    .await?;
    product.map(Json).ok_or_else(|| not_found(&sku))
}

/// Renames or reprices a product.
#[utoipa::path(patch, path = "/api/v1/products/{sku}", tag = "products", operation_id = "updateProduct",
    security(("adminToken" = [])),
    params(("sku" = String, Path, description = "The product's sku.")),
    request_body = ProductPatch,
    responses(
        (status = 200, description = "The product as changed.", body = Product),
        (status = 400, response = Malformed),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
async fn update(
    _: Admin,
    State(state): State<AppState>,
    Path(SkuPath(sku)): Path<SkuPath>,
    Json(body): Json<ProductPatch>,
) -> Result<Json<Product>, Error> {
    body.validate()?;
    const PATCH_PRODUCT: &str = concat!(
        "UPDATE products
         SET name = COALESCE($2, name), price_cents = COALESCE($3, price_cents), updated_at = now()
         WHERE sku = $1
         RETURNING ",
        columns!()
    );
    let product: Option<Product> = db::instrument(
        PATCH_PRODUCT,
        sqlx::query_as(PATCH_PRODUCT)
            .bind(&sku)
            .bind(&body.name)
            .bind(body.price_cents)
            .fetch_optional(&state.db),
    )
    .await?;
    product.map(Json).ok_or_else(|| not_found(&sku))
}

/// Adds received units to a product's stock; concurrent restocks all count.
#[utoipa::path(post, path = "/api/v1/products/{sku}/restock", tag = "products", operation_id = "restockProduct",
    security(("adminToken" = [])),
    params(("sku" = String, Path, description = "The product's sku.")),
    request_body = Restock,
    responses(
        (status = 200, description = "The product with its new stock.", body = Product),
        (status = 400, response = Malformed),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
async fn restock(
    _: Admin,
    State(state): State<AppState>,
    Path(SkuPath(sku)): Path<SkuPath>,
    Json(body): Json<Restock>,
) -> Result<Json<Product>, Error> {
    body.validate()?;
    const RESTOCK: &str = concat!(
        "UPDATE products
         SET available = available + $2, received = received + $2, updated_at = now()
         WHERE sku = $1
         RETURNING ",
        columns!()
    );
    // Additive in one statement: concurrent restocks queue on the row lock and
    // each adds its own quantity, so none is lost.
    let product: Option<Product> = db::instrument(
        RESTOCK,
        sqlx::query_as(RESTOCK)
            .bind(&sku)
            .bind(body.quantity)
            .fetch_optional(&state.db),
    )
    .await?;
    product.map(Json).ok_or_else(|| not_found(&sku))
}

/// A sku in a path. What cannot be a sku names no product: the request is
/// answered 404 before it reaches the database.
#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
struct SkuPath(String);

impl TryFrom<String> for SkuPath {
    type Error = &'static str;

    fn try_from(sku: String) -> Result<Self, Self::Error> {
        if rules::is_sku(&sku) {
            Ok(SkuPath(sku))
        } else {
            Err("not a sku")
        }
    }
}

fn not_found(sku: &str) -> Error {
    Error::NotFound(format!("no product with sku {sku}"))
}
