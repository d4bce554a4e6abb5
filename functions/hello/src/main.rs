//! Hello world on `lambda_runtime`: answers every event with a constant.
//! The baseline `scripts/coldstart.sh` measures the evaluator against (same
//! runtime crate, same tokio, nothing else).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<Value, Error>(json!({"hello": "world"}))
    }))
    .await
}
