//! A Postgres restart under load, as every service sees it: each server process of
//! Veil's database ends at once (SQLSTATE 57P01), leaving every pooled connection dead.
//! Callers of `ProcessMessage` see no error: the message path runs a statement again
//! when its connection was found lost (a tenant's first messages also read its key and
//! policy), and the pools check their older connections after that.

use veil_e2e::{TestStack, bearer, create_tenant, stack_settings};
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{MessageContext, MessageRole, ProcessMessageRequest};
use veil_testkit::TestEnv;

const CONVERSATIONS: usize = 8;

/// One message in each conversation at once; the turn index each got.
async fn round(
    pipeline: &PrivacyGatewayServiceClient<tonic::transport::Channel>,
    key: &str,
    turn: usize,
) -> anyhow::Result<Vec<i64>> {
    let calls = (0..CONVERSATIONS).map(|c| {
        let mut pipeline = pipeline.clone();
        let request = ProcessMessageRequest {
            context: Some(MessageContext {
                conversation_id: format!("conv-{c}"),
                subject_id: format!("customer-{c}"),
                role: MessageRole::User as i32,
                ..Default::default()
            }),
            text: format!("Turn {turn}: write to user{c}.t{turn}@example.org please"),
        };
        let request = bearer(request, key);
        async move { pipeline.process_message(request).await }
    });
    let mut indexes = Vec::new();
    for answer in futures::future::join_all(calls).await {
        let answer = answer?.into_inner();
        anyhow::ensure!(answer.redacted_text.contains("<EMAIL_ADDRESS_"));
        indexes.push(answer.turn_index);
    }
    Ok(indexes)
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_ride_through_the_end_of_every_database_connection() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "restart").await?;
    let pipeline = PrivacyGatewayServiceClient::new(gateway.clone());

    // Every pool and cache on the path in use.
    assert_eq!(
        round(&pipeline, &tenant.bot_key, 0).await?,
        [0; CONVERSATIONS]
    );
    let late = create_tenant(gateway, "late").await?;
    let ended = env.db.terminate_connections().await?;
    assert!(ended >= 3, "only {ended} connections to end");
    // Its key, policy and subject keys are read for the first time, at once.
    assert_eq!(
        round(&pipeline, &late.bot_key, 0).await?,
        [0; CONVERSATIONS]
    );
    assert_eq!(
        round(&pipeline, &tenant.bot_key, 1).await?,
        [1; CONVERSATIONS]
    );
    assert_eq!(
        round(&pipeline, &tenant.bot_key, 2).await?,
        [2; CONVERSATIONS]
    );
    Ok(())
}
