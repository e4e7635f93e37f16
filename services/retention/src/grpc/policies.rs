//! Retention policies, legal holds and sweeps (owned by the policies/sweeper work).

use tonic::{Request, Response, Status};
use veil_proto::retention::v1::*;

use crate::state::Retention;

fn todo_rpc() -> Status {
    Status::unimplemented("not yet implemented")
}

pub async fn set_policy(
    _state: &Retention,
    _request: Request<SetPolicyRequest>,
) -> Result<Response<SetPolicyResponse>, Status> {
    Err(todo_rpc())
}

pub async fn list_policies(
    _state: &Retention,
    _request: Request<ListPoliciesRequest>,
) -> Result<Response<ListPoliciesResponse>, Status> {
    Err(todo_rpc())
}

pub async fn delete_policy(
    _state: &Retention,
    _request: Request<DeletePolicyRequest>,
) -> Result<Response<DeletePolicyResponse>, Status> {
    Err(todo_rpc())
}

pub async fn place_hold(
    _state: &Retention,
    _request: Request<PlaceHoldRequest>,
) -> Result<Response<PlaceHoldResponse>, Status> {
    Err(todo_rpc())
}

pub async fn release_hold(
    _state: &Retention,
    _request: Request<ReleaseHoldRequest>,
) -> Result<Response<ReleaseHoldResponse>, Status> {
    Err(todo_rpc())
}

pub async fn list_holds(
    _state: &Retention,
    _request: Request<ListHoldsRequest>,
) -> Result<Response<ListHoldsResponse>, Status> {
    Err(todo_rpc())
}

pub async fn run_sweep(
    _state: &Retention,
    _request: Request<RunSweepRequest>,
) -> Result<Response<RunSweepResponse>, Status> {
    Err(todo_rpc())
}
