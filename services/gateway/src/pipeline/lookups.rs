//! The read of `ProcessMessage` (is the subject restricted; what does the conversation's
//! map already hold) when the replica's hint is not enough (see [`super::map_hints`]),
//! batched across concurrent messages like the turn writes (see [`super::turn_writer`]):
//! under load one statement answers many messages, and on an idle gateway a message's
//! read leaves at once.

use sqlx::PgPool;
use uuid::Uuid;
use veil_core::batch::{Batcher, Limits};
use veil_core::db::retry_if_lost;
use veil_core::error::ServiceError;
use veil_core::types::SubjectRef;

use crate::restriction::RESTRICTED;
use crate::turn_state::{self, TurnState, Wanted};

/// Statements in flight at once. One: the reads are short, and while one runs the next
/// batch gathers; two in flight made about twice the statements for the same messages
/// and cost throughput (docs/benchmarks.md, gateway).
pub const IN_FLIGHT: usize = 1;

type Answer<T> = Result<T, ServiceError>;

/// A message's subject, and its conversation with its tokens when it has any, owned
/// for the batch.
pub struct StateQuery {
    pub tenant: Uuid,
    pub subject_ref: String,
    pub conversation: Option<String>,
    pub tokens: Vec<String>,
}

impl StateQuery {
    /// Asks only whether the subject is restricted.
    pub fn restriction(tenant: Uuid, subject_ref: &SubjectRef) -> Self {
        Self {
            tenant,
            subject_ref: subject_ref.as_str().to_string(),
            conversation: None,
            tokens: Vec::new(),
        }
    }

    /// Asks whether the subject is restricted and what `conversation`'s map holds for
    /// `tokens`.
    pub fn conversation(
        tenant: Uuid,
        subject_ref: &SubjectRef,
        conversation: &str,
        tokens: Vec<String>,
    ) -> Self {
        Self {
            conversation: Some(conversation.to_string()),
            tokens,
            ..Self::restriction(tenant, subject_ref)
        }
    }

    /// About how many bytes the query adds to the statement's parameters.
    fn size(&self) -> usize {
        let tokens: usize = self.tokens.iter().map(|t| t.len() + 16).sum();
        let conversation = self.conversation.as_ref().map_or(0, String::len);
        self.subject_ref.len() + conversation + 40 + tokens
    }
}

/// The batched read; cheap to clone.
#[derive(Clone)]
pub struct Lookups {
    states: Batcher<StateQuery, Answer<TurnState>>,
}

impl Lookups {
    pub fn spawn(pool: PgPool) -> Self {
        let states = Batcher::spawn(
            Limits::statements("turn state reads", IN_FLIGHT),
            StateQuery::size,
            move |queries: Vec<StateQuery>| {
                let pool = pool.clone();
                async move {
                    let wanted: Vec<Wanted<'_>> = queries
                        .iter()
                        .map(|q| Wanted {
                            tenant: q.tenant,
                            subject_ref: &q.subject_ref,
                            conversation: q.conversation.as_deref(),
                            tokens: &q.tokens,
                        })
                        .collect();
                    let read = retry_if_lost(|| turn_state::read_many(&pool, &wanted)).await;
                    fan_out(read, queries.len())
                }
            },
        );
        Self { states }
    }

    /// Whether the subject's processing is restricted (GDPR Art. 18), as committed now,
    /// and the conversation's placeholders of the tokens with its highest numbers.
    pub async fn turn_state(&self, query: StateQuery) -> Answer<TurnState> {
        self.states.call(query).await?
    }

    /// FAILED_PRECONDITION when the subject is restricted, for the calls that hand text
    /// out (streams, restores): processing beyond storage.
    pub async fn ensure_unrestricted(&self, tenant: Uuid, subject_ref: &SubjectRef) -> Answer<()> {
        if self
            .turn_state(StateQuery::restriction(tenant, subject_ref))
            .await?
            .restricted
        {
            return Err(ServiceError::FailedPrecondition(RESTRICTED.into()));
        }
        Ok(())
    }
}

/// One answer per call from a batch's result. A failed statement fails each of its
/// calls: the first answer carries the error (logged once), the others its kind.
pub(super) fn fan_out<T>(result: sqlx::Result<Vec<T>>, count: usize) -> Vec<Answer<T>> {
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
            let mut answers: Vec<Answer<T>> = (1..count).map(|_| Err(again(&first))).collect();
            answers.insert(0, Err(first));
            answers
        }
    }
}
