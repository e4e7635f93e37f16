//! The per-message read of `ProcessMessage` (is the subject restricted, what does the
//! conversation's map hold; see crate::turn_state), batched across concurrent messages
//! like the turn writes (see [`super::turn_writer`]): under load one statement answers
//! many messages, and on an idle gateway a message's read leaves at once.

use sqlx::PgPool;
use uuid::Uuid;
use veil_core::batch::{Batcher, Limits, STATEMENT_BYTES};
use veil_core::error::ServiceError;

use crate::turn_state::{self, Query, TurnState};

/// Messages answered by one statement at most, and statements in flight at once.
const LIMITS: Limits = Limits {
    calls: 64,
    bytes: STATEMENT_BYTES,
    in_flight: 2,
};

type Answer = Result<TurnState, ServiceError>;

/// A message's subject and conversation, owned for the batch.
pub struct StateQuery {
    pub tenant: Uuid,
    pub subject_ref: String,
    pub conversation: String,
}

impl StateQuery {
    /// About how many bytes the query adds to the statement's parameters.
    fn size(&self) -> usize {
        self.subject_ref.len() + self.conversation.len() + 40
    }
}

/// The batched read; cheap to clone.
#[derive(Clone)]
pub struct Lookups {
    states: Batcher<StateQuery, Answer>,
}

impl Lookups {
    pub fn spawn(pool: PgPool) -> Self {
        let states = Batcher::spawn(LIMITS, StateQuery::size, move |batch: Vec<StateQuery>| {
            let pool = pool.clone();
            async move {
                let queries: Vec<Query<'_>> = batch
                    .iter()
                    .map(|q| Query {
                        tenant: q.tenant,
                        subject_ref: &q.subject_ref,
                        conversation: &q.conversation,
                    })
                    .collect();
                fan_out(turn_state::load_many(&pool, &queries).await, batch.len())
            }
        });
        Self { states }
    }

    /// The subject's restriction and the conversation's map, as committed now.
    pub async fn turn_state(&self, query: StateQuery) -> Answer {
        self.states
            .call(query)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?
    }
}

/// One answer per message from a batch's result. A failed statement fails each of its
/// messages: the first answer carries the error (logged once), the others its kind.
fn fan_out<T>(result: sqlx::Result<Vec<T>>, count: usize) -> Vec<Result<T, ServiceError>> {
    match result {
        Ok(values) if values.len() == count => values.into_iter().map(Ok).collect(),
        Ok(_) => (0..count)
            .map(|_| {
                Err(ServiceError::internal(anyhow::anyhow!(
                    "short batch answer"
                )))
            })
            .collect(),
        Err(error) => {
            let first = ServiceError::from(error);
            let again = |first: &ServiceError| match first {
                ServiceError::Unavailable(m) => ServiceError::Unavailable(m.clone()),
                _ => ServiceError::internal(anyhow::anyhow!("a batched read failed")),
            };
            let mut answers: Vec<Result<T, ServiceError>> =
                (1..count).map(|_| Err(again(&first))).collect();
            answers.insert(0, Err(first));
            answers
        }
    }
}
