//! The per-message reads of `ProcessMessage` (is the subject restricted; what does the
//! conversation's map already hold), batched across concurrent messages like the turn
//! writes (see [`super::turn_writer`]): under load one statement answers many messages,
//! and on an idle gateway a message's read leaves at once.

use sqlx::PgPool;
use uuid::Uuid;
use veil_core::batch::{Batcher, Limits};
use veil_core::error::ServiceError;

use crate::pseudonyms::{self, Known, Wanted};
use crate::restriction;

/// Statements of each kind in flight at once.
pub const IN_FLIGHT: usize = 2;

type Answer<T> = Result<T, ServiceError>;

/// A conversation and the tokens of one message, owned for the batch.
pub struct MapQuery {
    pub tenant: Uuid,
    pub conversation: String,
    pub tokens: Vec<String>,
}

impl MapQuery {
    /// About how many bytes the query adds to the statement's parameters.
    fn size(&self) -> usize {
        let tokens: usize = self.tokens.iter().map(|t| t.len() + 16).sum();
        self.conversation.len() + 30 + tokens
    }
}

/// The batched reads; cheap to clone.
#[derive(Clone)]
pub struct Lookups {
    restrictions: Batcher<(Uuid, String), Answer<bool>>,
    maps: Batcher<MapQuery, Answer<Known>>,
}

impl Lookups {
    pub fn spawn(pool: PgPool) -> Self {
        let restrictions = Batcher::spawn(
            Limits::statements("restriction reads", IN_FLIGHT),
            |(_, subject): &(Uuid, String)| subject.len() + 30,
            {
                let pool = pool.clone();
                move |subjects: Vec<(Uuid, String)>| {
                    let pool = pool.clone();
                    async move {
                        let keys: Vec<(Uuid, &str)> =
                            subjects.iter().map(|(t, s)| (*t, s.as_str())).collect();
                        fan_out(
                            restriction::restricted_among(&pool, &keys).await,
                            subjects.len(),
                        )
                    }
                }
            },
        );
        let maps = Batcher::spawn(
            Limits::statements("placeholder reads", IN_FLIGHT),
            MapQuery::size,
            move |queries: Vec<MapQuery>| {
                let pool = pool.clone();
                async move {
                    let wanted: Vec<Wanted<'_>> = queries
                        .iter()
                        .map(|q| Wanted {
                            tenant: q.tenant,
                            conversation: &q.conversation,
                            tokens: &q.tokens,
                        })
                        .collect();
                    fan_out(pseudonyms::load_many(&pool, &wanted).await, queries.len())
                }
            },
        );
        Self { restrictions, maps }
    }

    /// Whether the subject's processing is restricted (GDPR Art. 18), as committed now.
    pub async fn is_restricted(&self, tenant: Uuid, subject_ref: &str) -> Answer<bool> {
        self.restrictions
            .call((tenant, subject_ref.to_string()))
            .await?
    }

    /// The conversation's placeholders of `tokens` and its highest numbers.
    pub async fn known(&self, query: MapQuery) -> Answer<Known> {
        self.maps.call(query).await?
    }
}

/// One answer per message from a batch's result. A failed statement fails each of its
/// messages: the first answer carries the error (logged once), the others its kind.
fn fan_out<T>(result: sqlx::Result<Vec<T>>, count: usize) -> Vec<Answer<T>> {
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
